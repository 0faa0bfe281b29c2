"""When to renew: pure decisions over the managed certificate's metadata and an injected clock.

Rules, in order:

0. A certificate not valid yet (made while this machine's clock was ahead,
   or by a CA whose clock is) needs attention: clients refuse it.
1. ``force`` renews now.
2. After failed attempts, wait 1 min, 10 min, 100 min, then a day between
   tries (what Let's Encrypt asks of clients), unless forced. After a
   certificate the gate refused, which the CA issued all the same, wait at
   least a day, then two days between tries: a broken CA or clock must not
   turn every timer run into a new certificate (Let's Encrypt allows 5
   duplicate certificates a week).
3. ``days`` (``--days N``) renews when fewer than N days are left.
4. An ARI window from the CA (RFC 9773): renew at a moment chosen uniformly at
   random inside it, once chosen kept until the CA suggests another window.
5. Otherwise renew when a third of the lifetime is left (half of it for
   certificates of 10 days or less, so a 6-day certificate gets 3 days of
   retries).

A certificate not valid yet is due (after the backoff) and needs attention.

Bring-your-own certificates are never renewed here; they need attention from
``BYO_WARN_DAYS`` before expiry.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .state import NodeRecord

__all__ = [
    "CLOCK_SKEW",
    "Decision",
    "BACKOFF",
    "REFUSED_BACKOFF",
    "BYO_WARN_DAYS",
    "backoff_delay",
    "choose_in_window",
    "decide",
    "lifetime_renewal_time",
    "parse_time",
]

#: Waits after 1, 2, 3 and more consecutive failures.
BACKOFF = (
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=10),
    dt.timedelta(minutes=100),
    dt.timedelta(days=1),
)
#: Least waits after 1, and 2 or more, refused certificates in a row.
REFUSED_BACKOFF = (dt.timedelta(days=1), dt.timedelta(days=2))
BYO_WARN_DAYS = 30
#: How far a notBefore may lie ahead of this machine's clock before the
#: certificate counts as not valid yet (here, in ``status`` and at the gate).
CLOCK_SKEW = dt.timedelta(minutes=5)
SHORT_LIVED = dt.timedelta(days=10)


@dataclass(frozen=True)
class Decision:
    """``due``: renew now. ``attention``: a human must act. ``at``: when it will be due."""

    due: bool
    reason: str
    at: Optional[dt.datetime] = None
    attention: bool = False
    backing_off: bool = False


def parse_time(value: Any) -> Optional[dt.datetime]:
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def lifetime_renewal_time(not_before: dt.datetime, not_after: dt.datetime) -> dt.datetime:
    lifetime = not_after - not_before
    remaining = lifetime / 2 if lifetime <= SHORT_LIVED else lifetime / 3
    return not_after - remaining


def backoff_delay(failures: int, refusals: int = 0) -> dt.timedelta:
    """The wait after ``failures`` failed attempts, the last ``refusals`` of them refused certificates."""
    if failures <= 0:
        return dt.timedelta(0)
    delay = BACKOFF[min(failures, len(BACKOFF)) - 1]
    if refusals > 0:
        delay = max(delay, REFUSED_BACKOFF[min(refusals, len(REFUSED_BACKOFF)) - 1])
    return delay


def choose_in_window(start: dt.datetime, end: dt.datetime, rng: random.Random) -> dt.datetime:
    """A uniformly random moment in [start, end], as RFC 9773 section 4.2 asks."""
    span = max((end - start).total_seconds(), 0.0)
    return start + dt.timedelta(seconds=rng.uniform(0, span))


def _days(delta: dt.timedelta) -> str:
    """Whole days, as people count them: '1 day', '36 days', 'less than a day'."""
    days = int(delta.total_seconds() // 86400)
    if days < 1:
        return "less than a day"
    return "1 day" if days == 1 else f"{days} days"


def human_time(moment: Optional[dt.datetime]) -> str:
    """One format for every time a person reads: to the second, in UTC."""
    if moment is None:
        return "never"
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def decide(
    record: "NodeRecord",
    now: dt.datetime,
    *,
    force: bool = False,
    days: Optional[int] = None,
) -> Decision:
    """The decision for the managed certificate ``record`` at ``now`` (pure: no disk, no clock)."""
    cert = record.certificate
    not_before, not_after = parse_time(cert.not_before), parse_time(cert.not_after)
    if not_before is None or not_after is None:
        return Decision(True, "the metadata has no validity period; renewing")
    left = not_after - now
    early = not_before - now > CLOCK_SKEW
    if record.provider == "import":
        if early:
            return Decision(
                False,
                f"the imported certificate is not valid before {human_time(not_before)}; clients refuse it: "
                "import a valid one",
                attention=True,
            )
        if left <= dt.timedelta(0):
            return Decision(False, f"the imported certificate expired {_days(-left)} ago; import a new one", attention=True)
        if left <= dt.timedelta(days=days or BYO_WARN_DAYS):
            return Decision(
                False,
                f"the imported certificate expires in {_days(left)} ({not_after:%Y-%m-%d}); "
                "sesam-tls cannot renew it: import a new one",
                attention=True,
            )
        return Decision(False, f"imported certificate, {_days(left)} left", at=not_after - dt.timedelta(days=BYO_WARN_DAYS))
    if force:
        return Decision(True, "renewal forced")

    renewal = record.renewal
    failures, refusals = renewal.failures, renewal.refusals
    last_failure = parse_time(renewal.last_failure)
    if failures and last_failure:
        retry_at = last_failure + backoff_delay(failures, refusals)
        if now < retry_at:
            why = (
                f"the CA's last certificate was refused (it was issued all the same; {refusals} in a row)"
                if refusals
                else f"the last {failures} attempt(s) failed"
            )
            return Decision(
                False,
                f"{why}; next try after {human_time(retry_at)}",
                at=retry_at,
                backing_off=True,
            )

    if early:
        return Decision(
            True,
            f"the certificate is not valid before {human_time(not_before)} (made while a clock was ahead?); "
            "clients refuse it: renewing",
            attention=True,
        )

    if days is not None:
        at = not_after - dt.timedelta(days=days)
        if now >= at:
            return Decision(True, f"{_days(left)} left, fewer than --days {days}")
        return Decision(False, f"{_days(left)} left; due at {human_time(at)} (--days {days})", at=at)

    chosen = parse_time(renewal.ari.chosen) if renewal.ari else None
    if chosen is not None:
        if now >= chosen:
            return Decision(True, "inside the CA's suggested renewal window (ARI)")
        return Decision(False, f"{_days(left)} left; the CA suggests renewing at {human_time(chosen)} (ARI)", at=chosen)

    at = lifetime_renewal_time(not_before, not_after)
    if now >= at:
        return Decision(True, f"{_days(left)} left of {_days(not_after - not_before)}")
    return Decision(False, f"{_days(left)} left; due at {human_time(at)}", at=at)
