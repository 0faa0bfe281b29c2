"""The provider protocol and the request every provider answers."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, Sequence, Union

from ..bundle import Bundle
from ..errors import UsageError
from ..keys import DEFAULT_KEY_TYPE, check_key_policy, check_key_type
from ..names import MAX_NAMES, normalize_domain, normalize_ip, wildcard_allowed

__all__ = ["CertRequest", "Provider"]

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


@dataclass(frozen=True)
class CertRequest:
    """What the node needs a certificate for. Validated on creation.

    ``key_policy`` is what renewals do with the key (``reuse``, ``new``; None:
    the provider's default, :func:`sesam_tls.keys.default_key_policy`); it is
    recorded. ``key`` is the private key this certificate must be for (the
    live one, kept), or None for a new one; never printed or recorded.
    """

    names: tuple[str, ...] = ()
    ips: tuple[IPAddress, ...] = ()
    key_type: str = DEFAULT_KEY_TYPE
    days: Optional[int] = None
    key_policy: Optional[str] = None
    key: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        names: Sequence[str] = (),
        ips: Sequence[str] = (),
        *,
        key_type: str = DEFAULT_KEY_TYPE,
        days: Optional[int] = None,
        allow_wildcard: bool = True,
        key_policy: Optional[str] = None,
        challenge: Optional[str] = None,
    ) -> "CertRequest":
        """The checked request. With ``challenge`` (how an ACME CA will validate the names), a
        wildcard is allowed only where that challenge can prove it (:func:`names.wildcard_allowed`)."""
        if challenge is not None:
            allow_wildcard = allow_wildcard and wildcard_allowed(challenge)
        seen: dict[str, None] = {}
        for name in names:
            seen.setdefault(normalize_domain(name, allow_wildcard=allow_wildcard), None)
        addresses: dict[IPAddress, None] = {}
        for ip in ips:
            addresses.setdefault(normalize_ip(ip), None)
        if not seen and not addresses:
            raise UsageError("no names given: use `names` NAME (and/or `ips` ADDRESS)")
        if len(seen) + len(addresses) > MAX_NAMES:
            raise UsageError(f"too many names: {len(seen) + len(addresses)} (at most {MAX_NAMES} on one certificate)")
        if days is not None and not 1 <= days <= 3650:
            raise UsageError(f"invalid `days` {days}: must be between 1 and 3650")
        return cls(tuple(seen), tuple(addresses), check_key_type(key_type), days, check_key_policy(key_policy))

    @property
    def identifiers(self) -> list[str]:
        return [*self.names, *(str(ip) for ip in self.ips)]


class Provider(Protocol):
    """Turns a request into a certificate bundle. Writes nothing, restarts nothing."""

    name: str

    def issue(self, request: CertRequest) -> Bundle: ...
