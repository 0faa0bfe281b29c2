"""Self-signed certificates, for nodes that only talk to clients that pin or trust them."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Callable, Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..bundle import Bundle
from ..keys import generate_key
from .base import CertRequest

__all__ = ["SelfSigned"]

log = logging.getLogger("sesam_tls")

DEFAULT_DAYS = 365


class SelfSigned:
    name = "selfsigned"
    origin = "sesam-tls (self-signed)"

    def __init__(self, *, clock: Optional[Callable[[], dt.datetime]] = None) -> None:
        self._clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))

    def issue(self, request: CertRequest) -> Bundle:
        key = request.key if request.key is not None else generate_key(request.key_type)
        now = self._clock()
        days = request.days or DEFAULT_DAYS
        common_name = (request.names or tuple(str(ip) for ip in request.ips))[0]
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in request.names]
        sans += [x509.IPAddress(ip) for ip in request.ips]
        is_rsa = request.key_type.startswith("rsa")
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            # A little slack backwards: clients with a slow clock still accept it.
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_encipherment=is_rsa,
                    content_commitment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        log.info("created a self-signed %s certificate for %s, valid %d days, %s", request.key_type,
                 ", ".join(request.identifiers), days,
                 "for the same key as before" if request.key is not None else "for a new key")
        return Bundle(key=key, leaf=cert)
