"""Prometheus text-format gauges for node_exporter's textfile collector."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .state import NodeRecord

from .fsutil import atomic_write
from .renewal import parse_time

__all__ = ["render_metrics", "write_metrics"]


def _ts(value: Any) -> Optional[float]:
    parsed = parse_time(value)
    return parsed.timestamp() if parsed else None


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(record: Optional["NodeRecord"]) -> str:
    if record is None:
        from .state import NodeRecord

        record = NodeRecord(provider="")
    cert, renewal = record.certificate, record.renewal
    labels = f'names="{_label(",".join(cert.identifiers))}",provider="{_label(record.provider)}"'
    gauges = [
        ("sesam_tls_certificate_not_after_timestamp_seconds", "When the deployed certificate expires.", _ts(cert.not_after)),
        ("sesam_tls_last_success_timestamp_seconds", "Last successful issuance or renewal.", _ts(renewal.last_success or record.deployment.deployed_at)),
        ("sesam_tls_last_failure_timestamp_seconds", "Last failed renewal attempt (0: none).", _ts(renewal.last_failure) or 0.0),
        ("sesam_tls_renewal_failures", "Failed renewal attempts since the last success.", float(renewal.failures)),
    ]
    lines = []
    for name, help_text, value in gauges:
        if value is None:
            continue
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name}{{{labels}}} {value:.0f}"]
    return "\n".join(lines) + "\n"


def write_metrics(path: Path, record: Optional["NodeRecord"]) -> None:
    atomic_write(Path(path), render_metrics(record).encode(), 0o644, what=f"metrics file {path}")
