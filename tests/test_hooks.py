"""Hooks: a clean environment (no secret source, only what the operator allows by name), their own
process group ended at the timeout, and a hook's end is its own exit, not the end of its output."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from pathlib import Path

import pytest

from sesam_tls.cli import main
from sesam_tls.hooks import run_hook

from . import certgen as g
from .helpers import make_root

NOW = dt.datetime.now(dt.timezone.utc)
EC = g.pki(now=NOW)
SECRET_VALUE = "s3cret-never-for-hooks-4711"


def env_lines(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition("=")
        out[name] = value
    return out


@pytest.fixture
def encrypted_pair(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "cert.pem").write_bytes(g.pem(EC.leaf) + g.pem(EC.inter.cert))
    (folder / "key.pem").write_bytes(g.key_bytes(EC.key, password=g.PASSWORD))
    return str(folder / "cert.pem"), str(folder / "key.pem")


def test_a_hook_never_sees_the_password_variable_nor_other_variables(tmp_path, encrypted_pair, monkeypatch, capsys):
    root = make_root(tmp_path)
    out = tmp_path / "hook-env.txt"
    monkeypatch.setenv("IMPORT_PW", g.PASSWORD.decode())
    monkeypatch.setenv("UNRELATED_TOKEN", SECRET_VALUE)
    monkeypatch.setenv("LANG", "C.UTF-8")
    cert, key = encrypted_pair
    code = main(["import", "--cert", cert, "--key", key, "--password-env", "IMPORT_PW", "--root", str(root),
                 "--no-restart", "--deploy-hook", f"env > {out}"])
    assert code == 0, capsys.readouterr().err
    env = env_lines(out)
    assert "IMPORT_PW" not in env and "UNRELATED_TOKEN" not in env
    assert g.PASSWORD.decode() not in out.read_text() and SECRET_VALUE not in out.read_text()
    assert env["SESAM_TLS_EVENT"] == "deployed" and env["PATH"] and env["LANG"] == "C.UTF-8"


def test_variables_allowed_by_name_reach_the_hook_but_a_secret_source_never(tmp_path, encrypted_pair, monkeypatch,
                                                                            capsys):
    root = make_root(tmp_path)
    out = tmp_path / "hook-env.txt"
    monkeypatch.setenv("IMPORT_PW", g.PASSWORD.decode())
    monkeypatch.setenv("SLACK_WEBHOOK", "https://hooks.example/abc")
    cert, key = encrypted_pair
    code = main(["import", "--cert", cert, "--key", key, "--password-env", "IMPORT_PW", "--root", str(root),
                 "--no-restart", "--deploy-hook", f"env > {out}", "--hook-env", "SLACK_WEBHOOK",
                 "--hook-env", "IMPORT_PW"])
    err = capsys.readouterr().err
    assert code == 0, err
    env = env_lines(out)
    assert env["SLACK_WEBHOOK"] == "https://hooks.example/abc"
    assert "IMPORT_PW" not in env and g.PASSWORD.decode() not in out.read_text()
    assert "--hook-env IMPORT_PW: that variable is a secret source" in err
    # recorded with the certificate by name, never by value, for the renewal timer; the secret
    # source not at all, so a later run that has it in its environment does not pass it either
    state = root / "var/lib/sesam-tls"
    meta = json.loads((state / "certificate.json").read_text())
    assert meta["hooks"]["env"] == ["SLACK_WEBHOOK"]
    for path in state.rglob("*"):
        if path.is_file():
            assert b"hooks.example" not in path.read_bytes() and g.PASSWORD not in path.read_bytes()


def test_a_bad_variable_name_is_refused(tmp_path, encrypted_pair, capsys):
    root = make_root(tmp_path)
    cert, key = encrypted_pair
    code = main(["import", "--cert", cert, "--key", key, "--root", str(root), "--no-restart",
                 "--hook-env", "NOT=A NAME"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--hook-env NOT=A NAME" in err and "is not an environment variable name" in err


def test_the_renewal_timer_passes_the_recorded_names(tmp_path, monkeypatch, capsys):
    root = make_root(tmp_path)
    out = tmp_path / "hook-env.txt"
    monkeypatch.setenv("SLACK_WEBHOOK", "https://hooks.example/abc")
    assert main(["issue", "--self-signed", "-d", "node.example.test", "--root", str(root), "--no-restart",
                 "--hook-env", "SLACK_WEBHOOK"]) == 0
    assert main(["renew", "--force", "--root", str(root), "--no-restart", "--deploy-hook", f"env > {out}"]) == 0
    assert env_lines(out)["SLACK_WEBHOOK"] == "https://hooks.example/abc"


def test_a_hook_that_leaves_a_background_child_returns_when_it_exits(tmp_path, caplog):
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    try:
        with caplog.at_level(logging.INFO, logger="sesam_tls"):
            ok = run_hook("deploy", f"sleep 120 & echo $! > {pidfile}; echo reloaded", {}, timeout=30)
        elapsed = time.monotonic() - started
    finally:
        _kill_quietly(pidfile)
    assert ok, caplog.text
    assert "deploy hook: reloaded" in caplog.text and "stopped" not in caplog.text
    assert elapsed < 25  # well within its own timeout: the hook's end was its exit, not the child's


def test_a_hung_hook_is_stopped_with_its_whole_process_group(tmp_path, caplog):
    pidfile = tmp_path / "pid"
    try:
        with caplog.at_level(logging.INFO, logger="sesam_tls"):
            ok = run_hook("deploy", f"sleep 120 & echo $! > {pidfile}; sleep 120", {}, timeout=1)
        assert not ok
        assert "deploy hook did not finish within 1 s and was stopped" in caplog.text
        child = int(pidfile.read_text())
        assert _ends_within(child, 10), "the hook's background child outlived the timeout"
    finally:
        _kill_quietly(pidfile)


def _ends_within(pid: int, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def _kill_quietly(pidfile: Path) -> None:
    """The test's own background child, by its pid."""
    try:
        os.kill(int(pidfile.read_text()), 9)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        pass


@pytest.mark.integration
@pytest.mark.parametrize("allow", [[], ["--hook-env", "EAB_HMAC"]])
def test_the_eab_hmac_variable_never_reaches_a_hook(pebble_eab, tmp_path, monkeypatch, capsys, allow):
    """issue --eab-hmac-env VAR against Pebble requiring EAB: the deploy hook's environment has no VAR,
    even when VAR is allowed by name."""
    root = make_root(tmp_path)
    out = tmp_path / "hook-env.txt"
    kid, hmac = min(pebble_eab.eab_keys.items())
    monkeypatch.setenv("EAB_HMAC", hmac)
    code = main(["issue", "-d", "node.example.test", "--server", pebble_eab.directory, "--ca-bundle",
                 pebble_eab.ca_bundle, "--agree-tos", "--eab-kid", kid, "--eab-hmac-env", "EAB_HMAC",
                 "--http-port", str(pebble_eab.http_port), "--http-address", "127.0.0.1", "--root", str(root),
                 "--no-restart", "--deploy-hook", f"env > {out}", *allow])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "EAB_HMAC" not in env_lines(out) and hmac not in out.read_text()


def test_ctrl_c_during_a_hook_ends_the_hooks_group_too(tmp_path):
    """The hook runs in its own session (so the timeout can end its children), which also keeps it out of
    the terminal's Ctrl-C: the run must end it itself when it is interrupted."""
    import signal
    import subprocess
    import sys

    pidfile = tmp_path / "pid"
    code = ("from sesam_tls.hooks import run_hook; "
            f"run_hook('deploy', 'sleep 120 & echo $! > {pidfile}; sleep 120', {{}}, timeout=60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 20
        while not (pidfile.exists() and pidfile.read_text().strip()) and time.monotonic() < end:
            time.sleep(0.05)
        child = int(pidfile.read_text())
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
        assert _ends_within(child, 10), "the hook's child outlived the interrupted run"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _kill_quietly(pidfile)
