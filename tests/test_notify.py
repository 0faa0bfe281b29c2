"""Alerts that reach someone (issue 12, item 9): a local receiver (loopback, a free port, served
by the test) gets the JSON event for renewed, failed and attention; with the receiver down
the renewal still succeeds and the next run delivers; the failure hook hears of an attention
reason at most once a day (the clock is injected)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sesam_tls import CertRequest, DeployOptions, Node, SelfSigned, import_certificate, issue
from sesam_tls.bundle import Bundle
from sesam_tls.cli import main
from sesam_tls.errors import IssuanceError
from sesam_tls.renew import renew
from sesam_tls.state import load_metadata, load_record
from sesam_tls.store import SslFolder

from . import certgen as g
from .helpers import make_root, tree_digest
from .testbed import free_port

FILES_ONLY = DeployOptions(restart=False)
TOKEN = "T0KEN-b7f3c9e1d2"


class Receiver:
    """A webhook receiver on 127.0.0.1: keeps every JSON body, answers ``status``."""

    def __init__(self, port: int = 0, status: int = 200, delay: float = 0.0) -> None:
        self.events: list[dict] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if delay:
                    time.sleep(delay)
                receiver.paths.append(self.path)
                receiver.events.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def url_file(tmp_path: Path, port: int) -> str:
    path = tmp_path / "webhook-url"
    path.write_text(f"http://127.0.0.1:{port}/hooks/{TOKEN}\n")
    path.chmod(0o600)
    return str(path)


class Failing:
    name = "selfsigned"

    def issue(self, request):
        raise IssuanceError("cannot reach the ACME server at https://127.0.0.1:1/dir")


@pytest.fixture
def node(tmp_path):
    node = Node.from_settings(root=str(make_root(tmp_path)), env={})
    issue(CertRequest.build(["node.example.test"], days=90), SelfSigned(), node=node, options=FILES_ONLY)
    return node


def served(node) -> Bundle:
    return Bundle.from_pem(*SslFolder(node.ssl_dir).read_pair())


def test_the_receiver_gets_renewed_with_the_documented_fields(node, receiver, tmp_path, capsys):
    source = url_file(tmp_path, receiver.port)
    assert main(["renew", "--force", "--root", str(node.root), "--no-restart", "--notify-url-file", source]) == 0
    err = capsys.readouterr().err
    [event] = receiver.events
    cert = served(node)
    assert event["version"] == 1 and event["event"] == "renewed"
    assert event["names"] == ["node.example.test"] and event["serial"] == cert.serial
    assert event["not_after"] == cert.not_after.isoformat()
    assert event["node"] and event["time"] and event["reason"] == "renewal forced"
    assert "renewed the certificate for node.example.test" in event["text"]
    assert receiver.paths == [f"/hooks/{TOKEN}"]
    # Recorded by source: the path, never the URL (its token); no line names it either.
    record = node.metadata_path.read_text()
    assert TOKEN not in record and source in record
    assert TOKEN not in err
    # The next run needs no flag: the source is recorded.
    assert main(["renew", "--force", "--root", str(node.root), "--no-restart", "-q"]) == 0
    assert [e["event"] for e in receiver.events] == ["renewed", "renewed"]


def test_the_receiver_gets_failed(node, receiver, tmp_path):
    due = served(node).not_after - dt.timedelta(days=10)
    result = renew(node, options=FILES_ONLY, now=due, provider_factory=lambda *a: Failing(),
                   notify_url_file=url_file(tmp_path, receiver.port))
    assert result.status == "failed"
    [event] = receiver.events
    assert event["event"] == "failed" and "cannot reach the ACME server" in event["reason"]
    assert event["serial"] == served(node).serial


def test_with_the_receiver_down_the_renewal_succeeds_and_the_next_run_delivers(node, tmp_path, capsys):
    port = free_port()  # nobody listens there yet
    before = served(node).fingerprint
    assert main(["renew", "--force", "--root", str(node.root), "--no-restart", "--notify-url-file",
                 url_file(tmp_path, port)]) == 0
    err = capsys.readouterr().err
    assert "could not send the renewed event" in err and TOKEN not in err
    assert served(node).fingerprint != before  # renewed all the same
    pending = load_record(node.metadata_path).notify.pending
    assert [e.event for e in pending] == ["renewed"]

    late = Receiver(port)
    try:
        assert main(["renew", "--root", str(node.root), "--no-restart", "-q"]) == 0  # not due: only delivers
        assert [e["event"] for e in late.events] == ["renewed"]
        assert late.events[0]["serial"] == served(node).serial
    finally:
        late.close()
    assert load_record(node.metadata_path).notify.pending == ()


def test_a_receiver_that_does_not_answer_costs_at_most_the_timeout(node, tmp_path):
    slow = Receiver(delay=20)
    try:
        started = time.monotonic()
        result = renew(node, force=True, options=FILES_ONLY, notify_url_file=url_file(tmp_path, slow.port))
        assert result.status == "renewed"
        assert time.monotonic() - started < 30
        assert len(load_record(node.metadata_path).notify.pending) == 1
    finally:
        slow.close()


def test_a_bad_url_file_is_refused_and_changes_nothing(node, tmp_path, capsys):
    before = tree_digest(node.root)
    missing = tmp_path / "no-such-file"
    assert main(["renew", "--force", "--root", str(node.root), "--no-restart", "--notify-url-file",
                 str(missing)]) == 2
    assert capsys.readouterr().err.strip() == f"sesam-tls: error: --notify-url-file {missing}: cannot read it " \
                                              "(No such file or directory)"
    not_a_url = tmp_path / "not-a-url"
    not_a_url.write_text(f"hooks/{TOKEN}\n")
    assert main(["renew", "--force", "--root", str(node.root), "--no-restart", "--notify-url-file",
                 str(not_a_url)]) == 2
    err = capsys.readouterr().err
    assert "does not hold one http(s) URL" in err and TOKEN not in err
    assert tree_digest(node.root) == before


def imported_node(tmp_path) -> tuple[Node, dt.datetime]:
    node = Node.from_settings(root=str(make_root(tmp_path)), env={})
    pki = g.pki(["node.example.com"], now=dt.datetime.now(dt.timezone.utc))
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "cert.pem").write_bytes(g.pem(pki.leaf, pki.inter.cert))
    (folder / "key.pem").write_bytes(g.key_bytes(pki.key))
    import_certificate(folder / "cert.pem", key_file=folder / "key.pem", node=node, options=FILES_ONLY,
                       domains=["node.example.com"])
    return node, pki.leaf.not_valid_after_utc


def test_an_expiring_import_runs_the_failure_hook_once_a_day_and_tells_the_receiver(tmp_path, receiver):
    node, not_after = imported_node(tmp_path)
    log = tmp_path / "hook.log"
    options = DeployOptions(restart=False, failure_hook=f'echo "$SESAM_TLS_EVENT $SESAM_TLS_REASON" >> {log}')
    source = url_file(tmp_path, receiver.port)
    t0 = not_after - dt.timedelta(days=20)

    result = renew(node, options=options, now=t0, notify_url_file=source)
    assert (result.status, result.exit_code) == ("attention", 10)
    assert log.read_text() == "attention imported-expiring\n"
    [event] = receiver.events
    assert event["event"] == "attention" and event["reason"] == "imported-expiring"
    assert event["names"] == ["node.example.com"]

    for later in (dt.timedelta(hours=12), dt.timedelta(hours=23)):  # the timer's next runs, the same day
        assert renew(node, options=options, now=t0 + later).status == "attention"
    assert log.read_text() == "attention imported-expiring\n"
    assert len(receiver.events) == 1

    assert renew(node, options=options, now=t0 + dt.timedelta(hours=24)).status == "attention"
    assert log.read_text() == "attention imported-expiring\n" * 2
    assert [e["reason"] for e in receiver.events] == ["imported-expiring"] * 2


def test_repeated_failures_need_attention_once_a_day(node, tmp_path, receiver):
    log = tmp_path / "hook.log"
    options = DeployOptions(restart=False, failure_hook=f'echo "$SESAM_TLS_EVENT $SESAM_TLS_REASON" >> {log}')
    t = served(node).not_after - dt.timedelta(days=10)
    fail = {"provider_factory": lambda *a: Failing(), "options": options}
    renew(node, now=t, notify_url_file=url_file(tmp_path, receiver.port), **fail)
    for minutes in (2, 15):  # after the 1 and 10 minute backoffs
        t += dt.timedelta(minutes=minutes)
        assert renew(node, now=t, **fail).status == "failed"
    assert [line.strip() for line in log.read_text().splitlines()] == [
        "failed", "failed", "failed", "attention repeated-failures"]
    t += dt.timedelta(minutes=30)  # backing off: nothing tried, the reason already told today
    assert renew(node, now=t, **fail).status == "attention"
    assert log.read_text().splitlines()[-1] == "attention repeated-failures"
    assert len(log.read_text().splitlines()) == 4
    assert [e["event"] for e in receiver.events] == ["failed", "failed", "failed", "attention"]


def test_an_early_ari_window_needs_attention(node, tmp_path, receiver):
    """The CA asks (ARI) for renewal long before the usual third of the lifetime: usually a
    revocation is coming. The renewal goes ahead; the hook and the receiver hear why."""
    import dataclasses

    from sesam_tls.state import AriWindow, save_record

    log = tmp_path / "hook.log"
    options = DeployOptions(restart=False, failure_hook=f'echo "$SESAM_TLS_EVENT $SESAM_TLS_REASON" >> {log}')
    rec = load_record(node.metadata_path)
    now = dt.datetime.now(dt.timezone.utc)
    early = AriWindow(supported=True, start=(now - dt.timedelta(hours=2)).isoformat(),
                      end=(now - dt.timedelta(hours=1)).isoformat(), chosen=(now - dt.timedelta(hours=1)).isoformat(),
                      explanation="https://ca.example/incident", next_poll=(now + dt.timedelta(hours=6)).isoformat())
    save_record(node.metadata_path, rec.replace(renewal=dataclasses.replace(rec.renewal, ari=early)))
    result = renew(node, options=options, now=now, notify_url_file=url_file(tmp_path, receiver.port))
    assert result.status == "renewed"
    assert log.read_text() == "attention ari-early-renewal\n"
    assert [(e["event"], e["reason"]) for e in receiver.events][-1] == ("attention", "ari-early-renewal")
    assert "https://ca.example/incident" in receiver.events[-1]["text"]


def test_a_record_without_a_webhook_tells_no_one_and_keeps_nothing(node):
    assert renew(node, force=True, options=FILES_ONLY).status == "renewed"
    meta = load_metadata(node.metadata_path)
    assert meta["notify"]["url_from"] is None and meta["notify"]["pending"] == []


def test_issue_and_import_record_the_url_file(tmp_path, receiver):
    root = make_root(tmp_path)
    source = url_file(tmp_path, receiver.port)
    assert main(["issue", "--self-signed", "-d", "node.example.test", "--root", str(root), "--no-restart", "-q",
                 "--notify-url-file", source]) == 0
    meta = load_metadata(root / "var/lib/sesam-tls/certificate.json")
    assert meta["notify"]["url_from"] == {"kind": "file", "name": source}
    assert receiver.events == []  # issue tells no one: the operator watches it


def test_the_receiver_gets_rolled_back(node, receiver, tmp_path):
    """A rollback is an event too: the operator learns that an older certificate is served again."""
    source = url_file(tmp_path, receiver.port)
    assert main(["renew", "--force", "--root", str(node.root), "--no-restart", "--notify-url-file", source, "-q"]) == 0
    before = served(node)
    assert main(["rollback", "--root", str(node.root), "--no-restart", "-q"]) == 0
    assert [e["event"] for e in receiver.events] == ["renewed", "rolled-back"]
    event = receiver.events[-1]
    assert event["serial"] == served(node).serial != before.serial
    assert event["reason"].startswith("rolled back from version ")
