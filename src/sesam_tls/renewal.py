"""When to renew: pure decisions over the managed certificate's metadata and an injected clock.

Rules, in order:

1. ``force`` renews now.
2. After failed attempts, wait 1 min, 10 min, 100 min, then a day between
   tries (what Let's Encrypt asks of clients), unless forced.
3. ``days`` (``--days N``) renews when fewer than N days are left.
4. An ARI window from the CA (RFC 9773): renew at a moment chosen uniformly at
   random inside it, once chosen kept until the CA suggests another window.
5. Otherwise renew when a third of the lifetime is left (half of it for
   certificates of 10 days or less, so a 6-day certificate gets 3 days of
   retries).

Bring-your-own certificates are never renewed here; they need attention from
``BYO_WARN_DAYS`` before expiry.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any, Optional

__all__ = [
    "Decision",
    "BACKOFF",
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
BYO_WARN_DAYS = 30
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


def backoff_delay(failures: int) -> dt.timedelta:
    if failures <= 0:
        return dt.timedelta(0)
    return BACKOFF[min(failures, len(BACKOFF)) - 1]


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
    meta: dict[str, Any],
    now: dt.datetime,
    *,
    force: bool = False,
    days: Optional[int] = None,
) -> Decision:
    cert = meta.get("certificate") or {}
    not_before, not_after = parse_time(cert.get("not_before")), parse_time(cert.get("not_after"))
    if not_before is None or not_after is None:
        return Decision(True, "the metadata has no validity period; renewing")
    left = not_after - now
    if meta.get("provider") == "import":
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

    renewal = meta.get("renewal") or {}
    failures = int(renewal.get("failures") or 0)
    last_failure = parse_time(renewal.get("last_failure"))
    if failures and last_failure:
        retry_at = last_failure + backoff_delay(failures)
        if now < retry_at:
            return Decision(
                False,
                f"the last {failures} attempt(s) failed; next try after {human_time(retry_at)}",
                at=retry_at,
                backing_off=True,
            )

    if days is not None:
        at = not_after - dt.timedelta(days=days)
        if now >= at:
            return Decision(True, f"{_days(left)} left, fewer than --days {days}")
        return Decision(False, f"{_days(left)} left; due at {human_time(at)} (--days {days})", at=at)

    ari = renewal.get("ari") or {}
    chosen = parse_time(ari.get("chosen"))
    if chosen is not None:
        if now >= chosen:
            return Decision(True, "inside the CA's suggested renewal window (ARI)")
        return Decision(False, f"{_days(left)} left; the CA suggests renewing at {human_time(chosen)} (ARI)", at=chosen)

    at = lifetime_renewal_time(not_before, not_after)
    if now >= at:
        return Decision(True, f"{_days(left)} left of {_days(not_after - not_before)}")
    return Decision(False, f"{_days(left)} left; due at {human_time(at)}", at=at)
