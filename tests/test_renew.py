"""renew end to end on a scratch node (files only): decisions, failures, hooks, ARI, metrics, the lock."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sesam_tls import CertRequest, DeployOptions, Node, SelfSigned, issue
from sesam_tls.bundle import Bundle
from sesam_tls.cli import main
from sesam_tls.errors import IssuanceError, LockError
from sesam_tls.renew import renew
from sesam_tls.providers.registry import ImportSettings
from sesam_tls.state import NodeRecord, load_metadata, load_record, node_lock, save_record
from sesam_tls.store import SslFolder

from .helpers import make_root

FILES_ONLY = DeployOptions(restart=False)


class Failing:
    """Provider seam: the CA is unreachable."""

    name = "selfsigned"

    def issue(self, request):
        raise IssuanceError("cannot reach the ACME server at https://127.0.0.1:1/dir")


def self_signed(meta, node, dry_run):
    return SelfSigned()


@pytest.fixture
def node(tmp_path):
    root = make_root(tmp_path)
    node = Node.from_settings(root=str(root), env={})
    issue(CertRequest.build(["node.example.test"], days=90), SelfSigned(), node=node, options=FILES_ONLY)
    return node


def deployed(node) -> Bundle:
    return Bundle.from_pem(*SslFolder(node.ssl_dir).read_pair())


def not_after(node) -> dt.datetime:
    return deployed(node).not_after


def test_nothing_due_then_due(node):
    before = deployed(node).fingerprint
    result = renew(node, options=FILES_ONLY)
    assert (result.status, result.exit_code) == ("not-due", 0)
    assert deployed(node).fingerprint == before
    due = not_after(node) - dt.timedelta(days=29)
    result = renew(node, options=FILES_ONLY, now=due)
    assert (result.status, result.exit_code) == ("renewed", 0)
    assert deployed(node).fingerprint != before
    meta = load_metadata(node.metadata_path)
    assert meta["request"]["names"] == ["node.example.test"] and meta["request"]["days"] == 90
    assert meta["history"][0]["fingerprint_sha256"] == before


def test_failure_is_recorded_hooked_backed_off_and_recovers(node, tmp_path):
    served = deployed(node).fingerprint
    hook_out = tmp_path / "hook.env"
    options = DeployOptions(restart=False, failure_hook=f"env | grep ^SESAM_TLS_ > {hook_out}")
    now = not_after(node) - dt.timedelta(days=10)

    result = renew(node, options=options, now=now, provider_factory=lambda *a: Failing())
    assert (result.status, result.exit_code) == ("failed", IssuanceError.exit_code)
    assert "cannot reach the ACME server" in result.message
    assert deployed(node).fingerprint == served  # the node keeps its certificate
    meta = load_metadata(node.metadata_path)
    assert meta["renewal"]["failures"] == 1 and meta["renewal"]["last_result"].startswith("failed: cannot reach")
    env = dict(line.split("=", 1) for line in hook_out.read_text().splitlines())
    assert env["SESAM_TLS_EVENT"] == "failed" and env["SESAM_TLS_NAMES"] == "node.example.test"
    assert "cannot reach the ACME server" in env["SESAM_TLS_ERROR"]
    assert meta["hooks"]["failure"].startswith("env")  # stored: the timer runs it too

    # 30 s later: backing off, attention, no attempt
    result = renew(node, options=FILES_ONLY, now=now + dt.timedelta(seconds=30), provider_factory=lambda *a: Failing())
    assert (result.status, result.exit_code) == ("attention", 10) and "next try after" in result.message
    assert load_metadata(node.metadata_path)["renewal"]["failures"] == 1

    # after the first backoff step it tries again; the second failure waits 10 minutes
    renew(node, options=FILES_ONLY, now=now + dt.timedelta(minutes=2), provider_factory=lambda *a: Failing())
    assert load_metadata(node.metadata_path)["renewal"]["failures"] == 2
    result = renew(node, options=FILES_ONLY, now=now + dt.timedelta(minutes=5), provider_factory=self_signed)
    assert result.status == "attention"
    result = renew(node, options=FILES_ONLY, now=now + dt.timedelta(minutes=13), provider_factory=self_signed)
    assert result.status == "renewed"
    meta = load_metadata(node.metadata_path)
    assert meta["renewal"]["failures"] == 0 and deployed(node).fingerprint != served


def test_deploy_hook_gets_facts_not_secrets(node, tmp_path):
    out = tmp_path / "deploy.env"
    code = main([
        "renew", "--root", str(node.root), "--no-restart", "--force", "-q",
        "--deploy-hook", f"env | grep ^SESAM_TLS_ > {out}",
    ])
    assert code == 0
    env = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert env["SESAM_TLS_EVENT"] == "deployed"
    assert env["SESAM_TLS_FINGERPRINT"] == deployed(node).fingerprint
    assert env["SESAM_TLS_KEY_PATH"].endswith("privkey.pem")
    assert "PRIVATE KEY" not in out.read_text()


def test_bring_your_own_warns_and_exits_attention(node, capsys):
    record = load_record(node.metadata_path)
    save_record(node.metadata_path, record.replace(provider="import", provider_settings=ImportSettings()))
    assert main(["renew", "--root", str(node.root), "--no-restart"]) == 0
    assert "imported certificate" in capsys.readouterr().out
    result = renew(node, options=FILES_ONLY, now=not_after(node) - dt.timedelta(days=20))
    assert (result.status, result.exit_code) == ("attention", 10)
    assert "import a new one" in result.message


def test_metrics_file(node, tmp_path):
    metrics = tmp_path / "sesam_tls.prom"
    renew(node, options=FILES_ONLY, now=not_after(node) - dt.timedelta(days=5), metrics_file=metrics,
          provider_factory=lambda *a: Failing())
    text = metrics.read_text()
    values = {line.split("{")[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if not line.startswith("#")}
    assert values["sesam_tls_renewal_failures"] == 1
    assert values["sesam_tls_certificate_not_after_timestamp_seconds"] == not_after(node).timestamp()
    assert values["sesam_tls_last_failure_timestamp_seconds"] > 0


class AriServer:
    """A tiny ACME directory with renewalInfo (Pebble 2.4.0 has no ARI)."""

    def __init__(self):
        self.window = None
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                if self.path == "/dir":
                    body = {"renewalInfo": f"http://127.0.0.1:{outer.port}/ari"}
                    headers = {}
                elif self.path.startswith("/ari/"):
                    start, end = outer.window
                    body = {"suggestedWindow": {"start": start.isoformat(), "end": end.isoformat()}}
                    headers = {"Retry-After": "3600"}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ari():
    server = AriServer()
    yield server
    server.close()


def test_ari_window_decides_and_is_polled_per_retry_after(node, ari):
    meta = load_metadata(node.metadata_path)
    meta["provider"] = "acme"
    meta["provider_settings"] = {"directory": f"http://127.0.0.1:{ari.port}/dir"}
    save_record(node.metadata_path, NodeRecord.from_json(meta))
    cert_id = meta["certificate"]["ari_cert_id"]
    assert cert_id and "." in cert_id

    now = dt.datetime.now(dt.timezone.utc)
    ari.window = (now + dt.timedelta(days=1), now + dt.timedelta(days=2))
    result = renew(node, options=FILES_ONLY, now=now, rng=random.Random(1), provider_factory=self_signed)
    assert result.status == "not-due" and "(ARI)" in result.message
    stored = load_metadata(node.metadata_path)["renewal"]["ari"]
    chosen = dt.datetime.fromisoformat(stored["chosen"])
    assert ari.window[0] <= chosen <= ari.window[1]
    assert ari.requests == ["/dir", f"/ari/{cert_id}"]
    assert dt.datetime.fromisoformat(stored["next_poll"]) == now + dt.timedelta(hours=1)

    # within Retry-After: no request to the CA, same decision
    renew(node, options=FILES_ONLY, now=now + dt.timedelta(minutes=30), provider_factory=self_signed)
    assert len(ari.requests) == 2

    # the CA moves the window into the past (e.g. a revocation is coming): renew now
    ari.window = (now - dt.timedelta(hours=2), now - dt.timedelta(hours=1))
    result = renew(node, options=FILES_ONLY, now=now + dt.timedelta(hours=2), provider_factory=self_signed)
    assert result.status == "renewed" and len(ari.requests) == 4


def test_second_run_waits_for_the_lock_then_says_who_holds_it(node):
    with node_lock(node.state_dir):
        with pytest.raises(LockError, match=f"pid {os.getpid()}"):
            renew(node, options=FILES_ONLY, force=True, lock_wait=0.3)


def test_two_renewals_at_once_do_not_corrupt_anything(node):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    cmd = [sys.executable, "-m", "sesam_tls", "renew", "--root", str(node.root), "--no-restart", "--force", "--json"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    results = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert [r["result"] for r in results] == ["renewed", "renewed"]
    meta = load_metadata(node.metadata_path)
    assert meta["certificate"]["fingerprint_sha256"] == deployed(node).fingerprint
    assert len(meta["history"]) == 2
    assert not [p for p in node.ssl_dir.rglob("*") if "tmp" in p.name]
