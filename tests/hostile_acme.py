"""A hostile ACME CA for the tests: Pebble does the protocol, a CA of the test's own signs.

:class:`HostileCA` sits on an :class:`~tests.acme_fixtures.AcmeFront` (its
``rewrite`` hook). At finalize it reads the public key of the client's CSR;
when the client downloads the certificate, Pebble's chain is replaced by one
the test's own CA made for that key, broken in the way ``kind`` names (see
:data:`KINDS`). Kind ``good`` makes a sound chain, so a test can show that the
same CA is accepted when it behaves. Everything else (accounts, orders,
HTTP-01 validation) is the real Pebble's.

Pebble runs on free ports of its own (``hostile_pebble``), so these tests do
not share the testbed Pebble's HTTP-01 port with other runs.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any, Callable, Optional

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import testbed
from .acme_fixtures import NAME, AcmeFront

__all__ = ["KINDS", "HostileCA", "hostile_ca", "hostile_pebble"]

DAY = dt.timedelta(days=1)
UNKNOWN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.55555.7.1")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False,
    )


def _cert(subject: str, issuer: x509.Name, public_key: Any, signer: Any, *, ca: bool,
          path_length: Optional[int] = None, start: Optional[dt.datetime] = None,
          end: Optional[dt.datetime] = None, eku: Any = (ExtendedKeyUsageOID.SERVER_AUTH,),
          extra: Optional[x509.ExtensionType] = None) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    b = (
        x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
        .public_key(public_key).serial_number(x509.random_serial_number())
        .not_valid_before(start or now - DAY).not_valid_after(end or now + 30 * DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(_usage(ca=ca), critical=True)
    )
    if not ca or subject == NAME:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if extra is not None:
        b = b.add_extension(extra, critical=True)
    return b.sign(signer, hashes.SHA256())


class _Issuer:
    def __init__(self, cn: str, parent: Optional["_Issuer"] = None, path_length: Optional[int] = None) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        issuer_name = parent.name if parent else _name(cn)
        signer = parent.key if parent else self.key
        self.name = _name(cn)
        self.cert = _cert(cn, issuer_name, self.key.public_key(), signer, ca=True, path_length=path_length)

    def leaf(self, public_key: Any, **kwargs: Any) -> x509.Certificate:
        return _cert(NAME, self.name, public_key, self.key, ca=False, **kwargs)


def _good(ca: "HostileCA", pub: Any) -> list[x509.Certificate]:
    return [ca.inter.leaf(pub), ca.inter.cert]


def _expired(ca: "HostileCA", pub: Any) -> list[x509.Certificate]:
    now = dt.datetime.now(dt.timezone.utc)
    return [ca.inter.leaf(pub, start=now - 90 * DAY, end=now - DAY), ca.inter.cert]


def _not_yet_valid(ca: "HostileCA", pub: Any) -> list[x509.Certificate]:
    now = dt.datetime.now(dt.timezone.utc)
    return [ca.inter.leaf(pub, start=now + DAY, end=now + 90 * DAY), ca.inter.cert]


def _ca_leaf(ca: "HostileCA", pub: Any) -> list[x509.Certificate]:
    return [_cert(NAME, ca.inter.name, pub, ca.inter.key, ca=True), ca.inter.cert]


def _client_auth_only(ca: "HostileCA", pub: Any) -> list[x509.Certificate]:
    return [ca.inter.leaf(pub, eku=(ExtendedKeyUsageOID.CLIENT_AUTH,)), ca.inter.cert]


def _broken_chain(ca: "HostileCA", pub: Any) -> list[x509.Certificate]:
    # The intermediate sent has the issuer's name but another key: it did not sign the leaf.
    impostor = _Issuer("hostile test intermediate", ca.root)
    return [ca.inter.leaf(pub), impostor.cert]


def _unknown_critical(ca: "HostileCA", pub: Any) -> list[x509.Certificate]:
    extension = x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00")
    return [ca.inter.leaf(pub, extra=extension), ca.inter.cert]


def _path_length(ca: "HostileCA", pub: Any) -> list[x509.Certificate]:
    # root -> intermediate (pathLen 0) -> sub-intermediate -> leaf: the sub-intermediate breaks pathLen.
    sub = _Issuer("hostile test sub-intermediate", ca.inter0)
    return [sub.leaf(pub), sub.cert, ca.inter0.cert]


def _wrong_key(ca: "HostileCA", pub: Any) -> list[x509.Certificate]:
    return [ca.inter.leaf(ec.generate_private_key(ec.SECP256R1()).public_key()), ca.inter.cert]


#: kind -> (how the chain is made, what the error must say)
KINDS: dict[str, tuple[Callable[["HostileCA", Any], list[x509.Certificate]], str]] = {
    "expired": (_expired, "expired on"),
    "not-yet-valid": (_not_yet_valid, "is not valid before"),
    "ca-leaf": (_ca_leaf, "is a CA certificate"),
    "client-auth-only": (_client_auth_only, "lacks serverAuth"),
    "broken-chain": (_broken_chain, "did not sign it"),
    "unknown-critical": (_unknown_critical, "critical extension"),
    "path-length": (_path_length, "path length"),
    "wrong-key": (_wrong_key, "another key"),
}


class HostileCA:
    """Replaces the certificate a front's Pebble issues with one of :data:`KINDS` (or ``good``)."""

    def __init__(self, front: Optional[AcmeFront] = None) -> None:
        """Without ``front``: only the certificates, for unit tests of the gate."""
        self.front = front
        self.directory = front.directory if front else "https://hostile-ca.invalid/dir"
        self.ca_bundle = front.ca_bundle if front else None
        self.root = _Issuer("hostile test root")
        self.inter = _Issuer("hostile test intermediate", self.root)
        self.inter0 = _Issuer("hostile test intermediate pathLen 0", self.root, path_length=0)
        self.kind = "good"
        self.issued: list[x509.Certificate] = []  # the leaves handed out, in order
        self._public_key: Any = None
        if front is not None:
            front.rewrite = self._rewrite

    def chain(self, kind: str, public_key: Any) -> list[x509.Certificate]:
        """Leaf first, then what the CA sends with it."""
        return (_good if kind == "good" else KINDS[kind][0])(self, public_key)

    def _rewrite(self, request: bytes, answer: bytes) -> bytes:
        payload = _payload(request)
        if isinstance(payload, dict) and "csr" in payload:
            der = base64.urlsafe_b64decode(payload["csr"] + "=" * (-len(payload["csr"]) % 4))
            self._public_key = x509.load_der_x509_csr(der).public_key()
        if answer.startswith(b"-----BEGIN CERTIFICATE-----") and self._public_key is not None:
            certs = self.chain(self.kind, self._public_key)
            self.issued.append(certs[0])
            return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
        return answer


def _payload(request: bytes) -> Any:
    try:
        payload = json.loads(request)["payload"]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)) or b"null")
    except (ValueError, KeyError, TypeError):
        return None


@pytest.fixture(scope="session")
def hostile_pebble():
    """A Pebble of these tests' own, on free ports (its HTTP-01 port too)."""
    try:
        with testbed.own_pebble("sesam-tls-hostile") as pebble:
            yield pebble
    except testbed.TestbedError as e:
        pytest.fail(f"testbed not available: {e}", pytrace=False)


@pytest.fixture
def hostile_ca(hostile_pebble, tmp_path):
    """A :class:`HostileCA` in front of ``hostile_pebble``; ``.kind`` chooses what it signs."""
    front = AcmeFront(hostile_pebble, tmp_path / "hostile-front")
    try:
        yield HostileCA(front)
    finally:
        front.close()
