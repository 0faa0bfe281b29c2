"""A certificate bundle: private key, leaf, chain. Parsing and serialising (pure)."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .errors import InputError
from .keys import PrivateKey, key_type_of

__all__ = ["Bundle", "fingerprint", "key_matches_cert", "load_pem_certificates", "san_names"]


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 over the DER encoding, lower-case hex: what ``openssl x509 -fingerprint`` shows."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _spki(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined]  # any cryptography public key; their types share no base with public_bytes
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_matches_cert(key: PrivateKey, cert: x509.Certificate) -> bool:
    return _spki(key.public_key()) == _spki(cert.public_key())


def san_names(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    """DNS names and IP addresses of the certificate's subjectAltName."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    dns = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return dns, ips


def load_pem_certificates(data: bytes, *, source: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise InputError(f"{source}: not a PEM certificate") from None
    return certs


def _utc(cert: x509.Certificate, attr: str) -> dt.datetime:
    return getattr(cert, attr + "_utc")


@dataclass(frozen=True)
class Bundle:
    """What every provider returns: a key and the certificates nginx serves with it.

    ``chain`` holds the intermediates in order, leaf's issuer first, without
    the root (clients have the root; sending it only costs bytes).
    """

    key: PrivateKey
    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    def __post_init__(self) -> None:
        if not key_matches_cert(self.key, self.leaf):
            raise InputError("the private key does not belong to the certificate")

    # serialisation ----------------------------------------------------------
    def fullchain_pem(self) -> bytes:
        return b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in (self.leaf, *self.chain)
        )

    def key_pem(self) -> bytes:
        """The key as unencrypted PKCS#8 PEM: nginx cannot ask for a passphrase."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_pem(cls, fullchain: bytes, key: bytes, *, source: str = "bundle") -> "Bundle":
        certs = load_pem_certificates(fullchain, source=source)
        try:
            private = serialization.load_pem_private_key(key, password=None)
        except (ValueError, TypeError):
            raise InputError(f"{source}: the private key is not an unencrypted PEM key") from None
        return cls(key=private, leaf=certs[0], chain=tuple(certs[1:]))  # type: ignore[arg-type]  # load_pem_private_key may return DH/X25519 keys; the Bundle checks below refuse them

    # facts ------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        return fingerprint(self.leaf)

    @property
    def key_type(self) -> str:
        return key_type_of(self.key)

    @property
    def not_before(self) -> dt.datetime:
        return _utc(self.leaf, "not_valid_before")

    @property
    def not_after(self) -> dt.datetime:
        return _utc(self.leaf, "not_valid_after")

    @property
    def serial(self) -> str:
        return format(self.leaf.serial_number, "x")

    @property
    def dns_names(self) -> list[str]:
        return san_names(self.leaf)[0]

    @property
    def ip_addresses(self) -> list[str]:
        return san_names(self.leaf)[1]

    def covers(self, name: str) -> bool:
        """Whether the leaf is valid for ``name`` (a DNS name or an IP address)."""
        dns, ips = san_names(self.leaf)
        try:
            return str(ipaddress.ip_address(name)) in ips
        except ValueError:
            pass
        name = name.lower()
        for pattern in dns:
            pattern = pattern.lower()
            if pattern == name:
                return True
            if pattern.startswith("*.") and "." in name and name.split(".", 1)[1] == pattern[2:]:
                return True
        return False
