"""Prometheus text-format gauges for node_exporter's textfile collector."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from .fsutil import atomic_write
from .renewal import parse_time

__all__ = ["render_metrics", "write_metrics"]


def _ts(value: Any) -> Optional[float]:
    parsed = parse_time(value)
    return parsed.timestamp() if parsed else None


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(meta: Optional[dict[str, Any]]) -> str:
    meta = meta or {}
    cert = meta.get("certificate") or {}
    renewal = meta.get("renewal") or {}
    labels = f'names="{_label(",".join(cert.get("names", []) + cert.get("ips", [])))}",provider="{_label(str(meta.get("provider", "")))}"'
    gauges = [
        ("sesam_tls_certificate_not_after_timestamp_seconds", "When the deployed certificate expires.", _ts(cert.get("not_after"))),
        ("sesam_tls_last_success_timestamp_seconds", "Last successful issuance or renewal.", _ts(renewal.get("last_success") or (meta.get("deployment") or {}).get("deployed_at"))),
        ("sesam_tls_last_failure_timestamp_seconds", "Last failed renewal attempt (0: none).", _ts(renewal.get("last_failure")) or 0.0),
        ("sesam_tls_renewal_failures", "Failed renewal attempts since the last success.", float(renewal.get("failures") or 0)),
    ]
    lines = []
    for name, help_text, value in gauges:
        if value is None:
            continue
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name}{{{labels}}} {value:.0f}"]
    return "\n".join(lines) + "\n"


def write_metrics(path: Path, meta: Optional[dict[str, Any]]) -> None:
    atomic_write(Path(path), render_metrics(meta).encode(), 0o644, what=f"metrics file {path}")
