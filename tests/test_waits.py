"""Every wait goes through ``sesam_tls.deadline.poll`` (issue 13 item 4): on a fake clock, each gives up
at its deadline with its own message, and no sleep runs past it.

The four waits: the TLS handshake (``verify.served_certificate``), the new certificate served
(``deploy._verify``), the node lock (``state.node_lock``) and the TXT records' propagation
(``dns01.wait_visible``). The clock and the sleep are passed in; what is waited for is real where
it costs nothing (a refused port, a held flock) and a stand-in otherwise.
"""

from __future__ import annotations

import hashlib
import os
import socket
from types import SimpleNamespace

import pytest

from sesam_tls import deploy, dns01
from sesam_tls.deadline import Deadline, poll
from sesam_tls.errors import DeployError, IssuanceError, LockError
from sesam_tls.options import DeployOptions
from sesam_tls.state import node_lock
from sesam_tls.verify import served_certificate

from .helpers import FakeClock




def ended_at(clock: FakeClock, seconds: float) -> None:
    """The wait slept up to its deadline and not past it."""
    assert sum(clock.slept) == pytest.approx(seconds)
    assert clock.now <= 1000.0 + seconds + 1e-9


# --- poll's two additions ---------------------------------------------------------------------------


def test_at_once_tries_before_any_wait_even_at_a_deadline_already_passed():
    clock = FakeClock()
    tries = []
    assert poll(lambda: (tries.append(1) or True, "got", None), Deadline(0, "x", clock=clock), "",
                at_once=True, sleep=clock.sleep) == "got"
    assert tries == [1] and clock.slept == []


def test_at_once_then_waits_first_growing_to_the_cap_and_give_up_builds_the_error():
    clock = FakeClock()
    seen = []

    def attempt():
        seen.append(clock.now)
        return False, None, None

    with pytest.raises(KeyError, match="last seen at 1000.9"):
        poll(attempt, Deadline(1, "x", clock=clock), "", at_once=True, first=0.1, growth=2, cap=0.3,
             give_up=lambda: KeyError(f"last seen at {seen[-1]:g}"), sleep=clock.sleep)
    assert clock.slept == pytest.approx([0.1, 0.2, 0.3, 0.3, 0.1])
    assert seen[0] == 1000.0 and len(seen) == 5
    ended_at(clock, 1)


# --- the TLS handshake ------------------------------------------------------------------------------


def test_the_handshake_wait_gives_up_at_its_timeout_naming_the_last_failure():
    with socket.socket() as held:  # bound, not listening: connections are refused, the port stays ours
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        clock = FakeClock()
        with pytest.raises(ConnectionError, match=rf"^no TLS handshake with 127\.0\.0\.1:{port}: .*refused") as err:
            served_certificate("127.0.0.1", port, timeout=1.0, clock=clock, sleep=clock.sleep)
    assert isinstance(err.value.__cause__, ConnectionRefusedError)
    assert clock.slept[:5] == pytest.approx([0.02, 0.04, 0.08, 0.16, 0.25])  # 20 ms doubling to 250 ms
    assert max(clock.slept) == pytest.approx(0.25)
    ended_at(clock, 1.0)


# --- the new certificate served ---------------------------------------------------------------------


def test_verification_gives_up_at_its_timeout_naming_both_fingerprints(monkeypatch):
    old = b"the old certificate"
    asked = []

    def served(host, port, *, server_name, timeout, clock, sleep):
        asked.append((host, port, server_name, timeout))
        return old

    monkeypatch.setattr(deploy, "served_certificate", served)
    clock = FakeClock()
    new = SimpleNamespace(fingerprint="ab" * 32, dns_names=["a.example"])
    options = DeployOptions(verify="127.0.0.1:8443", timeout=2.0)
    with pytest.raises(DeployError) as err:
        deploy._verify(options, new, clock=clock, sleep=clock.sleep)
    old_fp = hashlib.sha256(old).hexdigest()
    assert str(err.value) == (f"verification failed: 127.0.0.1:8443 serves certificate {old_fp[:16]}…, "
                              f"not the new {'ab' * 8}…")
    assert asked[0] == ("127.0.0.1", 8443, "a.example", 2.0)
    assert min(a[3] for a in asked) == 0.5  # each handshake is given what is left, at least 0.5 s
    assert clock.slept[:5] == pytest.approx([0.02, 0.04, 0.08, 0.16, 0.25])
    ended_at(clock, 2.0)


def test_verification_stops_at_a_failed_handshake_and_returns_once_the_new_one_is_served(monkeypatch):
    clock = FakeClock()
    new = b"the new certificate"
    answers = iter([b"old", b"old", new])
    monkeypatch.setattr(deploy, "served_certificate", lambda *a, **k: next(answers))
    bundle = SimpleNamespace(fingerprint=hashlib.sha256(new).hexdigest(), dns_names=[])
    deploy._verify(DeployOptions(verify="127.0.0.1:8443", timeout=2.0), bundle, clock=clock, sleep=clock.sleep)
    assert clock.slept == pytest.approx([0.02, 0.04])

    def refused(*a, **k):
        raise ConnectionError("no TLS handshake with 127.0.0.1:8443: refused")

    monkeypatch.setattr(deploy, "served_certificate", refused)
    with pytest.raises(DeployError, match=r"^verification failed: no TLS handshake with 127\.0\.0\.1:8443: refused$"):
        deploy._verify(DeployOptions(verify="127.0.0.1:8443", timeout=2.0), bundle, clock=clock, sleep=clock.sleep)


# --- the node lock ----------------------------------------------------------------------------------


def test_the_lock_wait_gives_up_at_wait_naming_the_holder(tmp_path):
    clock = FakeClock()
    with node_lock(tmp_path):  # held through another open file: flock refuses the second one
        with pytest.raises(LockError, match=rf"^another sesam-tls run \(pid {os.getpid()}\) holds "
                                            rf"{tmp_path}/lock; try again later$"):
            with node_lock(tmp_path, wait=0.3, clock=clock, sleep=clock.sleep):
                pytest.fail("the lock was taken twice")
    assert clock.slept[:6] == pytest.approx([0.05] * 6)  # every 50 ms (then what float rounding left, if any)
    ended_at(clock, 0.3)


def test_a_lock_asked_for_without_waiting_is_still_tried(tmp_path):
    clock = FakeClock()
    with node_lock(tmp_path, wait=0, clock=clock, sleep=clock.sleep):
        with pytest.raises(LockError, match="try again later"):
            with node_lock(tmp_path, wait=0, clock=clock, sleep=clock.sleep):
                pass
    assert clock.slept == []


# --- the TXT records' propagation -------------------------------------------------------------------

FIRST, LAGGING = ("192.0.2.1", 53), ("2001:db8::2", 53)


class FakeDns:
    """The first server has the values; the other never gets them (and fails to answer now and then)."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.asked: list[tuple[str, int]] = []

    def txt_values(self, server, name):
        self.asked.append(server)
        if server == FIRST:
            return {self.value, "v2"}
        if len(self.asked) % 3 == 0:
            raise IssuanceError("no answer")
        return set()


def session_for(dns, timeout):
    options = SimpleNamespace(propagation_wait=None, propagation_timeout=timeout)
    return SimpleNamespace(options=options, dns=dns, servers_for_check=lambda records: [FIRST, LAGGING])


def test_the_propagation_check_gives_up_at_its_timeout_naming_the_lagging_server():
    clock = FakeClock()
    dns = FakeDns("v1")
    records = [dns01.Record(domain="a.example", value="v1", fqdn="_acme-challenge.a.example."),
               dns01.Record(domain="b.example", value="v2", fqdn="_acme-challenge.b.example.")]
    with pytest.raises(IssuanceError) as err:
        dns01.wait_visible(session_for(dns, 5.0), records, clock=clock, sleep=clock.sleep)
    assert str(err.value) == (
        "the TXT record _acme-challenge.a.example. for a.example was not visible after 5 s: served by "
        "192.0.2.1:53 but not by [2001:db8::2]:53 (that server lags or does not get the zone's updates; "
        "`dns01.resolvers` names the servers to ask, `dns01.propagation_timeout` waits longer) "
        "(1 more names waited too)"
    )
    assert dns.asked.count(FIRST) == 2  # a value once served is not asked for again
    assert clock.slept[:6] == pytest.approx([0.02, 0.04, 0.08, 0.16, 0.32, 0.64])
    assert max(clock.slept) == pytest.approx(1.0)  # doubling to 1 s
    ended_at(clock, 5.0)


def test_the_propagation_check_returns_once_every_server_serves_every_value():
    clock = FakeClock()
    dns = FakeDns("v1")
    calls = iter([set(), set(), {"v1"}])
    dns.txt_values = lambda server, name: {"v1"} if server == FIRST else next(calls)
    record = dns01.Record(domain="a.example", value="v1", fqdn="_acme-challenge.a.example.")
    dns01.wait_visible(session_for(dns, 5.0), [record], clock=clock, sleep=clock.sleep)
    assert clock.slept == pytest.approx([0.02, 0.04])


def test_the_fixed_propagation_wait_sleeps_just_that():
    clock = FakeClock()
    session = SimpleNamespace(options=SimpleNamespace(propagation_wait=2.5, propagation_timeout=120.0))
    dns01.wait_visible(session, [], clock=clock, sleep=clock.sleep)
    assert clock.slept == [2.5]
