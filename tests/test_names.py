import pytest

from sesam_tls.errors import UsageError
from sesam_tls.names import normalize_domain, normalize_ip
from sesam_tls.providers.base import CertRequest


@pytest.mark.parametrize(
    "given, expected",
    [
        ("node.example.test", "node.example.test"),
        ("Node.Example.TEST.", "node.example.test"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("localhost", "localhost"),
        ("*.example.test", "*.example.test"),
        ("a-b.c0.example", "a-b.c0.example"),
    ],
)
def test_valid_domains(given, expected):
    assert normalize_domain(given) == expected


@pytest.mark.parametrize(
    "given, idna2008, idna2003",
    [
        # ß and ς are letters of their own in IDNA2008; IDNA2003 mapped them away (another domain)
        ("straße.de", "xn--strae-oqa.de", "strasse.de"),
        ("faß.de", "xn--fa-hia.de", "fass.de"),
        ("Straße.DE", "xn--strae-oqa.de", "strasse.de"),
        ("βόλος.com", "xn--nxasmm1c.com", "xn--nxasmq6b.com"),
        ("*.straße.de", "*.xn--strae-oqa.de", None),
        ("BÜCHER.example", "xn--bcher-kva.example", "xn--bcher-kva.example"),
    ],
)
def test_internationalised_names_follow_idna2008_uts46(given, idna2008, idna2003):
    assert normalize_domain(given) == idna2008
    if idna2003 is not None and idna2008 != idna2003:  # the table shows names where the two standards differ
        assert given.lower().encode("idna").decode() == idna2003


@pytest.mark.parametrize("given", ["☕.example", "i❤.ws", "a\u200db.example".encode().decode("unicode_escape")])
def test_symbols_idna2008_does_not_allow_are_refused(given):
    with pytest.raises(UsageError, match="not a valid internationalised DNS name"):
        normalize_domain(given)


def test_a_dotted_quad_is_not_a_domain():
    with pytest.raises(UsageError, match="that is an IP address, use `ip`"):
        normalize_domain("1.2.3.4")


@pytest.mark.parametrize(
    "given, reason",
    [
        ("", "empty"),
        ("-bad.example", "label"),
        ("bad-.example", "label"),
        ("under_score.example", "label"),
        ("a" * 64 + ".example", "label"),
        (("a" * 60 + ".") * 5 + "example", "253"),
        ("*.com", "wildcard"),
        ("host.123", "all digits"),
        ("two..dots", "label"),
        ("sp ace.example", "label"),
    ],
)
def test_invalid_domains_name_the_value_and_reason(given, reason):
    with pytest.raises(UsageError) as info:
        normalize_domain(given)
    assert repr(given) in str(info.value)
    assert reason in str(info.value)


def test_wildcard_refused_where_it_cannot_be_validated():
    with pytest.raises(UsageError, match="HTTP-01"):
        normalize_domain("*.example.test", allow_wildcard=False)


def test_ips():
    assert str(normalize_ip("127.0.0.1")) == "127.0.0.1"
    assert str(normalize_ip("[::1]")) == "::1"
    with pytest.raises(UsageError, match="'300.1.1.1'"):
        normalize_ip("300.1.1.1")


def test_request_dedupes_and_limits():
    request = CertRequest.build(["A.example", "a.example", "b.example"], ["127.0.0.1"])
    assert request.names == ("a.example", "b.example")
    assert request.identifiers == ["a.example", "b.example", "127.0.0.1"]
    with pytest.raises(UsageError, match="no names"):
        CertRequest.build([])
    with pytest.raises(UsageError, match="too many names: 101"):
        CertRequest.build([f"n{i}.example" for i in range(101)])
    with pytest.raises(UsageError, match="unknown key type 'rsa-1024'"):
        CertRequest.build(["a.example"], key_type="rsa-1024")
    with pytest.raises(UsageError, match="`days` 0"):
        CertRequest.build(["a.example"], days=0)
