"""Many runs on one node at once (issue 11, item 8): the lock comes first.

Nothing another run can disturb (the ssl folder's write probe, its temp
sweep, staging) happens before the node lock is held, so a run either
deploys (exit 0) or waits its bounded time for the lock and exits 9; it
never fails half-way because another run swept its files (exit 5).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509

from sesam_tls.bundle import Bundle, fingerprint
from sesam_tls.store import SslFolder

from .helpers import make_root
from .testbed import free_port, served_cert_der

NAME = "node.example.test"
RUNS = 20


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SESAM_TLS")}


def _start(root: Path, go: Path, extra: tuple[str, ...] = ()) -> subprocess.Popen:
    """A real ``sesam-tls issue`` process that waits for ``go`` after its imports, so all of them race."""
    code = (
        "import os, sys, time\n"
        "import sesam_tls.api, sesam_tls.cli.issue, sesam_tls.providers.selfsigned\n"
        "from sesam_tls.cli import main\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    argv = ["issue", "--self-signed", "-d", NAME, "--root", str(root), *(extra or ("--no-restart",))]
    return subprocess.Popen([sys.executable, "-c", code, *argv], env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _race(root: Path, tmp: Path, runs: int = RUNS, extra: tuple[str, ...] = ()) -> list[tuple[int, str]]:
    go = tmp / f"go-{time.monotonic_ns()}"
    procs = [_start(root, go, extra) for _ in range(runs)]
    time.sleep(1.0)  # let them import
    go.touch()
    out = []
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        out.append((proc.returncode, err.strip().splitlines()[-1] if err.strip() else ""))
    return out


def _consistent(root: Path) -> None:
    ssl = root / "sesam/nginx/conf/ssl"
    bundle = Bundle.from_pem(*SslFolder(ssl).read_pair())  # raises when key and certificate do not match
    config = json.loads((root / "etc/sesam-agent/config.json").read_text())
    assert config["nginx"]["ssl_cert"] == "/etc/nginx/includes.d/ssl/fullchain.pem"
    assert config["nginx"]["ssl_key"] == "/etc/nginx/includes.d/ssl/privkey.pem"
    meta = json.loads((root / "var/lib/sesam-tls/certificate.json").read_text())
    assert meta["certificate"]["fingerprint_sha256"] == bundle.fingerprint
    assert meta["deployment"]["version"] == SslFolder(ssl).live_version()


def test_twenty_concurrent_issues_on_a_fresh_node_wait_or_exit_9(tmp_path):
    root = make_root(tmp_path)
    results = _race(root, tmp_path)
    codes = [code for code, _ in results]
    bad = [(code, line) for code, line in results if code not in (0, 9)]
    assert bad == [], bad
    assert 0 in codes
    for code, line in results:
        if code == 9:
            assert line.startswith("sesam-tls: error: another sesam-tls run (pid "), line
    _consistent(root)


def test_twenty_concurrent_issues_on_a_managed_node_wait_or_exit_9(tmp_path):
    root = make_root(tmp_path)
    first = _race(root, tmp_path, 1)
    assert first[0][0] == 0, first
    results = _race(root, tmp_path)
    bad = [(code, line) for code, line in results if code not in (0, 9)]
    assert bad == [], bad
    assert 0 in [code for code, _ in results]
    _consistent(root)


@pytest.mark.integration
def test_concurrent_issues_with_a_real_nginx_container(tmp_path, nginx_container, docker_host):
    """Twenty runs that each reload nginx and verify by handshake: 0 or 9, and nginx serves the pair on disk."""
    root = make_root(tmp_path)
    assert _race(root, tmp_path, 1)[0][0] == 0
    ssl = root / "sesam/nginx/conf/ssl"
    port = free_port()
    name = nginx_container(ssl, port)
    extra = ("--container", name, "--docker-host", docker_host, "--verify", f"127.0.0.1:{port}", "--timeout", "10")
    results = _race(root, tmp_path, RUNS, extra)
    bad = [(code, line) for code, line in results if code not in (0, 9)]
    assert bad == [], bad
    assert 0 in [code for code, _ in results]
    _consistent(root)
    on_disk = Bundle.from_pem(*SslFolder(ssl).read_pair())
    served = x509.load_der_x509_certificate(served_cert_der("127.0.0.1", port, NAME))
    assert fingerprint(served) == on_disk.fingerprint
