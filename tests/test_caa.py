"""CAA decisions (RFC 8659, RFC 8657), pure."""

from __future__ import annotations

from sesam_tls.caa import Caa, judge, relevant

ACCOUNT = "https://ca.example/acct/1"


def decide(*records: Caa, method="dns-01", account=ACCOUNT, wildcard=False):
    return judge(records, owner="example.com", identities=["ca.example"], method=method, account=account,
                 wildcard=wildcard)


def test_no_issue_record_allows_any_ca():
    assert decide(Caa(0, "iodef", "mailto:x@example.com"))[0]


def test_another_ca_is_refused_and_named():
    ok, why = decide(Caa(0, "issue", "other.example"))
    assert not ok and "allows only other.example, not this CA" in why


def test_an_empty_issuer_forbids_every_ca():
    ok, why = decide(Caa(0, "issue", ";"))
    assert not ok and "forbids every CA" in why


def test_validationmethods_and_accounturi():
    assert decide(Caa(0, "issue", "ca.example; validationmethods=dns-01,http-01"))[0]
    ok, why = decide(Caa(0, "issue", "ca.example; validationmethods=http-01"))
    assert not ok and "not dns-01" in why
    assert decide(Caa(0, "issue", f"ca.example; accounturi={ACCOUNT}"))[0]
    ok, why = decide(Caa(0, "issue", "ca.example; accounturi=https://ca.example/acct/2"))
    assert not ok and "another account" in why


def test_issuewild_governs_wildcards_only():
    records = (Caa(0, "issue", "ca.example"), Caa(0, "issuewild", ";"))
    assert decide(*records)[0]
    assert not decide(*records, wildcard=True)[0]


def test_a_critical_unknown_tag_forbids_issuance():
    ok, why = decide(Caa(128, "tbs", "x"), Caa(0, "issue", "ca.example"))
    assert not ok and "critical" in why


def test_the_relevant_set_is_the_closest_one_up_the_tree():
    zone = {"example.com": [Caa(0, "issue", "ca.example")]}
    asked = []

    def lookup(name):
        asked.append(name)
        return zone.get(name, [])

    assert relevant(lookup, "*.a.b.example.com") == ("example.com", zone["example.com"])
    assert asked == ["a.b.example.com", "b.example.com", "example.com"]
