"""Decode what an operator hands to ``import``: certificates and keys, by content (pure).

A file is recognised by what is in it, never by its name: PEM with any
number of blocks (and text around them, as CAs and ``openssl x509 -text``
like to add), DER, PKCS#12 and PKCS#7. Each failure is one
:class:`~sesam_tls.errors.InputError` that names the file and the reason.

The password for an encrypted key or PKCS#12 file is asked for lazily
through a callback, so a terminal prompt appears only when a file turns out
to be encrypted. It is never put into a message.

A PKCS#12 file or encrypted key asks for a number of key-derivation and MAC
iterations, and OpenSSL runs them all: a count above :data:`MAX_ITERATIONS`
is refused before the file reaches cryptography (:mod:`sesam_tls.der`).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm as _Unsupported
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from .der import DerError, iteration_counts
from .errors import InputError, one_line

__all__ = ["MAX_INPUT", "MAX_ITERATIONS", "Decoded", "PasswordSource", "decode"]

#: Largest input accepted: a certificate chain is a few KiB; a megabyte is plenty.
MAX_INPUT = 1 << 20

#: Most key-derivation or MAC iterations a PKCS#12 file or encrypted key may ask
#: for. Exports by OpenSSL, Windows and Java use 2,000 to 600,000; one million
#: PBKDF2-SHA256 rounds take about a second, 2^31-1 take many minutes.
MAX_ITERATIONS = 1_000_000

#: Called with the file's name when an encrypted item needs its password;
#: returns None when there is no way to get one.
PasswordSource = Callable[[str], Optional[bytes]]

_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 #]+)-----\r?\n(.*?)-----END \1-----",
    re.DOTALL,
)

_CERT_LABELS = {b"CERTIFICATE", b"X509 CERTIFICATE"}
_KEY_LABELS = {
    b"PRIVATE KEY",
    b"RSA PRIVATE KEY",
    b"EC PRIVATE KEY",
    b"DSA PRIVATE KEY",
    b"ENCRYPTED PRIVATE KEY",
}
_PKCS7_LABELS = {b"PKCS7", b"CMS"}
#: Blocks that are not what import needs, with the reason shown to the operator.
_WRONG_KIND = {
    b"CERTIFICATE REQUEST": "this is a certificate signing request, not a certificate",
    b"NEW CERTIFICATE REQUEST": "this is a certificate signing request, not a certificate",
    b"PUBLIC KEY": "public key, not a private key",
    b"RSA PUBLIC KEY": "public key, not a private key",
    b"X509 CRL": "this is a certificate revocation list, not a certificate",
    b"OPENSSH PRIVATE KEY": "an OpenSSH key; convert it with 'ssh-keygen -p -m PEM -f FILE'",
    b"TRUSTED CERTIFICATE": "an OpenSSL 'TRUSTED CERTIFICATE'; convert it with 'openssl x509 -in FILE -out cert.pem'",
}

_ASK = "give its password with `password_file` FILE, `password_env` VAR or `password_stdin`"


@dataclass(frozen=True)
class Decoded:
    """What one file held. ``ignored`` lists blocks that were skipped, for warnings."""

    source: str
    certificates: tuple[x509.Certificate, ...] = ()
    keys: tuple[PrivateKeyTypes, ...] = ()
    ignored: tuple[str, ...] = ()


def _no_password(source: str) -> Optional[bytes]:
    return None


def decode(data: bytes, *, source: str, password: PasswordSource = _no_password) -> Decoded:
    """Everything usable in ``data``; InputError when there is nothing, or it cannot be read."""
    if len(data) > MAX_INPUT:
        raise InputError(f"{source}: larger than 1 MiB; not a certificate or key file")
    if not data.strip():
        raise InputError(f"{source}: the file is empty")
    if b"-----BEGIN " in data:
        decoded = _decode_pem(data, source, password)
    else:
        decoded = _decode_der(data, source, password)
    for index, cert in enumerate(decoded.certificates, 1):
        _check_readable(cert, f"{source}: certificate #{index}")
    return decoded


def _check_readable(cert: x509.Certificate, where: str) -> None:
    """cryptography parses a certificate's names and extensions only when asked:
    ask now, so a certificate damaged inside is refused here, naming the file."""
    try:
        _ = (cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), len(cert.extensions),
             cert.not_valid_after_utc, cert.public_key())
    except (ValueError, _Unsupported) as exc:  # a key on a curve nobody knows: found by fuzzing
        reason = one_line(exc, 160)
        raise InputError(f"{where} is damaged inside ({reason})") from None


# PEM ----------------------------------------------------------------------------


def _decode_pem(data: bytes, source: str, password: PasswordSource) -> Decoded:
    blocks = [(m.group(1), m.group(0), m.group(2)) for m in _BLOCK.finditer(data)]
    if not blocks:
        raise InputError(
            f"{source}: a '-----BEGIN' line without its matching '-----END' line; the PEM is damaged"
        )
    certs: list[x509.Certificate] = []
    keys: list[PrivateKeyTypes] = []
    wrong: list[str] = []
    for index, (label, block, body) in enumerate(blocks, 1):
        where = f"{source}: PEM block #{index} ({label.decode()})"
        if label in _CERT_LABELS:
            certs.append(_pem_certificate(block, body, where))
        elif label in _KEY_LABELS:
            keys.append(_pem_key(block, source, where, password))
        elif label in _PKCS7_LABELS:
            try:
                certs.extend(pkcs7.load_pem_pkcs7_certificates(block))
            except ValueError:
                raise InputError(f"{where}: damaged or not a certificate bundle") from None
        else:
            wrong.append(_WRONG_KIND.get(label, f"an unsupported PEM block '{label.decode()}'"))
    if not certs and not keys:
        raise InputError(f"{source}: {wrong[0]}")
    return Decoded(source, tuple(certs), tuple(keys), tuple(wrong))


def _pem_certificate(block: bytes, body: bytes, where: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(block)
    except ValueError:
        pass
    try:
        base64.b64decode(b"".join(body.split()), validate=True)
    except binascii.Error:
        raise InputError(f"{where}: damaged base64; the PEM block is not readable") from None
    raise InputError(f"{where}: damaged or not an X.509 certificate")


def _pem_key(block: bytes, source: str, where: str, password: PasswordSource) -> PrivateKeyTypes:
    encrypted = block.startswith(b"-----BEGIN ENCRYPTED") or b"Proc-Type: 4,ENCRYPTED" in block
    if not encrypted:
        try:
            return serialization.load_pem_private_key(block, password=None)
        except (ValueError, TypeError, _Unsupported):
            raise InputError(f"{where}: damaged or unsupported private key") from None
    if block.startswith(b"-----BEGIN ENCRYPTED"):
        body = block.split(b"-----")[2]  # "", "BEGIN ...", body, "END ...", ""
        try:
            der = base64.b64decode(b"".join(body.split()), validate=True)
        except binascii.Error:
            raise InputError(f"{where}: damaged base64; the PEM block is not readable") from None
        _check_iterations(der, source, "the encrypted private key")
    secret = password(source)
    if secret is None:
        raise InputError(f"{source}: the private key is encrypted; {_ASK}")
    try:
        return serialization.load_pem_private_key(block, password=secret)
    except (ValueError, TypeError, _Unsupported):
        raise InputError(f"{source}: wrong password for the encrypted private key") from None


# DER --------------------------------------------------------------------------


def _decode_der(data: bytes, source: str, password: PasswordSource) -> Decoded:
    if not data.startswith(b"\x30"):  # every DER structure we accept is a SEQUENCE
        raise InputError(f"{source}: {_not_recognised(data)}")
    try:
        return Decoded(source, certificates=(x509.load_der_x509_certificate(data),))
    except ValueError:
        pass
    if _looks_like_pkcs12(data):
        return _decode_pkcs12(data, source, password)
    try:
        return Decoded(source, keys=(serialization.load_der_private_key(data, password=None),))
    except TypeError:  # "password was not given but private key is encrypted"
        return _decode_encrypted_der_key(data, source, password)
    except (ValueError, _Unsupported):
        pass
    try:
        x509.load_der_x509_csr(data)
    except ValueError:
        pass
    else:
        raise InputError(f"{source}: this is a certificate signing request, not a certificate")
    try:
        serialization.load_der_public_key(data)
    except (ValueError, _Unsupported):
        pass
    else:
        raise InputError(f"{source}: public key, not a private key")
    try:
        certs = pkcs7.load_der_pkcs7_certificates(data)
    except (ValueError, _Unsupported):
        pass
    else:
        return Decoded(source, certificates=tuple(certs))
    raise InputError(f"{source}: {_not_recognised(data)}")


def _decode_encrypted_der_key(data: bytes, source: str, password: PasswordSource) -> Decoded:
    _check_iterations(data, source, "the encrypted private key")
    secret = password(source)
    if secret is None:
        raise InputError(f"{source}: the private key is encrypted; {_ASK}")
    try:
        return Decoded(source, keys=(serialization.load_der_private_key(data, password=secret),))
    except (ValueError, TypeError, _Unsupported):
        raise InputError(f"{source}: wrong password for the encrypted private key") from None


# PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo (pkcs7-data | signedData), ... }
_PKCS7_DATA = bytes.fromhex("06092a864886f70d010701")
_PKCS7_SIGNED = bytes.fromhex("06092a864886f70d010702")


def _looks_like_pkcs12(data: bytes) -> bool:
    """The PFX header: SEQUENCE, INTEGER 3, then a ContentInfo. Cheap and exact enough."""
    header = _skip_header(data)
    if header is None:
        return False
    rest = data[header:]
    return rest.startswith(b"\x02\x01\x03") and (
        _PKCS7_DATA in rest[:40] or _PKCS7_SIGNED in rest[:40]
    )


def _skip_header(data: bytes) -> Optional[int]:
    """Offset of the content of the outer DER TLV, or None when it is not one."""
    if len(data) < 2:
        return None
    first = data[1]
    if first < 0x80:
        return 2
    count = first & 0x7F
    return 2 + count if 0 < count <= 4 and len(data) > 2 + count else None


def _check_iterations(der: bytes, source: str, what: str, *, pkcs12: bool = False) -> None:
    """InputError when ``der`` asks for more than MAX_ITERATIONS of anything (or cannot be walked)."""
    try:
        counts = iteration_counts(der, pkcs12=pkcs12)
    except DerError as exc:
        raise InputError(f"{source}: {what} is damaged ({exc})") from None
    for kind, count in counts:
        if count > MAX_ITERATIONS:
            raise InputError(
                f"{source}: {what} asks for {count:,} iterations of its {kind}, more than the "
                f"{MAX_ITERATIONS:,} sesam-tls accepts (exports by OpenSSL, Windows and Java use 2,000 to "
                "600,000); export it again with fewer"
            )


def _decode_pkcs12(data: bytes, source: str, password: PasswordSource) -> Decoded:
    _check_iterations(data, source, "the PKCS#12 file", pkcs12=True)
    # Without a password first (None, then empty: tools differ in which
    # they use), so an unprotected file never causes a prompt.
    loaded = _try_pkcs12(data, (None, b""), source)
    if loaded is None:
        secret = password(source)
        if secret is None:
            raise InputError(f"{source}: the PKCS#12 file is password-protected; {_ASK}")
        loaded = _try_pkcs12(data, (secret,), source)
        if loaded is None:
            raise InputError(
                f"{source}: wrong password for the PKCS#12 file (or the file is damaged)"
            )
    key, certs = loaded
    keys = (key,) if key is not None else ()
    if not certs and not keys:
        raise InputError(f"{source}: the PKCS#12 file holds neither a certificate nor a key")
    return Decoded(source, tuple(certs), keys)


def _try_pkcs12(
    data: bytes, passwords: Sequence[Optional[bytes]], source: str
) -> Optional[tuple[Optional[PrivateKeyTypes], list[x509.Certificate]]]:
    """The key and certificates of a PKCS#12 file, trying each password in turn.

    OpenSSL decrypts and derives keys in one uninterruptible call, and some
    of the counts it obeys sit inside encrypted parts that :func:`_check_iterations`
    cannot see: the call runs in a child process with the input deadline
    (``$SESAM_TLS_INPUT_TIMEOUT``, 10 s), far above what an honest file takes.
    """
    from .child import ChildFailed, ChildTimeout, run_bounded
    from .fsutil import input_timeout

    timeout = input_timeout()
    for secret in passwords:
        try:
            packed = run_bounded(lambda: _pkcs12_to_der(data, secret), timeout)  # noqa: B023 - called at once
        except ChildFailed:
            continue  # a wrong password, an unsupported algorithm, a damaged file: as before
        except ChildTimeout:
            raise InputError(
                f"{source}: the PKCS#12 file did not decode within {timeout:g} s (it asks for too much "
                "key-derivation work); export it again with fewer iterations"
            ) from None
        return _der_from_child(packed)
    return None


def _pkcs12_to_der(data: bytes, secret: Optional[bytes]) -> bytes:
    """In the child: load the file, hand back the key (unencrypted PKCS#8) and certificates as
    length-prefixed DER. Raises what cryptography raises for a wrong password."""
    loaded = pkcs12.load_pkcs12(data, secret)
    parts = [
        loaded.key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        if loaded.key is not None
        else b""
    ]
    if loaded.cert is not None:
        parts.append(loaded.cert.certificate.public_bytes(serialization.Encoding.DER))
    parts += [c.certificate.public_bytes(serialization.Encoding.DER) for c in loaded.additional_certs]
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def _der_from_child(packed: bytes) -> tuple[Optional[PrivateKeyTypes], list[x509.Certificate]]:
    parts, at = [], 0
    while at < len(packed):
        size = int.from_bytes(packed[at:at + 4], "big")
        parts.append(packed[at + 4:at + 4 + size])
        at += 4 + size
    key = serialization.load_der_private_key(parts[0], password=None) if parts and parts[0] else None
    return key, [x509.load_der_x509_certificate(p) for p in parts[1:]]


def _not_recognised(data: bytes) -> str:
    sample = data[:4096]
    printable = sum(32 <= b < 127 or b in b"\t\r\n" for b in sample)
    if printable >= 0.95 * len(sample):
        return "no certificate or key found (text without a '-----BEGIN' PEM block)"
    return "not a certificate, key or PKCS#12 file (unrecognised binary data)"
