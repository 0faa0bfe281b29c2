"""Reading the operator's files: every format and encryption, and a clear refusal for the rest.

Through the provider (``Imported.check``), so the reading, the size limit and
the per-file error messages are covered together with the decoding.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from sesam_tls.errors import InputError
from sesam_tls.pemio import MAX_INPUT, decode
from sesam_tls.providers.base import CertRequest
from sesam_tls.providers.imported import Imported

from . import certgen as g

EC = g.pki()
RSA = g.pki(leaf_key=g.rsa_key(2048))
PW = g.PASSWORD
WRONG = b"Wr0ng-guess-4711"
NO_NAMES = CertRequest()


def check(tmp_path: Path, files: dict[str, bytes], password=None):
    paths = {}
    for role, data in files.items():
        paths[role] = tmp_path / f"{role}.input"
        paths[role].write_bytes(data)
    provider = Imported(
        paths["cert"],
        key_file=paths.get("key"),
        chain_file=paths.get("chain"),
        password=password,
        clock=lambda: g.NOW,
    )
    return provider.check(NO_NAMES)


def _p7(*certs) -> bytes:
    return pkcs7.serialize_certificates(list(certs), serialization.Encoding.PEM)


ACCEPTED = {
    # id: (pki, files, password)
    "PEM leaf+intermediate, PKCS#8 key": (
        EC,
        {"cert": g.pem(EC.leaf, EC.inter.cert), "key": g.key_bytes(EC.key)},
        None,
    ),
    "PEM shuffled with root and text around": (
        EC,
        {
            "cert": g.with_text(g.pem(EC.root.cert), g.pem(EC.inter.cert), g.pem(EC.leaf)),
            "key": g.key_bytes(EC.key),
        },
        None,
    ),
    "CRLF line endings": (
        EC,
        {
            "cert": g.pem(EC.leaf, EC.inter.cert).replace(b"\n", b"\r\n"),
            "key": g.key_bytes(EC.key).replace(b"\n", b"\r\n"),
        },
        None,
    ),
    "leaf in --cert, chain in --chain": (
        EC,
        {
            "cert": g.pem(EC.leaf),
            "chain": g.pem(EC.root.cert, EC.inter.cert),
            "key": g.key_bytes(EC.key),
        },
        None,
    ),
    "chain repeated in --cert and --chain": (
        EC,
        {
            "cert": g.pem(EC.leaf, EC.inter.cert),
            "chain": g.pem(EC.inter.cert),
            "key": g.key_bytes(EC.key),
        },
        None,
    ),
    "PKCS#1 RSA key": (
        RSA,
        {"cert": g.pem(RSA.leaf, RSA.inter.cert), "key": g.key_bytes(RSA.key, "traditional")},
        None,
    ),
    "SEC1 EC key": (
        EC,
        {"cert": g.pem(EC.leaf, EC.inter.cert), "key": g.key_bytes(EC.key, "traditional")},
        None,
    ),
    "encrypted PKCS#8": (
        EC,
        {"cert": g.pem(EC.leaf, EC.inter.cert), "key": g.key_bytes(EC.key, password=PW)},
        PW,
    ),
    "Proc-Type 4,ENCRYPTED RSA": (
        RSA,
        {
            "cert": g.pem(RSA.leaf, RSA.inter.cert),
            "key": g.key_bytes(RSA.key, "traditional", password=PW),
        },
        PW,
    ),
    "Proc-Type 4,ENCRYPTED EC": (
        EC,
        {
            "cert": g.pem(EC.leaf, EC.inter.cert),
            "key": g.key_bytes(EC.key, "traditional", password=PW),
        },
        PW,
    ),
    "password given, key not encrypted": (
        EC,
        {"cert": g.pem(EC.leaf, EC.inter.cert), "key": g.key_bytes(EC.key)},
        PW,
    ),
    "DER certificate, DER chain, DER PKCS#8 key": (
        EC,
        {
            "cert": g.der(EC.leaf),
            "chain": g.der(EC.inter.cert),
            "key": g.key_bytes(EC.key, encoding="der"),
        },
        None,
    ),
    "DER PKCS#1 key": (
        RSA,
        {
            "cert": g.der(RSA.leaf),
            "chain": g.pem(RSA.inter.cert),
            "key": g.key_bytes(RSA.key, "traditional", encoding="der"),
        },
        None,
    ),
    "DER SEC1 key": (
        EC,
        {
            "cert": g.der(EC.leaf),
            "chain": g.pem(EC.inter.cert),
            "key": g.key_bytes(EC.key, "traditional", encoding="der"),
        },
        None,
    ),
    "DER encrypted PKCS#8": (
        EC,
        {
            "cert": g.der(EC.leaf),
            "chain": g.der(EC.inter.cert),
            "key": g.key_bytes(EC.key, encoding="der", password=PW),
        },
        PW,
    ),
    "key and certificates in one file": (
        EC,
        {"cert": g.key_bytes(EC.key) + b"\n" + g.pem(EC.leaf, EC.inter.cert)},
        None,
    ),
    "encrypted key and certificates in one file": (
        EC,
        {"cert": g.pem(EC.inter.cert) + g.key_bytes(EC.key, password=PW) + g.pem(EC.leaf)},
        PW,
    ),
    "PKCS#12 without password": (
        EC,
        {"cert": g.p12(EC.key, EC.leaf, [EC.inter.cert, EC.root.cert])},
        None,
    ),
    "PKCS#12 with password": (
        EC,
        {"cert": g.p12(EC.key, EC.leaf, [EC.inter.cert], password=PW)},
        PW,
    ),
    "PKCS#12 legacy 3DES/SHA-1 (old Windows export)": (
        RSA,
        {
            "cert": g.p12(
                RSA.key, RSA.leaf, [RSA.inter.cert, RSA.root.cert], password=PW, legacy=True
            )
        },
        PW,
    ),
    "PKCS#12 with key and leaf, chain in --chain": (
        EC,
        {"cert": g.p12(EC.key, EC.leaf, password=PW), "chain": g.pem(EC.inter.cert)},
        PW,
    ),
    "PKCS#7 chain": (
        EC,
        {
            "cert": g.pem(EC.leaf),
            "chain": _p7(EC.inter.cert, EC.root.cert),
            "key": g.key_bytes(EC.key),
        },
        None,
    ),
}


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_accepted(tmp_path, case):
    pki, files, password = ACCEPTED[case]
    report = check(tmp_path, files, password)
    assert report.ok, [f.message for f in report.findings]
    assert report.leaf == pki.leaf
    assert report.chain == (pki.inter.cert,)
    assert (
        report.bundle().key_pem().startswith(b"-----BEGIN PRIVATE KEY-----")
    )  # unencrypted for nginx


GOOD_CERT = g.pem(EC.leaf, EC.inter.cert)
GOOD_KEY = g.key_bytes(EC.key)

REFUSED = {
    # id: (role of the bad file, its content, password, expected message after "<file>: ")
    "empty certificate file": ("cert", b"", None, "the file is empty"),
    "blank key file": ("key", b" \n\n\t\n", None, "the file is empty"),
    "garbage text": (
        "cert",
        b"this is not a certificate\nat all\n",
        None,
        "no certificate or key found",
    ),
    "binary noise": ("cert", bytes(range(256)) * 8, None, "unrecognised binary data"),
    "DER-looking noise": (
        "key",
        b"\x30\x82\x01\x00" + bytes(range(256)),
        None,
        "unrecognised binary data",
    ),
    "larger than 1 MiB": ("cert", GOOD_CERT + b"#" * MAX_INPUT, None, "larger than 1 MiB"),
    "CSR instead of certificate": (
        "cert",
        g.csr_pem(EC.key),
        None,
        "this is a certificate signing request, not a certificate",
    ),
    "DER CSR": (
        "cert",
        g.csr_pem(EC.key).replace(b"CERTIFICATE REQUEST", b"X"),  # replaced below by real DER
        None,
        "this is a certificate signing request, not a certificate",
    ),
    "public key instead of private key": (
        "key",
        g.public_pem(EC.key),
        None,
        "public key, not a private key",
    ),
    "DER public key": ("key", b"", None, "public key, not a private key"),
    "OpenSSH key": (
        "key",
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        None,
        "an OpenSSH key",
    ),
    "BEGIN without END": ("cert", GOOD_CERT[:200], None, "without its matching '-----END' line"),
    "damaged base64": (
        "cert",
        b"-----BEGIN CERTIFICATE-----\nMIIB!!notbase64!!\n-----END CERTIFICATE-----\n",
        None,
        "PEM block #1 (CERTIFICATE): damaged base64",
    ),
    "encrypted key, no password": (
        "key",
        g.key_bytes(EC.key, password=PW),
        None,
        "the private key is encrypted; give its password",
    ),
    "Proc-Type key, no password": (
        "key",
        g.key_bytes(EC.key, "traditional", password=PW),
        None,
        "the private key is encrypted; give its password",
    ),
    "encrypted key, wrong password": (
        "key",
        g.key_bytes(EC.key, password=PW),
        WRONG,
        "wrong password for the encrypted private key",
    ),
    "Proc-Type key, wrong password": (
        "key",
        g.key_bytes(EC.key, "traditional", password=PW),
        WRONG,
        "wrong password for the encrypted private key",
    ),
    "DER encrypted key, wrong password": (
        "key",
        g.key_bytes(EC.key, encoding="der", password=PW),
        WRONG,
        "wrong password for the encrypted private key",
    ),
    "PKCS#12, no password": (
        "cert",
        g.p12(EC.key, EC.leaf, [EC.inter.cert], password=PW),
        None,
        "the PKCS#12 file is password-protected",
    ),
    "PKCS#12, wrong password": (
        "cert",
        g.p12(EC.key, EC.leaf, [EC.inter.cert], password=PW),
        WRONG,
        "wrong password for the PKCS#12 file",
    ),
}


def _real_der(case: str, data: bytes) -> bytes:
    """Two cases need DER made from objects; the table keeps its shape."""
    from cryptography import x509

    if case == "DER CSR":
        return x509.load_pem_x509_csr(g.csr_pem(EC.key)).public_bytes(serialization.Encoding.DER)
    if case == "DER public key":
        return EC.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return data


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused(tmp_path, case):
    role, data, password, reason = REFUSED[case]
    files = {"cert": GOOD_CERT, "key": GOOD_KEY}
    files[role] = _real_der(case, data)
    report = check(tmp_path, files, password)
    assert not report.ok
    (error,) = report.errors
    assert error.message.startswith(f"{tmp_path / (role + '.input')}: "), error.message
    assert reason in error.message
    assert "\n" not in error.message
    for secret in (PW, WRONG):
        assert secret.decode() not in error.message


def test_missing_and_unreadable_files(tmp_path):
    report = Imported(tmp_path / "nope.pem", key_file=tmp_path).check(NO_NAMES)
    messages = [f.message for f in report.errors]
    assert messages == [
        f"{tmp_path / 'nope.pem'}: no such file",
        f"{tmp_path}: a folder, not a file",
    ]


def test_every_unreadable_file_is_reported(tmp_path):
    report = check(tmp_path, {"cert": b"", "key": g.public_pem(EC.key), "chain": g.csr_pem(EC.key)})
    assert [f.code for f in report.errors] == ["unreadable"] * 3


def test_a_csr_beside_a_certificate_is_ignored_with_a_warning(tmp_path):
    report = check(tmp_path, {"cert": g.csr_pem(EC.key) + GOOD_CERT, "key": GOOD_KEY})
    assert report.ok
    assert [f.code for f in report.warnings] == ["ignored-block"]
    assert "certificate signing request" in report.warnings[0].message


# the password ------------------------------------------------------------------


def test_the_password_callback_is_asked_only_for_an_encrypted_file(tmp_path):
    asked = []

    def ask(source):
        asked.append(source)
        return PW

    assert check(tmp_path, {"cert": GOOD_CERT, "key": GOOD_KEY}, ask).ok
    assert asked == []
    assert check(tmp_path, {"cert": GOOD_CERT, "key": g.key_bytes(EC.key, password=PW)}, ask).ok
    assert asked == [str(tmp_path / "key.input")]


def test_an_unprotected_pkcs12_never_asks(tmp_path):
    def ask(source):
        raise AssertionError("asked for a password")

    assert check(tmp_path, {"cert": g.p12(EC.key, EC.leaf, [EC.inter.cert])}, ask).ok


def test_the_password_is_asked_once_for_all_files(tmp_path):
    asked = []

    def ask(source):
        asked.append(source)
        return PW

    files = {
        "cert": g.p12(EC.key, EC.leaf, password=PW),
        "key": g.key_bytes(EC.key, password=PW),
        "chain": g.pem(EC.inter.cert),
    }
    provider = Imported(
        tmp_path / "cert",
        key_file=tmp_path / "key",
        chain_file=tmp_path / "chain",
        password=ask,
        clock=lambda: g.NOW,
    )
    for role, data in files.items():
        (tmp_path / role).write_bytes(data)
    assert provider.check(NO_NAMES).ok
    assert provider.check(NO_NAMES).ok  # the files are read once
    assert len(asked) == 1


def test_the_provider_forgets_the_password(tmp_path):
    (tmp_path / "c").write_bytes(GOOD_CERT)
    (tmp_path / "k").write_bytes(g.key_bytes(EC.key, password=PW))
    provider = Imported(tmp_path / "c", key_file=tmp_path / "k", password=PW, clock=lambda: g.NOW)
    provider.issue(NO_NAMES)
    assert PW not in repr(vars(provider)).encode()
    assert PW.decode() not in repr(provider)


def test_decode_is_pure_over_bytes():
    decoded = decode(g.with_text(GOOD_CERT, GOOD_KEY), source="mem")
    assert (len(decoded.certificates), len(decoded.keys)) == (2, 1)
    with pytest.raises(InputError, match="^mem: the file is empty$"):
        decode(b"", source="mem")


def test_a_certificate_damaged_inside_is_refused_at_decoding():
    """Outer structure sound, issuer name broken: cryptography would only notice when asked."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from sesam_tls import CertRequest, SelfSigned
    from sesam_tls.errors import InputError
    from sesam_tls.pemio import decode

    der = bytearray(SelfSigned().issue(CertRequest.build(["node.example.test"])).leaf.public_bytes(Encoding.DER))
    at = der.find(b"node.example.test")
    der[at - 2] = 0x30  # the UTF8String tag of the issuer's CN becomes a SEQUENCE
    with pytest.raises(InputError, match=r"^cert\.der: certificate #1 is damaged inside \(.*issuer"):
        decode(bytes(der), source="cert.der")


def test_a_public_key_on_an_unknown_curve_is_refused_when_decoded(tmp_path):
    """Found by the fuzz pass: one bit flipped in a certificate's curve OID (P-256's
    1.2.840.10045.3.1.7 becomes 1.3.840...). cryptography parses the certificate and
    fails only when its public key is asked for, with UnsupportedAlgorithm: that was a
    traceback; now it is one InputError line naming the file."""
    der = EC.leaf.public_bytes(serialization.Encoding.DER)
    p256 = bytes.fromhex("06082a8648ce3d030107")
    assert der.count(p256) == 1
    broken = der.replace(p256, bytes.fromhex("06082b8648ce3d030107"))
    path = tmp_path / "leaf.der"
    path.write_bytes(broken)
    with pytest.raises(InputError, match=r"leaf\.der.* is damaged inside \(.*not supported"):
        decode(broken, source=str(path))
