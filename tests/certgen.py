"""A tiny PKI for the import tests: root -> intermediate -> leaf, and every way to write them.

Everything is made with ``cryptography`` at test time around a fixed
``NOW``. ``cryptography`` refuses to sign with SHA-1 or MD5, so
:func:`resign_weak` builds such certificates by hand: the same TBS with the
algorithm identifier swapped (same length for RSA), signed with the raw RSA
primitive, which still allows those hashes.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Optional, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)
NAME = "node.example.com"
PASSWORD = b"s3cret-Pa55phrase"

SERVER_AUTH = (ExtendedKeyUsageOID.SERVER_AUTH,)


# keys ---------------------------------------------------------------------------


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


@functools.lru_cache(maxsize=None)
def rsa_key(bits: int = 2048, slot: int = 0) -> rsa.RSAPrivateKey:
    """Cached: RSA key generation is slow. ``slot`` gives a second key of the same size."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@functools.lru_cache(maxsize=None)
def dsa_key() -> dsa.DSAPrivateKey:
    return dsa.generate_private_key(key_size=2048)


def ed25519_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


# certificates -------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _usage(**on: bool) -> x509.KeyUsage:
    fields = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    fields.update(on)
    return x509.KeyUsage(**fields)


@dataclass(frozen=True)
class Issuer:
    key: object
    cert: x509.Certificate
    #: the moment default validity periods are built around
    now: dt.datetime = NOW

    @property
    def name(self) -> x509.Name:
        return self.cert.subject

    def ca(
        self,
        cn: str,
        *,
        key: object = None,
        not_before: Optional[dt.datetime] = None,
        not_after: Optional[dt.datetime] = None,
    ) -> "Issuer":
        key = key or ec_key(ec.SECP384R1())
        start = not_before or self.now - 365 * DAY
        end = not_after or self.now + 3 * 365 * DAY
        cert = (
            _builder(_name(cn), self.name, key, start, end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                _usage(key_cert_sign=True, crl_sign=True, digital_signature=True), critical=True
            )
            .sign(self.key, _hash_for(self.key))  # type: ignore[arg-type]
        )
        return Issuer(key, cert, self.now)

    def leaf(
        self,
        names: Sequence[str] = (NAME,),
        *,
        key: object = None,
        cn: Optional[str] = None,
        not_before: Optional[dt.datetime] = None,
        not_after: Optional[dt.datetime] = None,
        ca: bool = False,
        eku: Optional[Sequence[x509.ObjectIdentifier]] = SERVER_AUTH,
        key_usage: Optional[x509.KeyUsage] = None,
        san: bool = True,
    ) -> tuple[object, x509.Certificate]:
        """(key, certificate) for a TLS server; each keyword breaks one rule."""
        key = key or ec_key()
        start = not_before or self.now - 10 * DAY
        end = not_after or self.now + 80 * DAY
        b = _builder(_name(cn or (names[0] if names else "no-name")), self.name, key, start, end)
        b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        if san:
            b = b.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
        if eku is not None:
            b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        if key_usage is None:
            key_usage = _usage(
                digital_signature=True, key_encipherment=isinstance(key, rsa.RSAPrivateKey)
            )
        b = b.add_extension(key_usage, critical=True)
        return key, b.sign(self.key, _hash_for(self.key))  # type: ignore[arg-type]


def _builder(
    subject: x509.Name, issuer: x509.Name, key: object, start: dt.datetime, end: dt.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
    )


def _hash_for(key: object) -> Optional[hashes.HashAlgorithm]:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def root(cn: str = "Sesam Test Root CA", *, key: object = None, now: dt.datetime = NOW) -> Issuer:
    key = key or ec_key(ec.SECP384R1())
    cert = (
        _builder(_name(cn), _name(cn), key, now - 3650 * DAY, now + 3650 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .sign(key, _hash_for(key))  # type: ignore[arg-type]
    )
    return Issuer(key, cert, now)


@dataclass(frozen=True)
class PKI:
    """root -> intermediate -> leaf: the usual shape of a company or public CA."""

    root: Issuer
    inter: Issuer
    key: object
    leaf: x509.Certificate

    @property
    def chain(self) -> list[x509.Certificate]:
        return [self.inter.cert, self.root.cert]


def pki(
    names: Sequence[str] = (NAME,),
    *,
    leaf_key: object = None,
    now: dt.datetime = NOW,
    **leaf_options: object,
) -> PKI:
    """``now``: around which the validity periods are built (the real clock for CLI tests)."""
    r = root(now=now)
    i = r.ca("Sesam Test Intermediate CA")
    key, leaf = i.leaf(names, key=leaf_key, **leaf_options)  # type: ignore[arg-type]
    return PKI(r, i, key, leaf)


# encodings ----------------------------------------------------------------------


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


_FORMATS = {
    "pkcs8": serialization.PrivateFormat.PKCS8,
    "traditional": serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1 for RSA, SEC1 for EC
}


def key_bytes(
    key: object, fmt: str = "pkcs8", *, encoding: str = "pem", password: Optional[bytes] = None
) -> bytes:
    """``fmt``: pkcs8 or traditional; with ``password``, encrypted (PKCS#8 or ``Proc-Type: 4,ENCRYPTED``)."""
    enc = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM if encoding == "pem" else serialization.Encoding.DER,
        _FORMATS[fmt],
        enc,
    )


def p12(
    key: object,
    cert: Optional[x509.Certificate],
    cas: Sequence[x509.Certificate] = (),
    *,
    password: Optional[bytes] = None,
    legacy: bool = False,
) -> bytes:
    """PKCS#12; ``legacy``: 3DES + SHA-1 MAC, what old Windows exports look like."""
    if password is None:
        enc: serialization.KeySerializationEncryption = serialization.NoEncryption()
    elif legacy:
        enc = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(2048)
            .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
            .hmac_hash(hashes.SHA1())
            .build(password)
        )
    else:
        enc = serialization.BestAvailableEncryption(password)
    return pkcs12.serialize_key_and_certificates(b"sesam", key, cert, list(cas) or None, enc)  # type: ignore[arg-type]


def csr_pem(key: object, cn: str = NAME) -> bytes:
    csr = x509.CertificateSigningRequestBuilder().subject_name(_name(cn)).sign(key, hashes.SHA256())  # type: ignore[arg-type]
    return csr.public_bytes(serialization.Encoding.PEM)


def public_pem(key: object) -> bytes:
    return key.public_key().public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def with_text(*blocks: bytes) -> bytes:
    """Blocks with the kind of text CAs and ``openssl x509 -text`` put around them."""
    out = b"Bag Attributes\n    friendlyName: node\nsubject=/CN=node.example.com\n"
    for block in blocks:
        out += b"Certificate:\n    Data:\n        Version: 3 (0x2)\n" + block + b"\n# next\n\r\n"
    return out


# SHA-1 and MD5 ------------------------------------------------------------------

_SHA256_RSA = bytes.fromhex("06092a864886f70d01010b")
_WEAK_RSA = {
    "sha1": bytes.fromhex("06092a864886f70d010105"),
    "md5": bytes.fromhex("06092a864886f70d010104"),
}


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def resign_weak(
    cert: x509.Certificate, issuer_key: rsa.RSAPrivateKey, hash_name: str = "sha1"
) -> x509.Certificate:
    """``cert`` (signed sha256WithRSA by ``issuer_key``) signed again with SHA-1 or MD5."""
    tbs = cert.tbs_certificate_bytes
    if tbs.count(_SHA256_RSA) != 1:
        raise ValueError("resign_weak needs a certificate signed with sha256WithRSAEncryption")
    tbs = tbs.replace(_SHA256_RSA, _WEAK_RSA[hash_name])
    algorithm = {"sha1": hashes.SHA1(), "md5": hashes.MD5()}[hash_name]
    signature = issuer_key.sign(tbs, padding.PKCS1v15(), algorithm)
    alg_id = b"\x30" + _der_len(len(_WEAK_RSA[hash_name]) + 2) + _WEAK_RSA[hash_name] + b"\x05\x00"
    bits = b"\x03" + _der_len(len(signature) + 1) + b"\x00" + signature
    body = tbs + alg_id + bits
    return x509.load_der_x509_certificate(b"\x30" + _der_len(len(body)) + body)


def rsa_pki_weak(hash_name: str, *, now: dt.datetime = NOW) -> PKI:
    """root -> RSA intermediate -> EC leaf, the leaf signed with ``hash_name``."""
    r = root(now=now)
    i = r.ca("Sesam Test RSA Intermediate", key=rsa_key(2048))
    key, leaf = i.leaf()
    return PKI(r, i, key, resign_weak(leaf, i.key, hash_name))  # type: ignore[arg-type]
