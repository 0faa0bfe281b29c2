"""Why a node needs a human: one list of reasons behind ``status``'s exit code, its ``--json``
and the metrics file's attention gauge, so the three can never disagree.

Each reason has a short stable ``reason`` (a Prometheus label value, for
alert rules), the ``exit_code`` it stands for (4 agent config, 5 record, 10
attention; errors.py) and a ``message`` of one line for people. The exit
code of a list is its smallest: a config or record that cannot be read
hides everything else that could be known, so it comes first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Optional

from .errors import AgentConfigError, AttentionNeeded, StorageError

if TYPE_CHECKING:  # pragma: no cover
    from .state import NodeRecord

__all__ = ["Reason", "exit_code", "renewal_reasons", "as_json"]

ATTENTION = AttentionNeeded.exit_code


@dataclass(frozen=True)
class Reason:
    reason: str
    exit_code: int
    message: str


def exit_code(reasons: list[Reason]) -> int:
    return min((r.exit_code for r in reasons), default=0)


def as_json(reasons: list[Reason]) -> dict[str, Any]:
    """The fields ``status --json`` adds: they say what the exit code says."""
    return {"attention": bool(reasons), "exit_code": exit_code(reasons), "reasons": [asdict(r) for r in reasons]}


def agent_config_reason(message: str) -> Reason:
    return Reason("agent-config-unreadable", AgentConfigError.exit_code, message)


def record_reason(message: str) -> Reason:
    return Reason("record-unreadable", StorageError.exit_code, message)


def renewal_reasons(record: Optional[NodeRecord], now: dt.datetime) -> list[Reason]:
    """Pure: what the renewal decision says a human must act on (imported and expiring,
    renewals failing and backing off, a certificate not valid yet or expired)."""
    if record is None:
        return []
    from .renewal import CLOCK_SKEW, decide, parse_time

    decision = decide(record, now)
    if not (decision.attention or decision.backing_off):
        return []
    not_before, not_after = parse_time(record.certificate.not_before), parse_time(record.certificate.not_after)
    if decision.backing_off:
        code = "renewal-failing"
    elif not_before is not None and not_before - now > CLOCK_SKEW:
        code = "not-yet-valid"
    elif not_after is not None and not_after <= now:
        code = "expired"
    else:
        code = "imported-expiring"
    return [Reason(code, ATTENTION, decision.reason)]


def deployed_reasons(deployed: Optional[dict[str, Any]], where: str, warn_days: Optional[int]) -> list[Reason]:
    """Pure: what ``status --warn-days N`` asks about the pair on disk (``api.status``'s ``deployed``)."""
    if warn_days is None:
        return []
    if not deployed:
        return [Reason("nothing-deployed", ATTENTION, f"no certificate is deployed in {where}")]
    if "error" in deployed:
        return [Reason("deployed-unusable", ATTENTION, f"the deployed pair is unusable: {deployed['error']}")]
    if deployed.get("not_yet_valid"):
        return [Reason("not-yet-valid", ATTENTION,
                       f"the deployed certificate is not valid before {deployed['not_before']}: clients refuse it")]
    days = deployed["days_left"]
    if days < 0:
        return [Reason("expired", ATTENTION, f"the deployed certificate expired on {deployed['not_after']}")]
    if days < warn_days:
        return [Reason("expiring", ATTENTION, f"the deployed certificate expires in {days} day(s), "
                                              f"fewer than {warn_days} days (--warn-days {warn_days})")]
    return []
