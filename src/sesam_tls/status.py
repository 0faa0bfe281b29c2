"""``status``: what the node has, what is on disk, what the agent config and nginx say.

One typed answer (:class:`NodeStatus`) for Python callers and the CLI alike;
``to_json()`` is the ``status --json`` document, and ``exit_code``/``reasons``
are what ``sesam-tls status`` exits with and says (:mod:`sesam_tls.attention`,
the same list the metrics file's attention gauge is made from).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from .attention import Reason
from .node import Node
from .state import CertificateInfo, DeploySettings, RolledBack

__all__ = ["DeployedCertificate", "NodeStatus", "RenewalStatus", "Served", "status"]


@dataclass(frozen=True)
class DeployedCertificate:
    """The pair live in the ssl folder, as read now (not as recorded)."""

    certificate: CertificateInfo
    days_left: int
    not_yet_valid: bool
    #: the ssl folder's live version; None for a pair sesam-tls did not deploy
    version: Optional[str]

    def to_json(self) -> dict[str, Any]:
        from .state import encode

        return {**encode(self.certificate), "days_left": self.days_left, "not_yet_valid": self.not_yet_valid,
                "version": self.version}


@dataclass(frozen=True)
class RenewalStatus:
    """The renewal decision at ``now`` and the last attempt's outcome."""

    due: bool
    next: Optional[str]
    reason: str
    attention: bool
    last_attempt: Optional[str]
    last_result: Optional[str]
    failures: int

    def to_json(self) -> dict[str, Any]:
        return {"due": self.due, "next": self.next, "reason": self.reason, "attention": self.attention,
                "last_attempt": self.last_attempt, "last_result": self.last_result, "failures": self.failures}


@dataclass(frozen=True)
class Served:
    """What ``verify`` (HOST:PORT) serves, by TLS handshake."""

    address: str
    fingerprint_sha256: Optional[str]
    serving_deployed: bool
    error: Optional[str] = None


@dataclass(frozen=True)
class NodeStatus:
    """Everything ``status`` found; nothing that could not be read stopped it (see ``reasons``)."""

    #: a record is there; None: the record cannot be read (``record_error`` says why)
    managed: Optional[bool]
    provider: Optional[str]
    ssl_dir: str
    agent_config: str
    container: str
    record_error: Optional[str] = None
    #: what ``renew`` and the timer replay (``configure`` changes it); None without a record
    settings: Optional[DeploySettings] = None
    rolled_back: Optional[RolledBack] = None
    renewal: Optional[RenewalStatus] = None
    #: the live pair; None with ``deployed_error`` when it does not load, None alone when there is none
    deployed: Optional[DeployedCertificate] = None
    deployed_error: Optional[str] = None
    #: the agent config names the node's pair; None when it cannot be read (``agent_config_error``)
    agent_config_points_here: Optional[bool] = None
    agent_config_error: Optional[str] = None
    #: asked only with ``verify``
    served: Optional[Served] = None
    #: why the node needs a human, most serious first (empty: it does not)
    reasons: tuple[Reason, ...] = ()

    @property
    def exit_code(self) -> int:
        from .attention import exit_code

        return exit_code(list(self.reasons))

    @property
    def attention(self) -> bool:
        return bool(self.reasons)

    def to_json(self) -> dict[str, Any]:
        """The ``status --json`` document (keys in the order it has always had)."""
        from .attention import as_json
        from .state import encode

        out: dict[str, Any] = {"managed": self.managed, "provider": self.provider, "ssl_dir": self.ssl_dir,
                               "agent_config": self.agent_config, "container": self.container}
        if self.record_error is not None:
            out["record_error"] = self.record_error
        if self.settings is not None:
            out["settings"] = encode(self.settings)
        if self.rolled_back is not None:
            out["rolled_back"] = encode(self.rolled_back)
        if self.renewal is not None:
            out["renewal"] = self.renewal.to_json()
        out["deployed"] = self._deployed_json()
        out["agent_config_points_here"] = self.agent_config_points_here
        if self.agent_config_error is not None:
            out["agent_config_error"] = self.agent_config_error
        if self.served is not None:
            out["served_fingerprint_sha256"] = self.served.fingerprint_sha256
            out["serving_deployed"] = self.served.serving_deployed
            if self.served.error is not None:
                out["verify_error"] = self.served.error
        out.update(as_json(list(self.reasons)))
        return out

    def _deployed_json(self) -> Optional[dict[str, Any]]:
        if self.deployed_error is not None:
            return {"error": self.deployed_error}
        return self.deployed.to_json() if self.deployed is not None else None


def status(
    node: Optional[Node] = None,
    *,
    verify: Optional[str] = None,
    warn_days: Optional[int] = None,
    now: Optional[dt.datetime] = None,
    metrics_file: Union[str, os.PathLike[str], None] = None,
) -> NodeStatus:
    """What the node has: the managed certificate, what is on disk, what the config and nginx say.

    Nothing that cannot be read stops the report: an agent config or record
    that does not parse is reported among ``reasons`` with its own exit code
    (:mod:`sesam_tls.attention`), and ``attention``/``exit_code``/``reasons``
    are exactly what ``sesam-tls status`` exits with.

    ``metrics_file``: also write the Prometheus gauges there (node_exporter's
    textfile collector), with what this status saw; the last run's time in
    the file is kept (only ``renew`` runs).
    """
    from . import attention
    from .agent_config import AgentConfig
    from .bundle import Bundle
    from .errors import SesamTLSError
    from .state import NodeRecord, load_record
    from .store import SslFolder

    node = node or Node.from_settings()
    now = now or dt.datetime.now(dt.timezone.utc)
    reasons: list[Reason] = []
    rec: Optional[NodeRecord] = None
    try:
        rec = load_record(node.metadata_path)
    except SesamTLSError as exc:
        reasons.append(attention.record_reason(str(exc)))
    record_error = reasons[0].message if reasons else None
    renewal = _renewal(rec, now) if rec else None

    folder = SslFolder(node.ssl_dir)
    pair = folder.read_pair()
    deployed: Optional[DeployedCertificate] = None
    deployed_error: Optional[str] = None
    leaf_fingerprint: Optional[str] = None
    if pair is not None:
        try:
            bundle = Bundle.from_pem(pair[0], pair[1], source=str(node.ssl_dir))
        except SesamTLSError as exc:
            deployed_error = str(exc)
        else:
            from .api import certificate_info
            from .renewal import CLOCK_SKEW

            leaf_fingerprint = bundle.fingerprint
            deployed = DeployedCertificate(
                certificate=certificate_info(bundle),
                days_left=int((bundle.not_after - now).total_seconds() // 86400),
                not_yet_valid=bundle.not_before - now > CLOCK_SKEW,
                version=folder.live_version(),
            )
    points_here: Optional[bool] = None
    config_error: Optional[str] = None
    try:
        cert_path, key_path = AgentConfig.read(node.agent_config).ssl_paths()
        points_here = (cert_path, key_path) == (node.container_cert_path, node.container_key_path)
    except SesamTLSError as exc:
        config_error = str(exc)
        reasons.append(attention.agent_config_reason(config_error))
    reasons += attention.renewal_reasons(rec, now)
    deployed_json = {"error": deployed_error} if deployed_error is not None else (
        deployed.to_json() if deployed is not None else None)
    reasons += [r for r in attention.deployed_reasons(deployed_json, str(node.ssl_dir), warn_days)
                if r.reason not in {known.reason for known in reasons}]
    served = None
    if verify:
        served = _served(verify, leaf_fingerprint)
        if not served.serving_deployed:
            said = served.error or f"it serves {str(served.fingerprint_sha256)[:16]}…"
            reasons.append(Reason("not-served", attention.ATTENTION,
                                  f"{verify} does not serve the deployed certificate: {said}"))
    reasons.sort(key=lambda r: r.exit_code)
    result = NodeStatus(
        managed=(rec is not None) if record_error is None else None,
        provider=rec.provider if rec else None,
        ssl_dir=str(node.ssl_dir),
        agent_config=str(node.agent_config),
        container=node.container,
        record_error=record_error,
        settings=rec.settings if rec else None,
        rolled_back=rec.deployment.rolled_back if rec else None,
        renewal=renewal,
        deployed=deployed,
        deployed_error=deployed_error,
        agent_config_points_here=points_here,
        agent_config_error=config_error,
        served=served,
        reasons=tuple(reasons),
    )
    if metrics_file is not None:
        from .metrics import write_metrics

        # a record that cannot be read gives the attention gauge alone (its reason says so)
        write_metrics(Path(metrics_file), rec, now=now, served=served.serving_deployed if served else None,
                      reasons=list(result.reasons), keep_last_run=True)
    return result


def _renewal(rec: Any, now: dt.datetime) -> RenewalStatus:
    from .renewal import decide

    decision = decide(rec, now)
    return RenewalStatus(
        due=decision.due,
        next=decision.at.isoformat() if decision.at else (now.isoformat() if decision.due else None),
        reason=decision.reason,
        attention=decision.attention or decision.backing_off,
        last_attempt=rec.renewal.last_attempt,
        last_result=rec.renewal.last_result,
        failures=rec.renewal.failures,
    )


def _served(address: str, deployed_fingerprint: Optional[str]) -> Served:
    """Ask ``address`` by TLS handshake; a refusal or timeout is an answer too (``error``)."""
    from .verify import parse_address, served_certificate

    host, port = parse_address(address)
    try:
        # Over the bytes sent, as fingerprint() does: no parsing, so a certificate
        # cryptography cannot load is reported as not ours, not as a traceback.
        served = hashlib.sha256(served_certificate(host, port, timeout=5.0)).hexdigest()
    except ConnectionError as exc:
        return Served(address, None, False, str(exc))
    return Served(address, served, deployed_fingerprint is not None and served == deployed_fingerprint)
