"""The renewal decision table, with a fixed clock (pure: no disk, no network)."""

import datetime as dt
import random

import pytest

from sesam_tls.renewal import backoff_delay, choose_in_window, decide, lifetime_renewal_time
from sesam_tls.state import NodeRecord

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def meta(days, provider="acme", **renewal):
    return NodeRecord.from_json({
        "schema": 2,
        "provider": provider,
        "certificate": {"not_before": T0.isoformat(), "not_after": (T0 + dt.timedelta(days=days)).isoformat()},
        "renewal": renewal,
    })


def at(days, hours=0):
    return T0 + dt.timedelta(days=days, hours=hours)


@pytest.mark.parametrize(
    "lifetime, now_days, due",
    [
        (90, 0, False),
        (90, 59.9, False),
        (90, 60.0, True),  # one third of 90 days left
        (90, 89, True),
        (45, 29.9, False),
        (45, 30.0, True),
        (64, 42.6, False),
        (64, 42.7, True),
        (6, 2.9, False),  # 6-day 'shortlived': renew at half its life
        (6, 3.0, True),
        (10, 4.9, False),
        (10, 5.0, True),
        (11, 7.3, False),
        (11, 7.4, True),
    ],
)
def test_lifetime_rule(lifetime, now_days, due):
    assert decide(meta(lifetime), at(now_days)).due is due


def test_not_due_says_when():
    d = decide(meta(90), at(10))
    assert not d.due and d.at == lifetime_renewal_time(T0, at(90)) == at(60)
    assert "due at 2026-03-02" in d.reason


def test_force_and_days_override():
    assert decide(meta(90), at(1), force=True).due
    assert decide(meta(90), at(70), days=30).due is True
    assert decide(meta(90), at(50), days=30).due is False
    assert decide(meta(90), at(61), days=20).due is False  # --days beats the one-third rule both ways


def test_ari_chosen_moment_wins_over_the_lifetime_rule():
    chosen = at(40).isoformat()
    m = meta(90, ari={"chosen": chosen})
    assert decide(m, at(39)).due is False
    assert decide(m, at(40)).due is True
    late = meta(90, ari={"chosen": at(75).isoformat()})
    assert decide(late, at(61)).due is False  # the CA asks for later than one third: trust it


@pytest.mark.parametrize(
    "failures, minutes_since, due",
    [
        (1, 0.5, False),
        (1, 1, True),
        (2, 9, False),
        (2, 10, True),
        (3, 99, False),
        (3, 100, True),
        (4, 60 * 23, False),
        (9, 60 * 24, True),
    ],
)
def test_backoff_after_failures(failures, minutes_since, due):
    now = at(80)
    m = meta(90, failures=failures, last_failure=(now - dt.timedelta(minutes=minutes_since)).isoformat())
    decision = decide(m, now)
    assert decision.due is due
    assert decision.backing_off is (not due)
    assert decide(m, now, force=True).due


def test_backoff_steps():
    assert [backoff_delay(n).total_seconds() for n in range(6)] == [0, 60, 600, 6000, 86400, 86400]


@pytest.mark.parametrize(
    "now_days, attention, words",
    [
        (10, False, "imported certificate, 80 days left"),
        (61, True, "expires in 29 days"),
        (89.5, True, "cannot renew it"),
        (91, True, "expired 1 day ago"),
    ],
)
def test_bring_your_own_is_never_renewed_but_warns(now_days, attention, words):
    d = decide(meta(90, provider="import"), at(now_days))
    assert d.due is False and d.attention is attention and words in d.reason
    assert decide(meta(90, provider="import"), at(80), force=True).due is False


def test_window_choice_is_uniform_and_inside():
    rng = random.Random(7)
    start, end = at(50), at(52)
    picks = [choose_in_window(start, end, rng) for _ in range(2000)]
    assert all(start <= p <= end for p in picks)
    first_half = sum(p < at(51) for p in picks)
    assert 900 < first_half < 1100
