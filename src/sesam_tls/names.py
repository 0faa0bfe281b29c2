"""Validation of the names and addresses a certificate is requested for (pure)."""

from __future__ import annotations

import ipaddress
import re
from typing import Optional

from .errors import UsageError

__all__ = ["normalize_domain", "normalize_ip", "wildcard_allowed", "MAX_NAMES"]

#: Let's Encrypt's limit of names on one certificate; we apply it everywhere.
MAX_NAMES = 100

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def wildcard_allowed(challenge: Optional[str]) -> bool:
    """Whether a wildcard name can be validated over ``challenge`` (None: http-01, the default).

    Only DNS-01 can: HTTP-01 proves control of one web server, not of every
    name under the zone (RFC 8555 section 7.1.3). The one place this rule is
    written; ``issue``, ``check`` and the ACME provider ask here.
    """
    return challenge == "dns-01"


def normalize_domain(value: str, *, allow_wildcard: bool = True) -> str:
    """Return ``value`` as a lower-case ASCII DNS name or raise UsageError.

    Internationalised names are converted to their ``xn--`` form (IDNA2008,
    UTS 46), because that is what goes into a certificate's SAN and what
    clients compare.
    """
    raw = value.strip().rstrip(".")
    if not raw:
        raise UsageError("invalid domain name '': empty")
    wildcard = raw.startswith("*.")
    rest = raw[2:] if wildcard else raw
    if rest.isascii():
        name = rest.lower()
    else:
        name = _to_ascii(value, rest)
    if wildcard:
        name = "*." + name
    if len(name) > 253:
        raise UsageError(f"invalid domain name {value!r}: longer than 253 characters")
    labels = name.split(".")
    if labels[0] == "*":
        if not allow_wildcard:
            raise UsageError(
                f"invalid domain name {value!r}: wildcards cannot be validated over HTTP-01 (it proves one "
                "web server, not every name under the zone): use `challenge` dns-01"
            )
        if len(labels) < 3:
            raise UsageError(f"invalid domain name {value!r}: a wildcard needs at least two labels after '*'")
        labels = labels[1:]
    for label in labels:
        if not _LABEL.match(label):
            raise UsageError(
                f"invalid domain name {value!r}: label {label!r} must be 1-63 letters, digits "
                "or hyphens, not starting or ending with a hyphen"
            )
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:  # the label rule lets a dotted quad through
        raise UsageError(f"invalid domain name {value!r}: that is an IP address, use `ip`")
    if labels[-1].isdigit():
        raise UsageError(f"invalid domain name {value!r}: the last label cannot be all digits")
    return name


def _to_ascii(value: str, name: str) -> str:
    """An internationalised name in its ``xn--`` form by IDNA2008 with the UTS 46
    mapping (non-transitional), as browsers and registries do today: ``straße.de``
    stays its own domain (``xn--strae-oqa.de``) instead of becoming ``strasse.de``
    as Python's built-in IDNA2003 codec would make it, and symbols such as emoji,
    which IDNA2008 does not allow, are refused."""
    import idna  # installed with requests

    try:
        return idna.encode(name, uts46=True, transitional=False).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError) as exc:
        raise UsageError(f"invalid domain name {value!r}: not a valid internationalised DNS name ({exc})") from None


def normalize_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Return ``value`` as an IP address or raise UsageError."""
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        raise UsageError(f"invalid IP address {value!r}") from None
