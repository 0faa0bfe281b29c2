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


def _pair_fp(root) -> str:
    from sesam_tls.bundle import Bundle
    from sesam_tls.store import SslFolder

    return Bundle.from_pem(*SslFolder(root / "sesam/nginx/conf/ssl").read_pair()).fingerprint


def test_state_folder_full_after_the_switch_rolls_back_to_the_old_pair_and_metadata(tmp_path, capsys):
    """The metadata cannot be written once the pair is switched: the new pair is taken back (exit 7),
    never left live with the old metadata (exit 5), which renew and status would misread."""
    from .test_faults import fill, tmpfs

    root = make_root(tmp_path)
    assert main(issue_argv(root)) == 0
    state = root / "var/lib/sesam-tls"
    saved = {p.name: p.read_bytes() for p in state.iterdir() if p.is_file()}
    old_fp = _pair_fp(root)
    versions_before = sorted(os.listdir(root / "sesam/nginx/conf/ssl/.versions"))
    capsys.readouterr()
    with tmpfs(state, "64k"):
        for name, body in saved.items():
            (state / name).write_bytes(body)
        filler = fill(state)
        assert main(issue_argv(root)) == 7
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert "certificate.json" in line and "no space left on device" in line, line
        assert "restored the previous certificate" in line, line
        assert _pair_fp(root) == old_fp
        assert (state / "certificate.json").read_bytes() == saved["certificate.json"]
        filler.unlink()
    assert sorted(os.listdir(root / "sesam/nginx/conf/ssl/.versions")) == versions_before


def test_failed_runs_do_not_pile_up_staged_versions(tmp_path, capsys):
    """Each failed run takes its own staged version (which holds a key) away again."""
    from .test_faults import fill, tmpfs

    root = make_root(tmp_path)
    config = root / "etc/sesam-agent/config.json"
    body = config.read_bytes()
    with tmpfs(config.parent, "64k"):  # the config write after the switch fails: a rollback each time
        config.write_bytes(body)
        filler = fill(config.parent)
        for _ in range(4):
            assert main(issue_argv(root)) == 7
        filler.unlink()
    versions = root / "sesam/nginx/conf/ssl/.versions"
    assert list(versions.rglob("privkey.pem")) == []
    assert not os.path.lexists(root / "sesam/nginx/conf/ssl/fullchain.pem")
    line = capsys.readouterr().err.strip().splitlines()[-1]  # and the message says so
    assert "there was none before, so none is in place now" in line, line
