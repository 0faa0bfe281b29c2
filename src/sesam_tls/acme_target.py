"""Which ACME server an operation on the node's account talks to (check, revoke, account, issue).

Given explicitly, else the managed certificate's (what its record says), else
Let's Encrypt. One rule for every operation, so that ``revoke`` and ``account``
reach the CA that issued the certificate without being told again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from .errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from .node import Node
    from .providers.registry import AcmeSettings

__all__ = ["LETSENCRYPT", "LETSENCRYPT_STAGING", "AcmeTarget", "acme_target", "remembered_acme"]

LETSENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"


@dataclass(frozen=True)
class AcmeTarget:
    """An ACME directory URL and the CA file that its own TLS is checked against (None: the system's)."""

    directory: str
    ca_bundle: Optional[str] = None


def remembered_acme(node: "Node") -> "Optional[AcmeSettings]":
    """The managed certificate's ACME settings, when it came from an ACME CA, else None."""
    from .state import load_record

    record = load_record(node.metadata_path)
    if record is None or record.provider != "acme":
        return None
    return record.provider_settings


def acme_target(
    node: "Optional[Node]" = None,
    *,
    directory: Optional[str] = None,
    staging: bool = False,
    ca_bundle: Optional[str] = None,
) -> AcmeTarget:
    """``directory`` (or Let's Encrypt's staging CA with ``staging``), else the managed certificate's
    CA (with its CA bundle) when ``node`` has one, else Let's Encrypt. ``ca_bundle`` must be a file."""
    if directory and staging:
        raise UsageError("`directory` and `staging` name two ACME servers: give one")
    remembered = remembered_acme(node) if node is not None and not (directory or staging) else None
    if ca_bundle:
        path = Path(ca_bundle).absolute()
        if not path.is_file():
            raise UsageError(f"`ca_bundle` {ca_bundle}: no such file")
        bundle: Optional[str] = str(path)
    else:
        bundle = remembered.ca_bundle if remembered is not None else None
    if directory:
        return AcmeTarget(directory, bundle)
    if staging:
        return AcmeTarget(LETSENCRYPT_STAGING, bundle)
    return AcmeTarget((remembered.directory if remembered is not None else None) or LETSENCRYPT, bundle)
