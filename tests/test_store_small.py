"""Issue 11, item 10 (the ssl and state folders, the CLI): each small item with its own test."""

from __future__ import annotations


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
