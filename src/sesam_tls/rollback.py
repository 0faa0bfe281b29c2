"""``rollback``: back to a version kept in ``ssl/.versions``, through the deployment pipeline.

The ssl folder keeps the three newest versions (:mod:`sesam_tls.store`).
Switching back is a deployment like any other: the agent config, ``nginx -t``
and a reload or restart, ``--verify``, and the previous pair again when any
of it fails. Only the pair changes: the version folder is switched to as it
is, never copied.

The record then describes the certificate that is live, so ``renew``
decides by that certificate's own dates (a rolled-back certificate that is
still valid is not renewed before it is due), and says that it was rolled
back, from which version and when (``status`` shows it). The next
deployment's record replaces that note.

The record's part is :class:`sesam_tls.state.RolledBack` (``deployment.rolled_back``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Optional

from .bundle import Bundle, key_matches_cert
from .deploy import DeployResult, prepare
from .options import DeployOptions
from .errors import InputError, SesamTLSError, UsageError, one_line
from .failpoints import failpoint
from .node import Node
from .state import HistoryEntry, NodeRecord, RolledBack, Timestamp, load_record, node_lock, save_record
from .store import SslFolder

__all__ = ["KeptVersion", "RollbackOutcome", "kept_versions", "rollback"]

log = logging.getLogger("sesam_tls")

#: Earlier certificates the record remembers (as api.HISTORY).
HISTORY = 10


@dataclass(frozen=True)
class RollbackOutcome:
    version: str
    from_version: Optional[str]
    bundle: Bundle
    deployment: DeployResult
    record: NodeRecord

    @property
    def metadata(self) -> dict[str, Any]:
        """The record as JSON values (what ``certificate.json`` holds)."""
        return self.record.to_json()

    def to_json(self) -> dict[str, Any]:
        """What ``rollback --json`` prints: the versions, the certificate now live and its deployment."""
        meta = self.metadata
        return {"result": "rolled-back", "version": self.version, "from_version": self.from_version,
                **meta["certificate"], "deployment": meta["deployment"]}


@dataclass(frozen=True)
class KeptVersion:
    """A version kept in the ssl folder (``ssl/.versions``): what ``rollback --to`` takes.

    ``error`` says why its pair does not load; the certificate's fields are then empty.
    """

    version: str
    live: bool
    names: tuple[str, ...] = ()
    serial: Optional[str] = None
    not_after: Optional[str] = None
    fingerprint_sha256: Optional[str] = None
    error: Optional[str] = None

    def to_json(self) -> dict[str, Any]:
        """As ``rollback --list --json`` shows it: the certificate's fields, or ``error``."""
        out: dict[str, Any] = {"version": self.version, "live": self.live}
        if self.error is not None:
            out["error"] = self.error
        else:
            out.update(names=list(self.names), serial=self.serial, not_after=self.not_after,
                       fingerprint_sha256=self.fingerprint_sha256)
        return out


def kept_versions(node: Optional[Node] = None) -> tuple[KeptVersion, ...]:
    """The kept versions, oldest first, and which is live. Reads only the ssl folder (no lock:
    the live version is switched by one rename, and a version folder is complete before it is named)."""
    node = node or Node.from_settings()
    folder = SslFolder(node.ssl_dir)
    live = folder.live_version()
    out = []
    for version in folder.version_ids():
        try:
            bundle = Bundle.from_pem(*folder.read_version(version), source=str(folder.versions / version))
            out.append(KeptVersion(version, version == live, names=tuple(bundle.dns_names + bundle.ip_addresses),
                                   serial=bundle.serial, not_after=bundle.not_after.isoformat(),
                                   fingerprint_sha256=bundle.fingerprint))
        except (OSError, SesamTLSError, ValueError) as exc:
            out.append(KeptVersion(version, version == live, error=one_line(exc, 160)))
    return tuple(out)


def choose_target(versions: list[str], live: Optional[str], to: Optional[str], where: str) -> str:
    """Pure: the version to switch to: ``to``, or the one kept just before the live one."""
    if to is not None:
        if to not in versions:
            kept = ", ".join(versions) or "none"
            raise UsageError(f"no version {to!r} in {where} (kept: {kept}; see sesam-tls rollback --list)")
        if to == live:
            raise UsageError(f"version {to} is live already; nothing to do")
        return to
    if live not in versions or versions.index(live) == 0:
        held = f"older than the live {live}" if live else "and none is live"
        raise UsageError(f"nothing to roll back to: {where} keeps no version {held}")
    return versions[versions.index(live) - 1]


def _checked_pair(folder: SslFolder, version: str, now: dt.datetime) -> Bundle:
    """The version's pair, when it loads, matches and is valid now: what nginx would refuse anyway
    is refused here, with nothing changed. nginx's own limits (key sizes, its OpenSSL) are
    left to ``nginx -t`` in the pipeline."""
    where = folder.versions / version
    try:
        bundle = Bundle.from_pem(*folder.read_version(version), source=str(where))
    except OSError as exc:
        raise InputError(f"cannot read version {version} in {folder.versions}: {one_line(exc)}") from None
    if not key_matches_cert(bundle.key, bundle.leaf):
        raise InputError(f"{where}: the key does not match the certificate; not switched, nothing was changed")
    if bundle.not_after <= now:
        raise InputError(f"{where}: the certificate expired at {bundle.not_after.isoformat()}; "
                         "not switched, nothing was changed")
    return bundle


def rollback(
    node: Optional[Node] = None,
    *,
    to: Optional[str] = None,
    options: DeployOptions = DeployOptions(),
    now: Optional[dt.datetime] = None,
) -> RollbackOutcome:
    """Switch the node to version ``to``, or to the one kept before the live one, and record it.

    Refused with one line and nothing changed when there is no such version,
    no older one, or its pair is unusable (UsageError, InputError); a pair
    nginx refuses is switched back (DeployError, exit 7).
    """
    from .api import hook_env
    from .hooks import run_hook

    node = node or Node.from_settings()
    now = now or dt.datetime.now(dt.timezone.utc)
    plan = prepare(node, options, probe=False)
    with node_lock(node.state_dir):
        rec = load_record(node.metadata_path)
        if rec is None:
            raise UsageError(f"no managed certificate in {node.state_dir}: nothing to roll back")
        folder = SslFolder(node.ssl_dir)
        live = folder.live_version()
        target = choose_target(folder.version_ids(), live, to, str(folder.versions))
        bundle = _checked_pair(folder, target, now)
        plan.lock_checks()  # restart rather than reload after an interrupted run: the plan decides
        log.info("rolling back from version %s to %s (serial %s)", live, target, bundle.serial)
        recorded: list[NodeRecord] = []

        def commit(result: DeployResult) -> None:
            recorded.append(_record_rollback(node, rec, bundle, result, now))

        result = plan.apply(bundle, now=now, on_deployed=commit, version=target,
                            recorded_version=rec.deployment.version)
        from . import notify

        notify.tell(node, "rolled-back", reason=f"rolled back from version {live} to {target}", now=now)
    new = recorded[-1]
    hook = options.deploy_hook if options.deploy_hook is not None else new.hooks.deploy
    run_hook("deploy", hook, hook_env(node, new, "rolled-back"), allow=new.hooks.env, secret=options.secret_env)
    return RollbackOutcome(target, live, bundle, result, new)


# --- the record --------------------------------------------------------------------------------


def _record_rollback(
    node: Node, record: NodeRecord, bundle: Bundle, result: DeployResult, now: dt.datetime
) -> NodeRecord:
    """The record after a rollback: the live certificate as it is, its deployment, the note.

    The ARI window belonged to the certificate rolled away from, so it is
    dropped (asked again for this one); failures, hooks and settings stay.
    """
    from .api import certificate_info
    from .state import CertificateInfo

    history = record.history
    if record.certificate != CertificateInfo():
        old = record.certificate
        entry = HistoryEntry(serial=old.serial, fingerprint_sha256=old.fingerprint_sha256, not_after=old.not_after,
                             version=record.deployment.version)
        history = (entry, *history)[:HISTORY]
    at = Timestamp(now.isoformat())
    deployment = dataclasses.replace(
        record.deployment,
        version=result.version,
        previous_version=result.previous_version,
        deployed_at=at,
        action=result.action,
        verified=result.verified,
        rolled_back=RolledBack(from_version=result.previous_version, to_version=result.version, at=at),
    )
    new = record.replace(certificate=certificate_info(bundle), deployment=deployment,
                         renewal=dataclasses.replace(record.renewal, ari=None), history=history)
    failpoint("api.before-metadata-save")
    save_record(node.metadata_path, new)
    return new
