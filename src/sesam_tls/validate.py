"""Is an imported key + certificate set fit for nginx and its clients? (pure, ``now`` injected)

:func:`validate` never raises for a problem with the input: it returns a
:class:`Report` with every finding, errors and warnings, so ``--check-only``
can show them all at once. It also puts the chain in order (leaf, then each
issuer, checked by name *and* signature) and drops a self-signed root.

The rules, and why:

- RSA below 2048 bits, DSA, SHA-1 and MD5 signatures: OpenSSL's default
  security level (Debian, nginx's clients) refuses them.
- Ed25519/Ed448 leaves: nginx serves them, but browsers and most TLS
  clients cannot verify them, so the node would be unreachable.
- An expired or not-yet-valid leaf or intermediate: every client refuses it.
  A notBefore up to ``CLOCK_SKEW`` ahead of this machine's clock passes: the
  CA's clock and ours differ a little, and the certificate is valid soon.
- CA:TRUE, an EKU without serverAuth, a key usage without digitalSignature:
  clients refuse such a leaf for a TLS server. One exception: a self-issued
  CA:TRUE certificate (subject = issuer, its own signature verifies) is what a
  plain ``openssl req -x509`` makes; nginx serves it and clients that pinned
  it trust it, so it passes with a warning. Never from a CA (``from_ca``).
- No subjectAltName: browsers ignore the common name since 2017.
- A critical extension clients do not know, an intermediate that is not a CA,
  a chain longer than an issuer's pathLenConstraint allows: OpenSSL (and so
  nginx's clients) refuse the whole chain.

:func:`gate` runs the same checks on a bundle a provider made (ACME,
self-signed, imported) before anything is written: no provider can replace a
good pair with one clients would refuse.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

from .bundle import Bundle
from .errors import InputError
from .renewal import CLOCK_SKEW  # one constant for the gate, status and renew

__all__ = ["CLOCK_SKEW", "ERROR", "WARNING", "Finding", "Report", "Sourced", "gate", "validate"]

ERROR = "error"
WARNING = "warning"

MIN_RSA_BITS = 2048
CURVES = ("secp256r1", "secp384r1", "secp521r1")
WEAK_HASHES = ("md5", "sha1")
MAX_CHAIN = 8
#: Most distinct certificates one input may hold. A leaf, two or three
#: intermediates, a root and a cross-signed copy or two are under ten; 20
#: leaves room for a spare intermediate per CA generation. Putting a chain in
#: order compares certificates pairwise (by name first, then by signature), so
#: a 1 MiB file of ~2,500 self-signed certificates with one name would take
#: minutes; with at most 20, at most 400 signature checks.
MAX_CERTIFICATES = 20

#: Critical extensions OpenSSL understands (X509_supported_extension); any
#: other critical extension makes it, and so nginx's clients, refuse the chain.
UNDERSTOOD_CRITICAL = frozenset(
    x509.ObjectIdentifier(oid)
    for oid in (
        "2.16.840.1.113730.1.1",  # Netscape certificate type
        "2.5.29.15",  # key usage
        "2.5.29.17",  # subject alternative name
        "2.5.29.19",  # basic constraints
        "2.5.29.32",  # certificate policies
        "2.5.29.31",  # CRL distribution points
        "2.5.29.37",  # extended key usage
        "1.3.6.1.5.5.7.1.7",  # RFC 3779 IP address blocks
        "1.3.6.1.5.5.7.1.8",  # RFC 3779 AS identifiers
        "1.3.6.1.5.5.7.48.1.5",  # OCSP no check
        "2.5.29.36",  # policy constraints
        "1.3.6.1.5.5.7.1.14",  # proxy certificate information
        "2.5.29.30",  # name constraints
        "2.5.29.33",  # policy mappings
        "2.5.29.54",  # inhibit any policy
    )
)


@dataclass(frozen=True)
class Finding:
    """One problem. ``code`` is stable (tests, JSON); ``message`` is for people."""

    level: str
    code: str
    message: str


@dataclass(frozen=True)
class Sourced:
    """A certificate or a private key and the file it came from."""

    item: object
    source: str


@dataclass(frozen=True)
class Report:
    """Every finding, and the ordered pieces when a leaf was found."""

    findings: tuple[Finding, ...] = ()
    key: Optional[PrivateKeyTypes] = None
    leaf: Optional[x509.Certificate] = None
    chain: tuple[x509.Certificate, ...] = ()
    dropped_root: Optional[x509.Certificate] = None
    names: tuple[str, ...] = ()

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors and self.key is not None and self.leaf is not None

    def bundle(self) -> Bundle:
        """The bundle to deploy; InputError (the first error) when anything was refused."""
        errors = self.errors
        if errors or self.key is None or self.leaf is None:
            first = errors[0].message if errors else "no usable key and certificate"
            more = (
                f" (and {len(errors) - 1} more; --check-only lists them all)"
                if len(errors) > 1
                else ""
            )
            raise InputError(first + more)
        return Bundle(key=self.key, leaf=self.leaf, chain=self.chain)  # type: ignore[arg-type]  # key/leaf are Optional here; the findings above raised when one is missing

    def with_findings(self, extra: Iterable[Finding], *, first: bool = False) -> "Report":
        extra = tuple(extra)
        findings = extra + self.findings if first else self.findings + extra
        return Report(findings, self.key, self.leaf, self.chain, self.dropped_root, self.names)


# helpers ----------------------------------------------------------------------


def label(cert: x509.Certificate) -> str:
    """How a certificate is named in messages: its subject, or its serial when that is empty."""
    subject = cert.subject.rfc4514_string()
    return f"'{subject}'" if subject else f"'serial {cert.serial_number:x}'"


def _fp(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _spki(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _when(moment: dt.datetime) -> str:
    from .renewal import human_time

    return human_time(moment)


def signed_by(child: x509.Certificate, parent: x509.Certificate) -> Optional[bool]:
    """True/False: ``parent`` signed ``child``; None: cannot tell (unsupported algorithm)."""
    if child.issuer != parent.subject:
        return False
    try:
        child.verify_directly_issued_by(parent)
    except InvalidSignature:
        return False
    except (ValueError, UnsupportedAlgorithm, TypeError):
        # cryptography refuses to verify SHA-1 and MD5 signatures; check
        # them by hand, so such a chain is still put in order and refused
        # for its algorithm, not reported as a broken link.
        return _verify_weak(child, parent)
    return True


def _verify_weak(child: x509.Certificate, parent: x509.Certificate) -> Optional[bool]:
    try:
        algorithm = child.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return None
    public_key = parent.public_key()
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and algorithm is not None:
            public_key.verify(
                child.signature, child.tbs_certificate_bytes, padding.PKCS1v15(), algorithm
            )
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and algorithm is not None:
            public_key.verify(child.signature, child.tbs_certificate_bytes, ec.ECDSA(algorithm))
        else:
            return None
    except InvalidSignature:
        return False
    except (ValueError, UnsupportedAlgorithm, TypeError):
        return None
    return True


def is_self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject and signed_by(cert, cert) is not False


def _self_issued_ca(cert: x509.Certificate) -> bool:
    """CA:TRUE on a certificate that provably signed itself (what ``openssl req -x509`` makes)."""
    return _is_ca(cert) and cert.issuer == cert.subject and signed_by(cert, cert) is True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def key_problem(public_key: object) -> Optional[str]:
    """Why a key is refused, or None. Works on the certificate's public key."""
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_BITS:
            return f"an RSA key of {public_key.key_size} bits is too weak (at least {MIN_RSA_BITS})"
        return None
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in CURVES:
            return f"the elliptic curve {public_key.curve.name} is not supported by clients (use P-256, P-384 or P-521)"
        return None
    if isinstance(public_key, dsa.DSAPublicKey):
        return (
            "DSA keys are not supported by TLS 1.3 clients or current browsers (use RSA or ECDSA)"
        )
    if isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        kind = "Ed25519" if isinstance(public_key, ed25519.Ed25519PublicKey) else "Ed448"
        return f"{kind} certificates are refused by browsers and most TLS clients (use ECDSA P-256 or RSA)"
    return f"the key type {type(public_key).__name__} is not supported (use RSA or ECDSA)"


def signature_problem(cert: x509.Certificate) -> Optional[str]:
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return f"an unsupported signature algorithm ({cert.signature_algorithm_oid.dotted_string})"
    if algorithm is not None and algorithm.name in WEAK_HASHES:
        return f"signed with {algorithm.name.upper()}, which clients refuse (SHA-256 or better)"
    return None


def _covers(cert: x509.Certificate, name: str) -> bool:
    # The very rule deployments use (Bundle.covers); it only reads ``leaf``,
    # and here the key may not match yet, so no Bundle can be built.
    return Bundle.covers(_LeafOnly(cert), name)  # type: ignore[arg-type]  # covers() reads only .leaf: a stand-in, not a Bundle


@dataclass(frozen=True)
class _LeafOnly:
    leaf: x509.Certificate


# the checks -------------------------------------------------------------------


@dataclass
class _Work:
    """The input, deduplicated, with the file of each item."""

    certs: list[x509.Certificate] = field(default_factory=list)
    cert_source: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    #: the bundle comes from a CA, not from the operator: no command-line hints,
    #: and a self-signed certificate is no certificate from the CA
    from_ca: bool = False
    #: subject -> certificates: a signature is checked only against an issuer's name.
    by_subject: dict[x509.Name, list[x509.Certificate]] = field(default_factory=dict)

    def src(self, cert: x509.Certificate) -> str:
        return self.cert_source[_fp(cert)]

    def error(self, code: str, message: str) -> None:
        self.findings.append(Finding(ERROR, code, message))

    def warn(self, code: str, message: str) -> None:
        self.findings.append(Finding(WARNING, code, message))


def validate(
    certificates: Sequence[Sourced],
    keys: Sequence[Sourced],
    *,
    now: dt.datetime,
    names: Sequence[str] = (),
    names_origin: str = "given with --domain",
    expiry_warning_days: int = 14,
    skew: dt.timedelta = CLOCK_SKEW,
    from_ca: bool = False,
) -> Report:
    """Check everything; the findings come in the order an operator should fix them."""
    work = _Work(from_ca=from_ca)
    for entry in certificates:
        cert: x509.Certificate = entry.item  # type: ignore[assignment]  # certificates holds only certificate entries; Sourced.item is the union
        if _fp(cert) not in work.cert_source:  # the same certificate in two files is fine
            work.cert_source[_fp(cert)] = entry.source
            work.certs.append(cert)

    if len(work.certs) > MAX_CERTIFICATES:  # before any pairwise work, and the only finding
        cert_files = ", ".join(dict.fromkeys(e.source for e in certificates))
        work.error(
            "too-many-certificates",
            f"{cert_files}: {len(work.certs)} certificates; at most {MAX_CERTIFICATES} are accepted "
            "(the certificate, its intermediates and a root are a handful); give only those",
        )
        return Report(tuple(work.findings))
    files = ", ".join(dict.fromkeys(e.source for e in (*certificates, *keys))) or "the input"
    key, key_source = _pick_key(work, keys, files)
    for cert in work.certs:
        work.by_subject.setdefault(cert.subject, []).append(cert)
    if not work.certs:
        work.error(
            "no-certificate", f"{files}: no certificate in the input; pass it with --cert FILE"
        )
        return Report(tuple(work.findings), key=key)

    leaf = _pick_leaf(work, key, key_source)
    chain, root = _order_chain(work, leaf)
    for cert in work.certs:
        if cert is not leaf and cert not in chain and cert is not root:
            work.warn(
                "unrelated-certificate",
                f"{work.src(cert)}: ignored the certificate {label(cert)}: not in the chain of {label(leaf)}",
            )
    _check_validity(work, leaf, chain, now, expiry_warning_days, skew)
    _check_algorithms(work, leaf, chain)
    _check_server_use(work, leaf)
    _check_extensions(work, leaf, chain)
    _check_path(work, leaf, chain, root)
    for name in names:
        if not _covers(leaf, name):
            work.error(
                "name-not-covered",
                f"{work.src(leaf)}: the certificate {label(leaf)} does not cover {name!r} ({names_origin}); "
                f"it covers {', '.join(_all_names(leaf)) or 'no name at all'}",
            )
    return Report(tuple(work.findings), key, leaf, tuple(chain), root, tuple(names))


def _all_names(cert: x509.Certificate) -> list[str]:
    from .bundle import san_names

    dns, ips = san_names(cert)
    return dns + ips


def _pick_key(
    work: _Work, keys: Sequence[Sourced], files: str
) -> tuple[Optional[PrivateKeyTypes], str]:
    distinct: dict[bytes, Sourced] = {}
    for entry in keys:
        distinct.setdefault(_spki(entry.item.public_key()), entry)  # type: ignore[attr-defined]  # keys holds only private keys; Sourced.item is the union
    if not distinct:
        work.error("no-key", f"{files}: no private key in the input; pass it with --key FILE")
        return None, ""
    found = list(distinct.values())
    if len(found) > 1:
        files = ", ".join(sorted({e.source for e in found}))
        work.error(
            "several-keys",
            f"{files}: {len(found)} different private keys in the input; give exactly one",
        )
    return found[0].item, found[0].source  # type: ignore[return-value]  # found holds only private keys; Sourced.item is the union


def _pick_leaf(work: _Work, key: Optional[PrivateKeyTypes], key_source: str) -> x509.Certificate:
    """The key's certificate; without a matching key, the one that signed nothing else."""
    if key is not None:
        spki = _spki(key.public_key())
        matching = [c for c in work.certs if _spki(c.public_key()) == spki]
        if matching:
            return sorted(matching, key=_is_ca)[0]  # a non-CA certificate first
    signers = {
        _fp(p)
        for c in work.certs
        for p in work.by_subject.get(c.issuer, ())
        if p is not c and signed_by(c, p)
    }
    ends = [c for c in work.certs if _fp(c) not in signers] or work.certs
    candidates = sorted(ends, key=_is_ca)
    leaf = candidates[0]
    if key is not None:
        work.error(
            "key-mismatch",
            f"{key_source}: the private key does not belong to the certificate {label(leaf)} "
            f"({work.src(leaf)}) nor to any other certificate in the input",
        )
    elif len([c for c in candidates if not _is_ca(c)]) > 1:
        names = ", ".join(label(c) for c in candidates if not _is_ca(c))
        work.error(
            "several-leaves",
            f"{work.src(leaf)}: several unrelated certificates ({names}); give one leaf",
        )
    return leaf


def _order_chain(
    work: _Work, leaf: x509.Certificate
) -> tuple[list[x509.Certificate], Optional[x509.Certificate]]:
    """leaf's issuer, its issuer, ...; a self-signed root at the end is split off."""
    chain: list[x509.Certificate] = []
    used = {_fp(leaf)}
    current = leaf
    while len(chain) < MAX_CHAIN:
        if is_self_signed(current):
            if current is leaf:
                if work.from_ca:
                    work.error(
                        "self-signed",
                        f"{work.src(leaf)}: the certificate {label(leaf)} is self-signed, not issued by the CA",
                    )
                elif _self_issued_ca(leaf):
                    work.warn(
                        "self-signed",
                        f"{work.src(leaf)}: the certificate {label(leaf)} is self-signed and marked as a CA "
                        "(CA:TRUE, as 'openssl req -x509' makes it); nginx serves it, but only clients that "
                        "trust it explicitly will connect",
                    )
                else:
                    work.warn(
                        "self-signed",
                        f"{work.src(leaf)}: the certificate {label(leaf)} is self-signed; "
                        "only clients that trust it explicitly will connect",
                    )
                return chain, None
            chain.pop()
            return chain, current
        same_name = [c for c in work.by_subject.get(current.issuer, ()) if _fp(c) not in used]
        signers = [c for c in same_name if signed_by(current, c) is not False]
        if signers:
            parent = sorted(signers, key=lambda c: -_is_ca(c))[0]
            chain.append(parent)
            used.add(_fp(parent))
            current = parent
            continue
        if same_name:
            work.error(
                "bad-signature",
                f"{work.src(same_name[0])}: the certificate {label(same_name[0])} has the name of the issuer of "
                f"{label(current)} but did not sign it (an older or newer intermediate?)",
            )
        elif current is leaf:
            work.error(
                "missing-intermediate",
                f"{work.src(leaf)}: missing intermediate: the issuer '{current.issuer.rfc4514_string()}' of "
                f"{label(leaf)} is not in the input" + ("" if work.from_ca else "; pass it with --chain FILE"),
            )
        # An intermediate whose issuer is absent: that issuer is the root
        # clients already have, which need not (and should not) be served.
        return chain, None
    work.error(
        "chain-too-long",
        f"{work.src(leaf)}: the chain of {label(leaf)} is longer than {MAX_CHAIN} certificates",
    )
    return chain, None


def _check_validity(
    work: _Work,
    leaf: x509.Certificate,
    chain: list[x509.Certificate],
    now: dt.datetime,
    warn_days: int,
    skew: dt.timedelta,
) -> None:
    for cert in (leaf, *chain):
        what = "certificate" if cert is leaf else "intermediate"
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        if now + skew < start:
            work.error(
                "not-yet-valid",
                f"{work.src(cert)}: the {what} {label(cert)} is not valid before {_when(start)} "
                f"(this machine's clock says {_when(now)})",
            )
        elif now >= end:
            work.error(
                "expired", f"{work.src(cert)}: the {what} {label(cert)} expired on {_when(end)}"
            )
        elif cert is leaf and end - now < dt.timedelta(days=warn_days):
            from .renewal import _days

            work.warn(
                "expires-soon",
                f"{work.src(cert)}: the certificate {label(cert)} expires in {_days(end - now)} ({_when(end)})",
            )


def _check_algorithms(work: _Work, leaf: x509.Certificate, chain: list[x509.Certificate]) -> None:
    for cert in (leaf, *chain):
        what = "certificate" if cert is leaf else "intermediate"
        problem = key_problem(cert.public_key())
        if problem:
            work.error("weak-key", f"{work.src(cert)}: the {what} {label(cert)}: {problem}")
        problem = signature_problem(cert)
        if problem:
            work.error("weak-signature", f"{work.src(cert)}: the {what} {label(cert)} is {problem}")


def _check_server_use(work: _Work, leaf: x509.Certificate) -> None:
    where = f"{work.src(leaf)}: the certificate {label(leaf)}"
    if _is_ca(leaf) and (work.from_ca or not _self_issued_ca(leaf)):
        work.error(
            "ca-certificate", f"{where} is a CA certificate (CA:TRUE), not a server certificate"
        )
    ext = leaf.extensions
    try:
        eku = ext.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    if eku is not None and not {
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    } & set(eku):
        work.error(
            "no-server-auth",
            f"{where} is not for TLS servers: its extended key usage lacks serverAuth",
        )
    try:
        usage = ext.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    # Every TLS server key signs (TLS 1.3, ECDHE), so digitalSignature is
    # required whatever the key type. keyEncipherment on an ECDSA leaf does
    # not fit the key, but Let's Encrypt issued exactly that for years and
    # clients ignore it: flagging it would only teach operators to ignore us.
    if usage is not None and not usage.digital_signature:
        work.error(
            "key-usage",
            f"{where} has a key usage without digitalSignature, which TLS 1.3 and ECDHE clients require",
        )
    try:
        ext.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        work.error("no-san", f"{where} has no subjectAltName; browsers ignore the common name")


def _check_extensions(work: _Work, leaf: x509.Certificate, chain: list[x509.Certificate]) -> None:
    for cert in (leaf, *chain):
        what = "certificate" if cert is leaf else "intermediate"
        for ext in cert.extensions:
            if ext.critical and ext.oid not in UNDERSTOOD_CRITICAL:
                name = getattr(ext.oid, "_name", "Unknown OID")
                shown = ext.oid.dotted_string if name == "Unknown OID" else f"{name} ({ext.oid.dotted_string})"
                work.error(
                    "critical-extension",
                    f"{work.src(cert)}: the {what} {label(cert)} has the critical extension {shown}, "
                    "which clients do not understand, so they refuse it",
                )


def _check_path(
    work: _Work, leaf: x509.Certificate, chain: list[x509.Certificate], root: Optional[x509.Certificate]
) -> None:
    """Every issuer is a CA, and no issuer has more intermediates below it than its pathLen allows."""
    below = 0  # intermediates between the leaf and the issuer looked at (self-issued ones do not count)
    for position, cert in enumerate((*chain, *((root,) if root is not None else ()))):
        try:
            constraints: Optional[x509.BasicConstraints] = cert.extensions.get_extension_for_class(
                x509.BasicConstraints
            ).value
        except x509.ExtensionNotFound:
            constraints = None
        is_root = position >= len(chain)  # a trusted root need not say CA:TRUE (version 1 roots)
        if (constraints is None or not constraints.ca) and not is_root:
            work.error(
                "intermediate-not-ca",
                f"{work.src(cert)}: the intermediate {label(cert)} is not a CA certificate (no CA:TRUE), "
                "so it cannot issue the certificate below it",
            )
        elif constraints is not None and constraints.path_length is not None and below > constraints.path_length:
            work.error(
                "path-length",
                f"{work.src(cert)}: the chain breaks the path length of {label(cert)}: it allows "
                f"{constraints.path_length} intermediate(s) below it, the chain has {below}",
            )
        if not is_root and cert.subject != cert.issuer:
            below += 1


def gate(
    bundle: Bundle,
    names: Sequence[str],
    *,
    now: dt.datetime,
    source: str,
    from_ca: bool = True,
) -> Report:
    """The checks of :func:`validate` on a provider's bundle, before anything is written.

    ``source`` names where the bundle comes from (the CA's directory URL, the
    files) and begins every message. ``from_ca``: a CA made it, so a
    self-signed leaf or a missing intermediate is an error. The lifetime is
    the provider's choice: no expiry warning.
    """
    certs = [Sourced(cert, source) for cert in (bundle.leaf, *bundle.chain)]
    return validate(
        certs,
        [Sourced(bundle.key, source)],
        now=now,
        names=names,
        names_origin="a name this run asked for",
        expiry_warning_days=0,
        from_ca=from_ca,
    )
