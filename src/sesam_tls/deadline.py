"""The project's one helper for waiting: a deadline, and a poll that never runs past it.

A run holds the node lock while it waits for a CA, Docker or a hook; every
wait must therefore end, whatever the other side does. ``Deadline`` is a
point on the monotonic clock (wall-clock jumps do not move it) that raises
the error class of the step it guards, naming what was waited for.
``poll`` repeats a check with a growing delay, honours a ``Retry-After`` the
other side asks for, and gives up at the deadline instead of sleeping past
it. Both are pure but for the clock and the sleep, which tests may replace.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Optional, TypeVar

from .errors import SesamTLSError, UsageError

__all__ = ["Deadline", "poll", "retry_after_seconds", "seconds_from_env"]

T = TypeVar("T")


class Deadline:
    """``seconds`` from now on the monotonic clock; ``check()`` raises ``error`` once it has passed.

    ``what`` names the whole wait, for the message: "the ACME exchange with
    https://... did not end within 90 s"; ``message``, when given, is the
    whole line instead (for a wait whose words the operator already knows).
    """

    def __init__(
        self,
        seconds: float,
        what: str,
        *,
        error: type[SesamTLSError] = SesamTLSError,
        message: Optional[str] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = float(seconds)
        self.what = what
        self.error = error
        self.message = message
        self._clock = clock
        self._end = clock() + self.seconds

    def remaining(self) -> float:
        """Seconds left, never below 0."""
        return max(0.0, self._end - self._clock())

    @property
    def expired(self) -> bool:
        return self._clock() >= self._end

    def exceeded(self, doing: str = "") -> SesamTLSError:
        """The error to raise once the deadline has passed (``doing``: the step it stopped)."""
        if self.message:
            return self.error(self.message)
        step = f" (stopped while {doing})" if doing else ""
        return self.error(f"{self.what} did not end within {self.seconds:g} s{step}; gave up")

    def check(self, doing: str = "") -> None:
        if self.expired:
            raise self.exceeded(doing)

    def timeout(self, cap: float, doing: str = "") -> float:
        """A timeout for one blocking call: ``cap``, or what is left when that is less (raises when none is)."""
        self.check(doing)
        return max(0.001, min(cap, self.remaining()))


def poll(
    attempt: Callable[[], tuple[bool, T, Optional[float]]],
    deadline: Deadline,
    doing: str,
    *,
    first: float = 0.02,
    growth: float = 1.5,
    cap: float = 2.0,
    slow_after: Optional[float] = None,
    slow_every: float = 1.0,
    at_once: bool = False,
    give_up: Optional[Callable[[], BaseException]] = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Wait ``first`` s (0: none), call ``attempt()``, and again with the delay growing by ``growth``
    up to ``cap`` (after a ``first`` of 0: 10 ms times ``growth``).

    ``attempt`` returns ``(done, value, retry_after)``: ``value`` is returned
    once ``done``; ``retry_after`` (seconds, or None) is what the other side
    asked for and lengthens the next wait. With ``slow_after``, an attempt that
    falls later than that many seconds after the poll began comes at least
    ``slow_every`` s after the one before: a server elsewhere (Let's Encrypt asks
    for it) is not asked more than about once a second once the quick first tries
    are over, while one next door is found ready within a few ms. No wait runs
    past the deadline: when it has passed, ``deadline.exceeded(doing)`` is raised,
    or what ``give_up()`` builds from what the attempts saw (the last handshake
    error, the holder of a lock, the servers that lag) when the wait's error says that.

    With ``at_once``, ``attempt()`` is called once straight away, before any wait
    and whatever the deadline, and the waits between the next ones are ``first``,
    ``first * growth``...: a lock asked for with no wait is still tried, and a
    check that would pass at once costs nothing.
    """
    began = deadline.remaining()  # elapsed = began - remaining(): the deadline's own clock
    delay = first
    asked: Optional[float] = None

    def check() -> None:
        if deadline.expired:
            raise give_up() if give_up is not None else deadline.exceeded(doing)

    if at_once:
        done, value, asked = attempt()
        if done:
            return value
    while True:
        wait = max(delay, asked) if asked is not None else delay
        if slow_after is not None and began - deadline.remaining() + wait > slow_after:
            wait = max(wait, slow_every)
        check()
        sleep(min(wait, deadline.remaining()))
        check()
        done, value, asked = attempt()
        if done:
            return value
        delay = min((delay if delay > 0 else 0.01) * growth, cap)


def seconds_from_env(name: str, default: float, environ: Optional[Mapping[str, str]] = None) -> float:
    """A duration from the environment variable ``name`` (seconds), else ``default``.

    For tests and for operators on a slow link; a value that is not a
    positive finite number is refused rather than ignored.
    """
    raw = (os.environ if environ is None else environ).get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"${name}={raw!r}: not a positive number of seconds")
    return value


def retry_after_seconds(value: Optional[str], *, now: Optional[dt.datetime] = None) -> Optional[float]:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or None (pure).

    The one parser of the header: ACME polling, rate limits and ARI all read it here."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    import email.utils  # here: the lock and the handshake wait too, on a renewal run that loads no email

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    now = now or dt.datetime.now(dt.timezone.utc)
    return max(0.0, (when - now).total_seconds())
