"""validate(): chain order, key match, and every policy rule, over certificates made here."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import given, settings
from hypothesis import strategies as st

from sesam_tls.errors import InputError
from sesam_tls.validate import Report, Sourced, validate

from . import certgen as g


def run(certs, keys=(), *, names=(), days=14, now=g.NOW) -> Report:
    return validate(
        [Sourced(c, "cert.pem") for c in certs],
        [Sourced(k, "key.pem") for k in keys],
        now=now,
        names=names,
        expiry_warning_days=days,
    )


def codes(report: Report) -> tuple[list[str], list[str]]:
    return sorted(f.code for f in report.errors), sorted(f.code for f in report.warnings)


P = g.pki()


def _leaf(**options):
    """(key, [leaf, intermediate]) from P's intermediate, one rule broken by ``options``."""
    key, leaf = P.inter.leaf(**options)
    return key, [leaf, P.inter.cert]


def _case_self_signed():
    key = g.ec_key()
    itself = g.Issuer(key, g.root(g.NAME, key=key).cert)  # issuer name = the leaf's own name
    _, cert = itself.leaf(key=key)
    return key, [cert]


def _case_wrong_intermediate():
    other = P.root.ca("Sesam Test Intermediate CA")  # same name, another key
    key, leaf = P.inter.leaf()
    return key, [leaf, other.cert]


def _case_expired_intermediate():
    old = P.root.ca("Old Intermediate", not_before=g.NOW - 400 * g.DAY, not_after=g.NOW - g.DAY)
    key, leaf = old.leaf()
    return key, [leaf, old.cert]


def _case_leaf_from_root():
    key, leaf = P.root.leaf()
    return key, [leaf, P.root.cert]


def _case_unrelated():
    other = g.pki(["other.example.com"])
    return P.key, [P.leaf, P.inter.cert, other.leaf]


def _case_rsa(bits):
    def build():
        return _leaf(key=g.rsa_key(bits))

    return build


def _case_curve(curve):
    def build():
        return _leaf(key=g.ec_key(curve))

    return build


def _case_weak(hash_name):
    def build():
        w = g.rsa_pki_weak(hash_name)
        return w.key, [w.leaf, w.inter.cert]

    return build


CASES = {
    # id: (builder -> (key or None, certs), errors, warnings)
    "ec leaf and intermediate": (lambda: (P.key, [P.leaf, P.inter.cert]), [], []),
    "shuffled with root": (lambda: (P.key, [P.root.cert, P.leaf, P.inter.cert]), [], []),
    "rsa-2048": (_case_rsa(2048), [], []),
    "p-384": (_case_curve(ec.SECP384R1()), [], []),
    "p-521": (_case_curve(ec.SECP521R1()), [], []),
    "leaf issued by the root itself": (_case_leaf_from_root, [], []),
    "self-signed leaf": (_case_self_signed, [], ["self-signed"]),
    "no EKU at all": (lambda: _leaf(eku=None), [], []),
    "anyExtendedKeyUsage": (
        lambda: _leaf(eku=[ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]),
        [],
        [],
    ),
    "no key": (lambda: (None, [P.leaf, P.inter.cert]), ["no-key"], []),
    "no certificate": (lambda: (P.key, []), ["no-certificate"], []),
    "mismatched key": (lambda: (g.ec_key(), [P.leaf, P.inter.cert]), ["key-mismatch"], []),
    "leaf without intermediate": (lambda: (P.key, [P.leaf]), ["missing-intermediate"], []),
    "leaf with only the root": (
        lambda: (P.key, [P.leaf, P.root.cert]),
        ["missing-intermediate"],
        ["unrelated-certificate"],
    ),
    "intermediate of the same name, other key": (
        _case_wrong_intermediate,
        ["bad-signature"],
        ["unrelated-certificate"],
    ),
    "unrelated certificate": (_case_unrelated, [], ["unrelated-certificate"]),
    "expired": (
        lambda: _leaf(not_before=g.NOW - 100 * g.DAY, not_after=g.NOW - g.DAY),
        ["expired"],
        [],
    ),
    "expires this second": (lambda: _leaf(not_after=g.NOW), ["expired"], []),
    "not yet valid": (
        lambda: _leaf(not_before=g.NOW + g.DAY, not_after=g.NOW + 90 * g.DAY),
        ["not-yet-valid"],
        [],
    ),
    "expires in 5 days": (lambda: _leaf(not_after=g.NOW + 5 * g.DAY), [], ["expires-soon"]),
    "expired intermediate": (_case_expired_intermediate, ["expired"], []),
    "rsa-1024": (_case_rsa(1024), ["weak-key"], []),
    "dsa": (
        lambda: _leaf(key=g.dsa_key(), key_usage=g._usage(digital_signature=True)),
        ["weak-key"],
        [],
    ),
    "ed25519": (lambda: _leaf(key=g.ed25519_key()), ["weak-key"], []),
    "secp256k1": (_case_curve(ec.SECP256K1()), ["weak-key"], []),
    "sha-1 signature": (_case_weak("sha1"), ["weak-signature"], []),
    "md5 signature": (_case_weak("md5"), ["weak-signature"], []),
    "CA certificate as the leaf": (lambda: _leaf(ca=True), ["ca-certificate"], []),
    "clientAuth only": (
        lambda: _leaf(eku=[ExtendedKeyUsageOID.CLIENT_AUTH]),
        ["no-server-auth"],
        [],
    ),
    "rsa with keyEncipherment only": (
        lambda: _leaf(key=g.rsa_key(2048), key_usage=g._usage(key_encipherment=True)),
        ["key-usage"],
        [],
    ),
    "ecdsa with keyEncipherment (as Let's Encrypt issued)": (
        lambda: _leaf(key_usage=g._usage(digital_signature=True, key_encipherment=True)),
        [],
        [],
    ),
    "ecdsa with keyAgreement only": (
        lambda: _leaf(key_usage=g._usage(key_agreement=True)),
        ["key-usage"],
        [],
    ),
    "no subjectAltName": (lambda: _leaf(san=False), ["no-san"], []),
    "everything wrong at once": (
        lambda: (
            g.ec_key(),
            [
                P.inter.leaf(
                    ca=True, san=False, not_after=g.NOW - g.DAY, not_before=g.NOW - 9 * g.DAY
                )[1]
            ],
        ),
        ["ca-certificate", "expired", "key-mismatch", "missing-intermediate", "no-san"],
        [],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rules(case):
    build, errors, warnings = CASES[case]
    key, certs = build()
    report = run(certs, [key] if key is not None else [])
    assert codes(report) == (sorted(errors), sorted(warnings)), [f.message for f in report.findings]
    assert report.ok == (not errors)
    for finding in report.findings:
        assert finding.message.startswith(("cert.pem: ", "key.pem: ")), finding.message
        assert "\n" not in finding.message


def test_two_different_keys():
    report = run([P.leaf, P.inter.cert], [P.key, g.ec_key()])
    assert codes(report)[0] == ["several-keys"]


def test_the_same_key_twice_is_one_key():
    report = run([P.leaf, P.inter.cert], [P.key, P.key])
    assert report.ok


def test_the_same_certificate_twice_is_one():
    report = run([P.leaf, P.inter.cert, P.leaf, P.inter.cert, P.root.cert])
    assert [c.subject for c in report.chain] == [P.inter.cert.subject]


def test_warning_days_is_a_parameter():
    key, certs = _leaf(not_after=g.NOW + 5 * g.DAY)
    assert codes(run(certs, [key], days=3)) == ([], [])
    assert codes(run(certs, [key], days=30)) == ([], ["expires-soon"])


def test_order_and_dropped_root():
    report = run([P.root.cert, P.inter.cert, P.leaf], [P.key])
    assert report.leaf == P.leaf
    assert report.chain == (P.inter.cert,)
    assert report.dropped_root == P.root.cert
    assert report.bundle().fullchain_pem() == g.pem(P.leaf, P.inter.cert)


def test_bundle_refuses_with_the_first_error_and_a_count():
    key, certs = _leaf(ca=True, san=False)
    with pytest.raises(
        InputError, match=r"CA certificate .*\(and 1 more; --check-only lists them all\)"
    ):
        run(certs, [key]).bundle()


def test_missing_intermediate_message():
    (error,) = run([P.leaf], [P.key]).errors
    assert error.message == (
        "cert.pem: missing intermediate: the issuer 'CN=Sesam Test Intermediate CA' of 'CN=node.example.com' "
        "is not in the input; pass it with --chain FILE"
    )


# names --------------------------------------------------------------------------

NAMES = [
    # (SANs on the leaf, names asked for, covered)
    (["node.example.com"], ["node.example.com"], True),
    (["NODE.example.com"], ["node.example.com"], True),
    (["node.example.com", "alt.example.com"], ["alt.example.com"], True),
    (["*.example.com"], ["node.example.com"], True),
    (["*.example.com"], ["a.b.example.com"], False),
    (["*.example.com"], ["example.com"], False),
    (["node.example.com"], ["other.example.com"], False),
    (["node.example.com"], ["node.example.com", "other.example.com"], False),
]


@pytest.mark.parametrize(("sans", "asked", "covered"), NAMES)
def test_names(sans, asked, covered):
    key, certs = _leaf(names=sans)
    report = run(certs, [key], names=asked)
    assert report.ok == covered
    if not covered:
        assert codes(report)[0] == ["name-not-covered"] * sum(1 for n in asked if n not in sans)


def test_ip_address_names():
    key = g.ec_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(g._name("10.0.0.5"))
        .issuer_name(P.inter.name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(g.NOW - g.DAY)
        .not_valid_after(g.NOW + 30 * g.DAY)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("10.0.0.5"))]),
            critical=False,
        )
    )
    from cryptography.hazmat.primitives import hashes

    cert = builder.sign(P.inter.key, hashes.SHA256())
    assert run([cert, P.inter.cert], [key], names=["10.0.0.5"]).ok
    assert not run([cert, P.inter.cert], [key], names=["10.0.0.6"]).ok


# order, whatever the input order ------------------------------------------------

_R = g.root()
_I1 = _R.ca("Intermediate One")
_I2 = _I1.ca("Intermediate Two")
_KEY, _LEAF = _I2.leaf()


@settings(max_examples=40, deadline=None)
@given(st.permutations([_R.cert, _I1.cert, _I2.cert, _LEAF]))
def test_any_order_gives_leaf_then_issuers(certs):
    report = run(certs, [_KEY])
    assert report.ok, [f.message for f in report.findings]
    assert report.leaf == _LEAF
    assert report.chain == (_I2.cert, _I1.cert)
    assert report.dropped_root == _R.cert


@settings(max_examples=20, deadline=None)
@given(st.permutations([_I1.cert, _I2.cert, _LEAF]))
def test_without_key_the_leaf_is_the_end_of_the_chain(certs):
    report = run(certs)
    assert report.leaf == _LEAF
    assert report.chain == (_I2.cert, _I1.cert)
    assert codes(report) == (["no-key"], [])


def test_now_is_what_decides():
    key, certs = _leaf(not_before=g.NOW - g.DAY, not_after=g.NOW + 20 * g.DAY)
    assert run(certs, [key]).ok
    later = g.NOW + 21 * g.DAY
    assert codes(run(certs, [key], now=later))[0] == ["expired"]
    earlier = g.NOW - 2 * g.DAY
    assert codes(run(certs, [key], now=earlier))[0] == ["not-yet-valid"]
