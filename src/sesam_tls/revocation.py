"""Revoke the node's managed ACME certificate at its CA, for a Python caller as for ``sesam-tls revoke``.

    result = sesam_tls.revoke(node, reason="superseded")
    result.serial, result.names    # what to issue again: nginx serves the revoked certificate until then

Only the certificate the ssl folder serves *and* the record names is revoked:
a revocation cannot be undone, so an operator's own pair, or a record that no
longer matches what is served, is refused before the CA is asked. With
``keyCompromise`` the request is signed with the certificate's own key (proof
of possession, what a CA wants for that reason), otherwise with the node's
ACME account. The revocation is recorded in the node record (``revoked``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Optional

from .acme_target import acme_target, remembered_acme
from .choices import REVOCATION_REASONS, canonical_reason
from .errors import UsageError
from .node import Node

__all__ = ["Revocation", "revoke"]


@dataclass(frozen=True)
class Revocation:
    """The CA confirmed the revocation of certificate ``serial`` (hex) for ``names``, for ``reason``."""

    serial: str
    reason: str
    names: tuple[str, ...]
    revoked_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        """What ``sesam-tls revoke --json`` prints, but for its ``next`` (the command line to issue again)."""
        return {"result": "revoked", "serial": self.serial, "reason": self.reason, "names": list(self.names)}


def revoke(
    node: Optional[Node] = None,
    *,
    reason: str = "unspecified",
    directory: Optional[str] = None,
    staging: bool = False,
    ca_bundle: Optional[str] = None,
) -> Revocation:
    """Revoke the managed ACME certificate of ``node`` at ``directory`` (else the CA that issued it).

    ``reason``: an RFC 5280 reason of ``sesam_tls.choices.REVOCATION_REASONS``,
    in any case (certbot writes ``keycompromise``). Raises ``UsageError`` when
    there is nothing to revoke, ``IssuanceError`` when the CA refuses (already
    revoked, say).
    """
    from .bundle import Bundle
    from .providers.acme import revoke as revoke_at_ca
    from .state import Revoked, Timestamp, load_record, node_lock, save_record
    from .store import SslFolder

    reason = canonical_reason(reason)
    if reason not in REVOCATION_REASONS:
        raise UsageError(f"`reason` {reason!r} is not a revocation reason: choose one of {', '.join(REVOCATION_REASONS)}")
    node = node or Node.from_settings()
    if remembered_acme(node) is None:
        raise UsageError(f"the node's certificate ({node.metadata_path}) was not issued by an ACME CA: nothing to revoke")
    target = acme_target(node, directory=directory, staging=staging, ca_bundle=ca_bundle)
    with node_lock(node.state_dir):
        record = load_record(node.metadata_path)
        pair = SslFolder(node.ssl_dir).read_pair()
        if pair is None:
            raise UsageError(f"no certificate in {node.ssl_dir}: nothing to revoke")
        bundle = Bundle.from_pem(pair[0], pair[1], source=str(node.ssl_dir))
        if record is None or bundle.fingerprint != record.certificate.fingerprint_sha256:
            raise UsageError(
                f"the certificate in {node.ssl_dir} is not the managed ACME certificate recorded in "
                f"{node.metadata_path}; nothing was revoked"
            )
        revoke_at_ca(
            bundle.leaf,
            state_dir=node.state_dir,
            directory=target.directory,
            ca_bundle=target.ca_bundle,
            reason=reason,
            cert_key=bundle.key if reason == "keyCompromise" else None,
        )
        at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        revoked = Revoked(serial=bundle.serial, reason=reason, at=Timestamp(at.isoformat()))
        save_record(node.metadata_path, record.replace(revoked=revoked))
    return Revocation(serial=bundle.serial, reason=reason, names=(*bundle.dns_names, *bundle.ip_addresses), revoked_at=at)
