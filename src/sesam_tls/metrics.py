"""Prometheus text-format gauges for node_exporter's textfile collector.

Named like cert-manager's (``certmanager_certificate_expiration_timestamp_seconds``,
``..._renewal_timestamp_seconds``, ``..._ready_status``) under the ``sesam_tls_``
prefix, so alert rules written for one read naturally for the other. Every
sample carries the certificate's ``names`` and ``provider``:

- ``sesam_tls_certificate_expiration_timestamp_seconds``: its not-after
  (``sesam_tls_certificate_not_after_timestamp_seconds``: the same, the older name);
- ``sesam_tls_certificate_renewal_timestamp_seconds``: when ``renew`` will
  renew it next (the ARI moment, the one-third rule, the backoff's end; for
  an imported certificate, when the 30-day warning starts);
- ``sesam_tls_certificate_ready_status{condition="True|False|Unknown"}``:
  True when a valid certificate is deployed and nothing needs attention;
- ``sesam_tls_attention{reason="..."}``: 1 per reason a human must act on
  (:mod:`sesam_tls.attention`), or one sample ``reason=""`` at 0;
- ``sesam_tls_certificate_served_status``: 1 when the last verification by
  TLS handshake saw the deployed certificate served, 0 when it did not;
  absent when none was asked for (no ``--verify``);
- ``sesam_tls_last_run_timestamp_seconds``: the last ``renew`` run, due or
  not: a timer that stopped shows as a value that stops moving (``status``
  keeps it as it was);
- last success, last failure and consecutive failures, as before.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from .fsutil import atomic_write
from .renewal import parse_time

if TYPE_CHECKING:  # pragma: no cover
    from .attention import Reason
    from .state import NodeRecord

__all__ = ["render_metrics", "write_metrics", "write_recorded_metrics"]

LAST_RUN = "sesam_tls_last_run_timestamp_seconds"


def _ts(value: Any) -> Optional[float]:
    parsed = parse_time(value)
    return parsed.timestamp() if parsed else None


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(
    record: Optional[NodeRecord],
    *,
    now: Optional[dt.datetime] = None,
    served: Optional[bool] = None,
    reasons: Optional[list[Reason]] = None,
    last_run: Optional[float] = None,
) -> str:
    """The file's text. ``reasons`` default to the renewal decision's (what ``renew`` knows);
    ``served`` defaults to the record's last verification."""
    from .attention import renewal_reasons
    from .renewal import decide

    now = now or dt.datetime.now(dt.timezone.utc)
    if record is None:
        from .state import NodeRecord

        record = NodeRecord(provider="")
    cert, renewal, deployment = record.certificate, record.renewal, record.deployment
    if reasons is None:
        reasons = renewal_reasons(record, now)
    labels = f'names="{_label(",".join(cert.identifiers))}",provider="{_label(record.provider)}"'
    not_after = _ts(cert.not_after)
    known = not_after is not None
    next_renewal: Optional[float] = None
    if known:
        decision = decide(record, now)
        next_renewal = (decision.at or now).timestamp() if (decision.at or decision.due) else None
    if served is None and deployment.verified:
        served = True
    valid = not_after is not None and (_ts(cert.not_before) or 0) <= now.timestamp() < not_after
    condition = "Unknown" if not known else "True" if valid and not reasons else "False"

    gauges: list[tuple[str, str, list[tuple[str, Optional[float]]]]] = [
        ("sesam_tls_certificate_expiration_timestamp_seconds", "When the deployed certificate expires.",
         [("", not_after)]),
        ("sesam_tls_certificate_not_after_timestamp_seconds", "When the deployed certificate expires (older name).",
         [("", not_after)]),
        ("sesam_tls_certificate_renewal_timestamp_seconds", "When renew will renew the certificate next.",
         [("", next_renewal)]),
        ("sesam_tls_certificate_ready_status", "1 for the condition that holds: True when a valid certificate is "
         "deployed and nothing needs attention.",
         [(f',condition="{c}"', 1.0 if c == condition else 0.0) for c in ("True", "False", "Unknown")]),
        ("sesam_tls_attention", "1 per reason a human must act on (the reason label says which).",
         [(f',reason="{_label(r.reason)}"', 1.0) for r in reasons] or [(',reason=""', 0.0)]),
        ("sesam_tls_certificate_served_status", "1 when the last TLS handshake check saw the deployed certificate "
         "served, 0 when it did not.", [("", None if served is None else float(served))]),
        (LAST_RUN, "Last sesam-tls renew run, due or not (a stopped timer stops it moving).", [("", last_run)]),
        ("sesam_tls_last_success_timestamp_seconds", "Last successful issuance or renewal.",
         [("", _ts(renewal.last_success or deployment.deployed_at))]),
        ("sesam_tls_last_failure_timestamp_seconds", "Last failed renewal attempt (0: none).",
         [("", _ts(renewal.last_failure) or 0.0)]),
        ("sesam_tls_renewal_failures", "Failed renewal attempts since the last success.",
         [("", float(renewal.failures))]),
    ]
    lines = []
    for name, help_text, samples in gauges:
        present = [(extra, value) for extra, value in samples if value is not None]
        if not present:
            continue
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        lines += [f"{name}{{{labels}{extra}}} {value:.0f}" for extra, value in present]
    return "\n".join(lines) + "\n"


def _previous_last_run(path: Path) -> Optional[float]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    found = re.search(rf"^{LAST_RUN}{{[^\n]*}} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def write_metrics(
    path: Path,
    record: Optional[NodeRecord],
    *,
    now: Optional[dt.datetime] = None,
    served: Optional[bool] = None,
    reasons: Optional[list[Reason]] = None,
    last_run: Optional[dt.datetime] = None,
    keep_last_run: bool = False,
) -> None:
    """Write the file atomically. ``renew`` passes ``last_run``; ``status`` keeps the one there."""
    path = Path(path)
    run = last_run.timestamp() if last_run else (_previous_last_run(path) if keep_last_run else None)
    text = render_metrics(record, now=now, served=served, reasons=reasons, last_run=run)
    atomic_write(path, text.encode(), 0o644, what=f"metrics file {path}")


def write_recorded_metrics(record: Optional[NodeRecord]) -> None:
    """The metrics file the record names (``settings.metrics_file``), rewritten after a deployment.

    ``issue`` and ``import`` end with it, so the gauges show the new
    certificate at once rather than at the timer's next run.
    """
    if record is not None and record.settings.metrics_file:
        write_metrics(Path(record.settings.metrics_file), record)
