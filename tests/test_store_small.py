"""Issue 11, item 10 (the ssl and state folders, the CLI): each small item with its own test."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from sesam_tls.cli import main

from .helpers import make_root

NAME = "node.example.test"


def issue_argv(root, *extra):
    return ["issue", "--self-signed", "-d", NAME, "--root", str(root), "--no-restart", *extra]


def test_debug_prints_a_real_traceback(tmp_path, capsys):
    root = make_root(tmp_path)
    (root / "etc/sesam-agent/config.json").write_text('{"docker_password": "s3cret", ')
    assert main(issue_argv(root, "--debug")) == 4
    err = capsys.readouterr().err
    assert "Traceback (most recent call last):" in err
    assert "AgentConfigError" in err and "agent_config.py" in err
    assert err.strip().splitlines()[-1].startswith("sesam-tls: error: agent config ")
    assert "s3cret" not in err


def test_without_debug_no_traceback(tmp_path, capsys):
    root = make_root(tmp_path)
    (root / "etc/sesam-agent/config.json").write_text('{"docker_password": "s3cret", ')
    assert main(issue_argv(root)) == 4
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_verify_with_no_restart_is_skipped_with_a_warning(tmp_path, capsys):
    root = make_root(tmp_path)
    assert main(issue_argv(root, "--verify", "127.0.0.1:9")) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "--verify" in line]
    assert len(warnings) == 1, err
    assert warnings[0].startswith("sesam-tls: warning: ") and "--no-restart" in warnings[0]
    assert "skipped" in warnings[0]


def test_debug_shows_the_traceback_of_a_failed_renewal(tmp_path, capsys):
    root = make_root(tmp_path)
    assert main(issue_argv(root)) == 0
    (root / "etc/sesam-agent/config.json").write_text('{"docker_password": "s3cret", ')
    capsys.readouterr()
    assert main(["renew", "--force", "--no-restart", "--root", str(root), "--debug"]) == 4
    err = capsys.readouterr().err
    assert "Traceback (most recent call last):" in err and "AgentConfigError" in err
    assert "s3cret" not in err


def _mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.parametrize("umask", [0o000, 0o077])
def test_folders_the_tool_creates_get_their_modes_whatever_the_umask(tmp_path, umask):
    root = make_root(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESAM_TLS")}
    proc = subprocess.run([sys.executable, "-m", "sesam_tls", *issue_argv(root)], env=env, capture_output=True,
                          text=True, timeout=60, preexec_fn=lambda: os.umask(umask), check=False)
    assert proc.returncode == 0, proc.stderr
    ssl = root / "sesam/nginx/conf/ssl"
    version = ssl / ".versions" / os.readlink(ssl / "live").split("/")[-1]
    for folder in (root / "sesam", root / "sesam/nginx", root / "sesam/nginx/conf", ssl, ssl / ".versions", version,
                   root / "var", root / "var/lib"):
        assert _mode(folder) == 0o755, (folder, oct(_mode(folder)))
    assert _mode(root / "var/lib/sesam-tls") == 0o700
    assert _mode(version / "privkey.pem") == 0o600 and _mode(version / "fullchain.pem") == 0o644
    assert _mode(root / "var/lib/sesam-tls/lock") == 0o600


def test_an_open_state_folder_is_tightened_with_a_notice(tmp_path, capsys):
    root = make_root(tmp_path)
    state = root / "var/lib/sesam-tls"
    assert main(issue_argv(root)) == 0
    os.chmod(state, 0o755)  # as an older sesam-tls or a hand-made folder left it
    capsys.readouterr()
    assert main(issue_argv(root)) == 0
    assert _mode(state) == 0o700
    notices = [line for line in capsys.readouterr().err.splitlines() if str(state) in line and "0700" in line]
    assert len(notices) == 1, notices
    assert "0755" in notices[0]


def test_a_shared_folder_given_as_state_folder_is_not_tightened(tmp_path, capsys):
    root = make_root(tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    (shared / "someone-elses.txt").write_text("x")
    assert main(issue_argv(root, "--state-dir", str(shared))) == 0
    assert _mode(shared) == 0o755
    assert capsys.readouterr().err.count("not changing it") == 1
