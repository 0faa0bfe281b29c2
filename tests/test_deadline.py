"""The one helper for waiting (sesam_tls.deadline) and the clock check before an order: pure, on a fake clock."""

from __future__ import annotations

import datetime as dt

import pytest

from sesam_tls.deadline import Deadline, poll, seconds_from_env
from sesam_tls.errors import DockerError, IssuanceError, UsageError
from sesam_tls.providers.acme_net import CLOCK_SKEW, clock_skew_problem

from .helpers import FakeClock




def test_a_deadline_counts_down_and_raises_the_class_it_guards():
    clock = FakeClock()
    d = Deadline(10, "the Docker call", error=DockerError, clock=clock)
    assert d.remaining() == 10 and not d.expired
    assert d.timeout(30) == 10 and d.timeout(4) == 4
    clock.now += 10
    assert d.expired and d.remaining() == 0
    with pytest.raises(DockerError, match=r"the Docker call did not end within 10 s \(stopped while pulling\)"):
        d.check("pulling")
    with pytest.raises(DockerError):
        d.timeout(30)


def test_poll_grows_its_delay_to_the_cap_and_returns_when_done():
    clock = FakeClock()
    d = Deadline(100, "x", error=IssuanceError, clock=clock)
    answers = iter([False] * 9 + [True])
    value = poll(lambda: (next(answers), "done", None), d, "waiting", first=0.1, growth=2, cap=1.0, sleep=clock.sleep)
    assert value == "done"
    assert clock.slept == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])


def test_poll_can_try_at_once_and_a_deadline_can_carry_its_own_line():
    clock = FakeClock()
    d = Deadline(1, "x", error=DockerError, message="nginx in container 'web' did not come up within 1 s",
                 clock=clock)
    answers = iter([False, False, True])
    assert poll(lambda: (next(answers), 7, None), d, "", first=0, growth=2, cap=0.2, sleep=clock.sleep) == 7
    assert clock.slept == pytest.approx([0, 0.02, 0.04])
    with pytest.raises(DockerError, match=r"^nginx in container 'web' did not come up within 1 s$"):
        poll(lambda: (False, None, None), d, "", first=0, sleep=clock.sleep)


def test_poll_honours_retry_after_but_never_sleeps_past_the_deadline():
    clock = FakeClock()
    d = Deadline(10, "the order", error=IssuanceError, clock=clock)
    calls = []

    def attempt():
        calls.append(clock.now)
        return False, None, 4.0  # "come back in 4 s", for ever

    with pytest.raises(IssuanceError, match="the order did not end within 10 s .stopped while waiting"):
        poll(attempt, d, "waiting", first=0.02, sleep=clock.sleep)
    assert clock.slept[0] == pytest.approx(0.02) and clock.slept[1:3] == [4.0, 4.0]
    assert sum(clock.slept) == pytest.approx(10)  # the last sleep was cut to what was left
    assert len(calls) == 3


@pytest.mark.parametrize("raw, expected", [(None, 90.0), ("", 90.0), ("3", 3.0), ("0.5", 0.5)])
def test_a_deadline_from_the_environment(raw, expected):
    env = {} if raw is None else {"SESAM_TLS_ACME_DEADLINE": raw}
    assert seconds_from_env("SESAM_TLS_ACME_DEADLINE", 90.0, env) == expected


@pytest.mark.parametrize("raw", ["0", "-1", "nan", "inf", "soon"])
def test_a_bad_deadline_in_the_environment_is_refused(raw):
    with pytest.raises(UsageError, match=r"\$SESAM_TLS_ACME_DEADLINE="):
        seconds_from_env("SESAM_TLS_ACME_DEADLINE", 90.0, {"SESAM_TLS_ACME_DEADLINE": raw})


NOW = dt.datetime(2026, 12, 2, 4, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("off", [dt.timedelta(0), CLOCK_SKEW, -CLOCK_SKEW, dt.timedelta(seconds=-30)])
def test_a_clock_within_the_tolerance_is_fine(off):
    assert clock_skew_problem(NOW + off, NOW, host="ca.test") is None


@pytest.mark.parametrize("off, word", [(dt.timedelta(days=1), "behind"), (-dt.timedelta(minutes=6), "ahead of")])
def test_a_clock_beyond_the_tolerance_names_both_times(off, word):
    problem = clock_skew_problem(NOW + off, NOW, host="ca.test")
    assert problem is not None
    assert NOW.isoformat() in problem and (NOW + off).isoformat() in problem
    assert f"{word} the CA's" in problem and "ca.test" in problem and "\n" not in problem


def test_a_cached_answer_counts_its_age():
    """A directory served from a cache carries the origin's Date plus Age seconds: the CA's clock is both."""
    import email.utils

    from sesam_tls.providers.acme_net import Connection

    conn = Connection("https://ca.test/dir")
    now = dt.datetime.now(dt.timezone.utc)
    conn._saw_date({"Date": email.utils.format_datetime(now - dt.timedelta(minutes=10), usegmt=True), "Age": "600"})
    conn.check_clock()  # 10 minutes old, cached for 10 minutes: no skew
    conn._saw_date({"Date": email.utils.format_datetime(now - dt.timedelta(minutes=10), usegmt=True)})
    with pytest.raises(IssuanceError, match="clock"):
        conn.check_clock()


def test_poll_starts_within_a_few_ms_and_keeps_to_one_a_second_after_the_first_second():
    # The order is ready 8-30 ms after the challenge POST on a CA next door: a first wait of a few
    # ms that doubles finds it at once; a CA elsewhere (Let's Encrypt) is not polled more than about
    # once a second after the first second, whatever the growth would allow.
    clock = FakeClock()
    d = Deadline(100, "x", error=IssuanceError, clock=clock)
    tried: list[float] = []

    def attempt():
        tried.append(clock.now)
        return len(tried) == 20, "done", None

    assert poll(attempt, d, "waiting", first=0.005, growth=2, cap=2.0, slow_after=1.0, slow_every=1.0,
                sleep=clock.sleep) == "done"
    assert clock.slept[0] <= 0.005 and clock.slept[1] <= 0.01
    started = 1000.0
    late = [b - a for a, b in zip(tried, tried[1:], strict=False) if b - started > 1.0]
    assert late and min(late) >= 1.0 - 1e-9
    assert len([t for t in tried if t - started <= 1.0]) <= 10  # a handful in the first second


def test_poll_without_slow_after_may_poll_faster_than_once_a_second():
    clock = FakeClock()
    d = Deadline(100, "x", error=IssuanceError, clock=clock)
    answers = iter([False] * 6 + [True])
    poll(lambda: (next(answers), 1, None), d, "", first=0.005, growth=2, cap=0.5, sleep=clock.sleep)
    assert clock.slept == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32])
