"""A hostile or broken ACME server cannot hang a run, fill its memory, or make it order on a wrong clock.

Each test runs ``sesam-tls issue`` as a real process against the loopback
server of tests/hostile_net.py, with the ACME deadline shortened through
``SESAM_TLS_ACME_DEADLINE``, an address-space limit as a safety net for the
machine (a run that held a 1 GiB body would fail on it rather than swap),
and a hard kill well past the deadline. The run must end in one error
line, with the provider's exit code (8), no traceback, a bounded peak RSS,
and nothing changed in the ssl folder or the agent config.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .helpers import make_root, seed_own_pair, tree_digest
from .hostile_net import ConnectProxy, DrippingHandshake, HostileAcme
from .testbed import free_port

NAME = "node.example.test"
DEADLINE = 3.0  # seconds, through SESAM_TLS_ACME_DEADLINE
HARD_KILL = 60.0  # the test's own bound: a run still alive then has hung
MAX_RSS_MB = 300
ADDRESS_SPACE = 3 << 30  # RLIMIT_AS for the child: a safety net, far above MAX_RSS_MB


@pytest.fixture
def hostile(tmp_path):
    servers: list[HostileAcme] = []

    def make(mode: str, **kwargs) -> HostileAcme:
        server = HostileAcme(tmp_path / f"ca{len(servers)}", mode, **kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def node_root(tmp_path: Path) -> Path:
    root = make_root(tmp_path / "node")
    seed_own_pair(root, NAME)
    return root


def node_files(root: Path) -> dict[str, str]:
    """Every file and link but the state folder's: the pair, the agent config (the preflight's empty
    folders, such as ssl/.versions, do not count)."""
    digest = tree_digest(root)
    return {k: v for k, v in digest.items() if not k.startswith("var/") and not v.endswith(" dir")}


def run_issue(root: Path, server: HostileAcme | DrippingHandshake, *extra: str, deadline: float = DEADLINE,
              proxy: str = "") -> tuple[int, str, float, float]:
    """``sesam-tls issue`` as a child process: (exit code, stderr, seconds, peak RSS in MB)."""
    trust = ["--ca-bundle", server.ca_bundle] if server.ca_bundle else []
    argv = [sys.executable, "-m", "sesam_tls", "issue", "-d", NAME, "--server", server.directory, *trust,
            "--agree-tos", "--no-restart", "--root", str(root),
            "--http01", "standalone", "--http-address", "127.0.0.1", "--http-port", str(free_port()), *extra]
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("https_proxy", "http_proxy", "no_proxy")}
    env["SESAM_TLS_ACME_DEADLINE"] = str(deadline)
    if proxy:
        env["HTTPS_PROXY"] = proxy
    err = root.parent / "stderr.txt"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    started = time.monotonic()
    with open(err, "wb") as stderr:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=env,
                                preexec_fn=limit)
    ended: dict[str, object] = {}
    waiter = threading.Thread(target=lambda: ended.update(result=os.wait4(proc.pid, 0)), daemon=True)
    waiter.start()
    waiter.join(HARD_KILL)
    if waiter.is_alive():
        proc.kill()
        waiter.join(10)
        pytest.fail(f"issue did not end within {HARD_KILL:.0f} s (deadline {deadline} s): it hung\n"
                    + err.read_text(errors="replace")[-2000:])
    elapsed = time.monotonic() - started
    proc.returncode = 0  # reaped by wait4; keep Popen from waiting again
    _, status, usage = ended["result"]  # type: ignore[misc]
    return os.waitstatus_to_exitcode(status), err.read_text(errors="replace"), elapsed, usage.ru_maxrss / 1024


def assert_one_error_line(stderr: str, *words: str) -> str:
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("sesam-tls: error:")]
    assert len(errors) == 1, stderr[-3000:]
    for word in words:
        assert word in errors[0], errors[0]
    print(errors[0])  # shown with -s: the line an operator reads
    return errors[0]


# ---- time --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["drip-dir", "drip-headers", "drip-finalize"])
def test_a_dripping_server_does_not_outlive_the_deadline(tmp_path, hostile, mode):
    root = node_root(tmp_path)
    before = node_files(root)
    server = hostile(mode, drip=1.0)
    code, stderr, elapsed, _ = run_issue(root, server)
    assert elapsed < 30, f"ran {elapsed:.1f} s with a deadline of {DEADLINE} s"
    line = assert_one_error_line(stderr, "did not end within 3 s")
    assert code == 8, line
    assert node_files(root) == before
    if mode == "drip-finalize":
        assert "POST /finalize/1" in server.requests  # it got that far, and stopped there


def test_a_tls_handshake_dripped_byte_by_byte_does_not_outlive_the_deadline(tmp_path):
    """Python bounds a whole handshake by the connect timeout (30 s) on its own; the deadline (3 s)
    must end it well before that, hence a tighter (still generous) bound than the other tests."""
    root = node_root(tmp_path)
    before = node_files(root)
    server = DrippingHandshake(drip=1.0)
    try:
        code, stderr, elapsed, _ = run_issue(root, server)
    finally:
        server.close()
    assert server.requests == ["ClientHello"]
    assert elapsed < 15, f"ran {elapsed:.1f} s with a deadline of {DEADLINE} s"
    line = assert_one_error_line(stderr)
    assert code == 8, line
    assert node_files(root) == before


@pytest.mark.parametrize("mode", ["drip-headers", "ok"])
def test_through_an_outbound_proxy_too(tmp_path, hostile, mode):
    """Behind an HTTP proxy (HTTPS_PROXY, CONNECT) the connection is the proxy's tunnel: the deadline
    still cuts a CA that drips its headers, and a sound CA still issues."""
    root = node_root(tmp_path)
    before = node_files(root)
    server = hostile(mode, drip=1.0)
    proxy = ConnectProxy()
    try:
        code, stderr, elapsed, _ = run_issue(root, server, proxy=proxy.url)
    finally:
        proxy.close()
    assert proxy.tunnels and all(t == f"127.0.0.1:{server.port}" for t in proxy.tunnels)
    if mode == "ok":
        assert code == 0, stderr[-3000:]
        return
    assert elapsed < 30, f"ran {elapsed:.1f} s with a deadline of {DEADLINE} s"
    line = assert_one_error_line(stderr, "did not end within 3 s")
    assert code == 8, line
    assert node_files(root) == before


# ---- memory ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["endless-dir", "big-dir", "gzip-dir", "endless-cert"])
def test_an_endless_or_huge_answer_is_cut_at_its_cap(tmp_path, hostile, mode):
    root = node_root(tmp_path)
    before = node_files(root)
    server = hostile(mode)
    code, stderr, elapsed, rss = run_issue(root, server, deadline=60)
    assert rss < MAX_RSS_MB, f"peak RSS {rss:.0f} MB"
    line = assert_one_error_line(stderr, "more than")
    assert code == 8, line
    assert elapsed < HARD_KILL
    assert node_files(root) == before


# ---- redirects ---------------------------------------------------------------------------


def test_a_redirect_loop_is_one_line(tmp_path, hostile):
    root = node_root(tmp_path)
    before = node_files(root)
    server = hostile("redirect-loop")
    code, stderr, _, _ = run_issue(root, server)
    line = assert_one_error_line(stderr, "redirect")
    assert code == 8, line
    assert node_files(root) == before
    assert len(server.requests) <= 10


# ---- the clock ---------------------------------------------------------------------------


def test_a_clock_a_day_off_stops_the_run_before_the_order(tmp_path, hostile):
    root = node_root(tmp_path)
    before = node_files(root)
    server = hostile("date-off")
    code, stderr, _, _ = run_issue(root, server)
    line = assert_one_error_line(stderr, "clock")
    assert code == 8, line
    year = time.gmtime().tm_year
    assert line.count(str(year)) + line.count(str(year + 1)) >= 2, line  # both times are named
    assert not any(r.startswith("POST /order") for r in server.requests), server.requests
    assert node_files(root) == before


def test_the_same_server_behaving_issues(tmp_path, hostile):
    """The control case: the bounded client still completes a whole exchange with this server."""
    root = node_root(tmp_path)
    server = hostile("ok")
    code, stderr, _, _ = run_issue(root, server)
    assert code == 0, stderr[-3000:]
    assert "POST /cert/1" in server.requests


# ---- the renewal-info (ARI) poll under the node lock ------------------------------------------


def test_a_dripping_renewal_info_server_does_not_hold_the_lock(tmp_path, hostile, monkeypatch):
    """renew asks the CA for its ARI window while holding the node lock: that request has the deadline too."""
    from sesam_tls import CertRequest, DeployOptions, Node, SelfSigned, issue
    from sesam_tls.renew import renew
    from sesam_tls.providers.registry import AcmeSettings
    from sesam_tls.state import load_record, save_record

    monkeypatch.setenv("SESAM_TLS_ACME_DEADLINE", str(DEADLINE))
    node = Node.from_settings(root=str(make_root(tmp_path / "ari")), env={})
    files_only = DeployOptions(restart=False)
    issue(CertRequest.build([NAME], days=90), SelfSigned(), node=node, options=files_only)
    server = hostile("drip-dir", drip=1.0)
    record = load_record(node.metadata_path)
    record = record.replace(provider="acme",
                            provider_settings=AcmeSettings(directory=server.directory, ca_bundle=server.ca_bundle))
    save_record(node.metadata_path, record)

    result: dict[str, object] = {}
    started = time.monotonic()
    worker = threading.Thread(target=lambda: result.update(r=renew(node, options=files_only)), daemon=True)
    worker.start()
    worker.join(HARD_KILL)
    assert not worker.is_alive(), "renew hung on the renewal-info request"
    assert time.monotonic() - started < 30
    assert result["r"].status == "not-due"  # type: ignore[attr-defined]  # fell back to the lifetime rule


def test_check_reports_a_clock_a_day_off(tmp_path, hostile, capsys):
    """``check`` (orders nothing) says what ``issue`` would stop on: the clock against the CA's Date."""
    from sesam_tls.cli import main

    root = node_root(tmp_path)
    server = hostile("date-off")
    code = main(["check", "-d", "localhost", "--server", server.directory, "--ca-bundle", server.ca_bundle,
                 "--agree-tos", "--no-restart", "--http01", "standalone", "--http-address", "127.0.0.1",
                 "--http-port", str(free_port()), "--root", str(root)])
    out = capsys.readouterr().out
    assert code == 8, out
    line = next(line for line in out.splitlines() if "ACME server:" in line)
    assert line.startswith("FAIL") and "clock" in line and "behind the CA's" in line, out
