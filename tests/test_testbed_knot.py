"""The DNS side of the testbed: knotd on loopback with TSIG updates, and a Pebble resolving through it."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from . import testbed

pytestmark = pytest.mark.integration


def test_knot_takes_tsig_updates_and_keeps_its_secret_private(knot):
    assert knot.txt("probe.example.test") == []
    knot.update('add probe.example.test. 5 TXT "hello"')
    assert knot.txt("probe.example.test") == ["hello"]
    knot.update('delete probe.example.test. TXT "hello"')
    assert knot.txt("probe.example.test") == []
    assert stat.S_IMODE(os.stat(knot.secret_file).st_mode) == 0o600


def test_the_lagging_knot_refuses_updates(knot_lagging):
    with pytest.raises(subprocess.CalledProcessError):
        knot_lagging.update('add probe.example.test. 5 TXT "never"')
    assert knot_lagging.txt("probe.example.test") == []


def test_pebble_resolves_through_knot(pebble_dns, knot):
    cfg = (testbed.testbed_dir() / "pebble" / pebble_dns.name / "ports.env").read_text()
    assert f"DNS_SERVER={knot.address}" in cfg
    assert not (testbed.testbed_dir() / "pebble" / pebble_dns.name / "dns.pid").exists()
    cmdline = Path(f"/proc/{int((testbed.testbed_dir() / 'pebble' / pebble_dns.name / 'pebble.pid').read_text())}"
                   "/cmdline").read_bytes().split(b"\0")
    assert knot.address.encode() in cmdline


def test_stop_all_stops_every_knot(tmp_path, monkeypatch):
    monkeypatch.setenv("SESAM_TESTBED_DIR", str(tmp_path / "tb"))
    a, b = testbed.start_knot("a"), testbed.start_knot("b", updates=False)
    assert a.port != b.port
    pids = [int((tmp_path / "tb/knot" / n / "knotd.pid").read_text()) for n in ("a", "b")]
    testbed.run_script("knot.sh", "stop-all")
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{p}").exists() and "State:\tZ" not in Path(f"/proc/{p}/status").read_text()
              for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(Path(f"/proc/{p}/cmdline").exists() and b"knotd" in Path(f"/proc/{p}/cmdline").read_bytes()
                   for p in pids)
    assert not [p for p in (tmp_path / "tb/knot").iterdir() if p.is_dir()]
