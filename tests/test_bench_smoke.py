"""Keep the benchmark harness (bench/bench.py) working: its smoke mode, sesam-tls only.

No peers (certbot and lego are not installed for CI) and no timing
assertions: the harness must run every measurement once and write a report,
the DNS-01 one included (a knotd and a Pebble resolving through it, both the
benchmark's own, on free ports).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.integration


def test_bench_smoke_sesam_tls_only_writes_a_report(tmp_path, docker_host):
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench.py"), "--smoke", "--tools", "sesam-tls",
         "--out", str(out), "--plot-python", str(tmp_path / "no-python-here"),
         # free ports and a Pebble instance of its own: never meets a `make bench` or anything else beside it;
         # the instance lives in the testbed's folder, so `make clean-testbed` stops it should this run crash
         "--free-ports"],
        cwd=REPO, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, f"bench smoke failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"

    report = (out / "REPORT.md").read_text()
    for heading in ("## Machine", "## 1. Issuance latency", "## 2. Scaling", "## 3. Start-up",
                    "## 4. Rotation cost", "## 5. Port-80 downtime", "## DNS-01 (RFC 2136)",
                    # issue 16: the goals, the mounted-webroot row, imports per verb, warm issuance, the wire
                    "## Goals (issue 16)", "### Port 80 with nginx serving the challenge folder",
                    "## 8. What each verb imports", "## 9. A warm in-process issuance", "## 10. On the wire"):
        assert heading in report, heading
    assert "## Errors" not in report

    res = json.loads((out / "results.json").read_text())
    assert res["tools"] == ["sesam-tls"]
    assert res["issue"]["failures"] == {"sesam-tls": 0}
    assert res["issue"]["latency"]["sesam-tls"]["n"] == 1
    assert res["startup"]["sesam-tls --help"]["n"] >= 1
    for mode in ("reload", "restart"):
        assert res["rotation"][mode]["all_exit_0"], mode
        assert res["rotation"][mode]["all_serve_new_cert"], mode
    assert res["stop_nginx"]["failures"] == 0
    assert res["mounted_webroot"]["failures"] == 0
    assert res["mounted_webroot"]["silent_ms"]["n"] == 1
    assert {"issue (1 name, ACME)", "renew (nothing due)", "--help"} <= set(res["imports"])
    assert "acme" in res["imports"]["issue (1 name, ACME)"]["packages"]
    assert res["warm"]["wall"]["n"] == 3 and res["warm"]["ca"]["n"] == 3
    assert [row["names"] for row in res["wire"]["rows"]] == ["1, new account", "1", "10"]
    if (REPO / "bench" / ".venv-a2c" / "bin" / "python").exists():  # bench/setup-peers.sh installs it
        assert "## 12. A second ACME server: acme2certifier" in report
        assert res["a2c"]["failures"] == {"sesam-tls": 0}
        assert res["a2c"]["floor_s"] > 0
    dns = res["dns01"]
    assert dns["tools"] == ["sesam-tls"]
    for size in ("1", "10"):
        assert dns["sizes"][size]["sesam-tls"]["n"] == 1, size
        assert dns["sizes"][size]["sesam-tls"]["failures"] == 0, (size, dns.get("failure_reasons"))
    assert not dns["failure_reasons"]
