"""Time and order storms (files only, no Docker, the real clock plus offsets).

- A deployed certificate that is not yet valid (a run with the clock years
  ahead) needs attention in ``status`` and ``status --warn-days``, and is due
  in ``renew``.
- A certificate the gate refuses was issued all the same: the failure hook
  runs, the next timer runs ask for attention (exit 10) without ordering, and
  the next order waits a day, then two days between tries, so a broken CA or
  clock never turns every timer run into a new certificate.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sesam_tls import CertRequest, DeployOptions, Node, SelfSigned, issue
from sesam_tls import status
from sesam_tls.cli import main
from sesam_tls.renew import renew
from sesam_tls.renewal import decide
from sesam_tls.state import NodeRecord, load_metadata, load_record

from .helpers import make_root
from .hostile_acme import HostileCA

NAME = "node.example.test"
FILES_ONLY = DeployOptions(restart=False)
HOUR = dt.timedelta(hours=1)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@pytest.fixture
def node(tmp_path):
    root = make_root(tmp_path)
    node = Node.from_settings(root=str(root), env={})
    issue(CertRequest.build([NAME], days=90), SelfSigned(), node=node, options=FILES_ONLY)
    return node


# a certificate from the future -----------------------------------------------------------------


@pytest.fixture
def from_the_future(tmp_path):
    """A node that got a self-signed certificate while its clock was three years ahead."""
    root = make_root(tmp_path)
    node = Node.from_settings(root=str(root), env={})
    ahead = now() + dt.timedelta(days=3 * 365)
    issue(CertRequest.build([NAME], days=90), SelfSigned(clock=lambda: ahead), node=node, options=FILES_ONLY,
          now=ahead)
    return node


def test_status_calls_a_not_yet_valid_certificate_attention(from_the_future, capsys):
    info = status(from_the_future)
    assert info.deployed.not_yet_valid is True
    assert info.renewal.attention is True and info.renewal.due is True
    assert "not valid before" in info.renewal.reason
    assert main(["status", "--root", str(from_the_future.root), "--warn-days", "14"]) == 10
    assert "not valid before" in capsys.readouterr().out


def test_renew_renews_a_not_yet_valid_certificate(from_the_future, capsys):
    before = load_metadata(from_the_future.metadata_path)["certificate"]["serial"]
    code = main(["renew", "--root", str(from_the_future.root), "--no-restart", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["result"] == "renewed"
    meta = load_metadata(from_the_future.metadata_path)
    assert meta["certificate"]["serial"] != before
    assert dt.datetime.fromisoformat(meta["certificate"]["not_before"]) <= now()


def test_a_valid_certificate_is_neither_attention_nor_due(node):
    info = status(node)
    assert info.deployed.not_yet_valid is False
    assert info.renewal.attention is False and info.renewal.due is False


# no order storms -------------------------------------------------------------------------------


class Hostile:
    """Provider seam: a CA that issues an expired certificate for the key it is asked about."""

    name = "acme"
    origin = "the ACME CA https://hostile-ca.invalid/dir"

    def __init__(self) -> None:
        self.calls = 0
        self.ca = HostileCA()

    def issue(self, request):
        from cryptography.hazmat.primitives.asymmetric import ec

        from sesam_tls.bundle import Bundle

        self.calls += 1
        key = ec.generate_private_key(ec.SECP256R1())
        certs = self.ca.chain("expired", key.public_key())
        return Bundle(key=key, leaf=certs[0], chain=tuple(certs[1:]))


def test_a_refused_certificate_makes_the_next_order_wait_a_day_then_two(node, tmp_path):
    ca = Hostile()
    hook = tmp_path / "hook.out"
    t0 = now()
    first = renew(node, force=True, now=t0, provider_factory=lambda *a: ca, options=DeployOptions(
        restart=False, failure_hook=f"echo $SESAM_TLS_EVENT >> {hook}"))
    assert (first.status, first.exit_code) == ("failed", 8)
    assert "https://hostile-ca.invalid/dir" in first.message and "expired on" in first.message
    assert hook.read_text().split() == ["failed"]

    # twice a day, the timer: attention, no order, until a day has passed
    for hours in (12, 23):
        later = renew(node, now=t0 + hours * HOUR, provider_factory=lambda *a: ca, options=FILES_ONLY)
        assert (later.status, later.exit_code) == ("attention", 10), later.message
    assert ca.calls == 1
    meta = load_record(node.metadata_path)
    assert decide(meta, t0 + 23 * HOUR).backing_off
    assert not decide(meta, t0 + 25 * HOUR).backing_off

    # a second refusal: two days
    t1 = t0 + 25 * HOUR
    second = renew(node, force=True, now=t1, provider_factory=lambda *a: ca, options=FILES_ONLY)
    assert second.exit_code == 8
    meta = load_record(node.metadata_path)
    assert decide(meta, t1 + 47 * HOUR).backing_off
    assert not decide(meta, t1 + 49 * HOUR).backing_off


def test_other_failures_keep_the_short_backoff(node):
    from sesam_tls.errors import IssuanceError

    class Down:
        name = "selfsigned"

        def issue(self, request):
            raise IssuanceError("cannot reach the ACME server at https://127.0.0.1:1/dir")

    t0 = now()
    assert renew(node, force=True, now=t0, provider_factory=lambda *a: Down(), options=FILES_ONLY).exit_code == 8
    record = load_record(node.metadata_path)
    assert not decide(record, t0 + 2 * dt.timedelta(minutes=1)).backing_off


def test_an_imported_certificate_not_valid_yet_needs_attention_and_is_not_renewed():
    t = now()
    meta = {"schema": 2, "provider": "import",
            "certificate": {"not_before": (t + dt.timedelta(days=2)).isoformat(),
                            "not_after": (t + dt.timedelta(days=90)).isoformat()}}
    decision = decide(NodeRecord.from_json(meta), t)
    assert decision.attention and not decision.due
    assert "not valid before" in decision.reason
    meta["certificate"]["not_before"] = (t + dt.timedelta(minutes=4)).isoformat()  # within the skew tolerance
    assert not decide(NodeRecord.from_json(meta), t).attention
