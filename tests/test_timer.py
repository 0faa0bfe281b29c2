"""The renewal timer: rendered units and cron entry, install/remove on a scratch --root."""

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sesam_tls import timer
from sesam_tls.cli import main
from sesam_tls.errors import UsageError
from sesam_tls.node import ENV, Node
from sesam_tls.timer import own_command

from .helpers import tree_digest

EXE = "/opt/sesam-tls/bin/sesam-tls"
HOST_FILES = [
    Path("/etc/systemd/system", timer.SERVICE),
    Path("/etc/systemd/system", timer.TIMER),
    Path("/etc/cron.d", timer.CRON_FILE),
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """The node comes from the flags only, as it will under systemd."""
    for var in ENV.values():
        monkeypatch.delenv(var, raising=False)


def node(**settings):
    return Node.from_settings(env={}, **settings)


@pytest.mark.parametrize(
    "settings, flags",
    [
        ({}, []),
        ({"root": "/scratch"}, ["--root", "/scratch"]),
        ({"ssl_dir": "/sesam/nginx/conf/ssl"}, []),  # the default, spelled out
        ({"root": "/scratch", "ssl_dir": "/scratch/sesam/nginx/conf/ssl"}, ["--root", "/scratch"]),
        ({"root": "/scratch", "ssl_dir": "/srv/ssl"}, ["--root", "/scratch", "--ssl-dir", "/srv/ssl"]),
        ({"ssl_dir": "/srv/ssl"}, ["--ssl-dir", "/srv/ssl"]),
        ({"container_ssl_dir": "/etc/nginx/ssl"}, ["--container-ssl-dir", "/etc/nginx/ssl"]),
        ({"agent_config": "/opt/agent.json"}, ["--agent-config", "/opt/agent.json"]),
        ({"container": "sesam-nginx"}, ["--container", "sesam-nginx"]),
        ({"state_dir": "/srv/state"}, ["--state-dir", "/srv/state"]),
        ({"docker_host": "unix:///run/d.sock"}, ["--docker-host", "unix:///run/d.sock"]),
        (
            {"container": "web", "state_dir": "/s", "docker_host": "tcp://127.0.0.1:2375"},
            ["--container", "web", "--state-dir", "/s", "--docker-host", "tcp://127.0.0.1:2375"],
        ),
    ],
)
def test_renew_flags_only_where_the_node_differs(settings, flags):
    assert timer.renew_command([EXE], node(**settings)) == [EXE, "renew", *flags]


def test_relative_paths_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = timer.renew_command([EXE], node(ssl_dir="ssl", root="r"))
    assert argv == [EXE, "renew", "--root", str(tmp_path / "r"), "--ssl-dir", str(tmp_path / "ssl")]


def test_flags_rebuild_the_same_node():
    """What the timer will run parses back, with an empty environment, to the node it was made for."""
    import argparse

    from sesam_tls.cli.common import add_node_arguments, node_from_args

    parser = argparse.ArgumentParser()
    add_node_arguments(parser)
    for settings in ({}, {"root": "/x"}, {"root": "/x", "state_dir": "/y"}, {"ssl_dir": "/a b", "docker_host": "ssh://h"}):
        original = node(**settings)
        flags = timer.renew_command([EXE], original)[2:]
        assert node_from_args(parser.parse_args(flags)) == original


def test_command_must_be_absolute():
    with pytest.raises(UsageError):
        timer.renew_command(["sesam-tls"], node())


@pytest.mark.parametrize(
    "word, quoted",
    [
        ("/usr/bin/sesam-tls", "/usr/bin/sesam-tls"),
        ("tcp://127.0.0.1:2375", "tcp://127.0.0.1:2375"),
        ("/srv/my ssl", '"/srv/my ssl"'),
        ("", '""'),
        ("50%", '"50%%"'),
        ("$HOME", '"$$HOME"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        (";", '";"'),
        ("it's", '"it\'s"'),
    ],
)
def test_systemd_quoting(word, quoted):
    assert timer.systemd_quote(word) == quoted


def test_systemd_quoting_refuses_control_characters():
    with pytest.raises(UsageError):
        timer.systemd_quote("/srv/a\nb")


def test_dollar_in_the_command_path_is_refused():
    with pytest.raises(UsageError, match="contains '\\$'"):
        timer.render_service(["/opt/$x/sesam-tls", "renew"])


def test_service_and_timer_text():
    service = timer.render_service([EXE, "renew", "--ssl-dir", "/srv/my ssl"])
    assert f'ExecStart={EXE} renew --ssl-dir "/srv/my ssl"\n' in service
    assert "Type=oneshot\n" in service and "PrivateTmp=yes\n" in service and "NoNewPrivileges=yes\n" in service
    assert "ProtectSystem" not in service and "ProtectHome" not in service  # renew and its hooks write
    t = timer.render_timer()
    for line in ("OnCalendar=*-*-* 00,12:00:00", "RandomizedDelaySec=43200", "FixedRandomDelay=yes",
                 "Persistent=true", "WantedBy=timers.target"):
        assert line + "\n" in t


def test_cron_line_reads_back_as_the_command():
    argv = [EXE, "renew", "--ssl-dir", "/srv/50% ssl", "--container", "it's"]
    text = timer.render_cron(argv, minute=7, hour=3)
    job = [line for line in text.splitlines() if line.startswith("7 3,15 * * * root ")]
    assert len(job) == 1 and "PATH=/usr/local/sbin:" in text and text.endswith("\n")
    shell = job[0].removeprefix("7 3,15 * * * root ")
    assert "%" not in shell.replace("\\%", "")  # cron would cut the line at a bare %
    words = shlex.split(shell.replace("\\%", "%"))
    assert words[4 : 4 + len(argv)] == argv and words[-3:] == ["logger", "-t", "sesam-tls"]


def test_the_cron_entry_has_the_time_limit_of_the_systemd_unit():
    """A hung CA or Docker must not block every later run, under cron as under systemd."""
    service = timer.render_service([EXE, "renew"])
    limit = [line.partition("=")[2] for line in service.splitlines() if line.startswith("TimeoutStartSec=")]
    assert limit == ["1h"]
    job = [line for line in timer.render_cron([EXE, "renew"], minute=7, hour=3).splitlines() if " root " in line][0]
    words = shlex.split(job.split(" root ", 1)[1])
    assert words[1:5] == ["timeout", "--kill-after=90", "3600", EXE]
    shipped = (Path(__file__).resolve().parents[1] / "packaging/sesam-tls-docker.cron").read_text()
    assert "{ timeout --kill-after=90 3600 /usr/local/sbin/sesam-tls-docker renew ||" in shipped
    unit = (Path(__file__).resolve().parents[1] / "packaging/systemd/sesam-tls-docker-renew.service").read_text()
    assert "TimeoutStartSec=1h\n" in unit


# ---- install / remove through the CLI, on a scratch root --------------------------


def timer_cli(root, *args):
    return main(["timer", *args, "--root", str(root)])


def units(root):
    return root / "etc/systemd/system"


@pytest.fixture
def host_untouched():
    before = {p: p.exists() for p in HOST_FILES}
    yield
    assert {p: p.exists() for p in HOST_FILES} == before


def test_install_status_remove_systemd(tmp_path, capsys, host_untouched):
    root = tmp_path / "root"
    assert timer_cli(root, "install") == 0
    out = capsys.readouterr().out
    # a rehearsal: no hint to enable units that point at the scratch root on the live system
    assert f"--root {root} is a rehearsal: the files above point at it and nothing was enabled" in out
    assert "systemctl enable" not in out
    service, t = units(root) / timer.SERVICE, units(root) / timer.TIMER
    for path in (service, t):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    exec_start = [line for line in service.read_text().splitlines() if line.startswith("ExecStart=")]
    assert exec_start == ["ExecStart=" + " ".join(own_command()) + f" renew --root {root}"]
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [
        "root/etc/systemd/system/sesam-tls-renew.service",
        "root/etc/systemd/system/sesam-tls-renew.timer",
    ]

    assert timer_cli(root, "status", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["systemd"]["installed"] and info["systemd"]["current"]
    assert info["systemd"]["schedule"] == "*-*-* 00,12:00:00"
    assert not info["cron"]["installed"] and "next_run" not in info["systemd"]  # no systemctl under --root

    assert timer_cli(root, "remove") == 0
    assert not service.exists() and not t.exists()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert timer_cli(root, "remove") == 0
    assert "nothing to remove" in capsys.readouterr().out


def test_install_is_idempotent(tmp_path, capsys, host_untouched):
    root = tmp_path / "root"
    for flags in ([], ["--cron"]):
        assert timer_cli(root, "install", *flags) == 0
        before = tree_digest(root), {p: p.stat().st_mtime_ns for p in root.rglob("*")}
        assert timer_cli(root, "install", *flags) == 0
        assert "already installed, unchanged" in capsys.readouterr().out
        assert (tree_digest(root), {p: p.stat().st_mtime_ns for p in root.rglob("*")}) == before


def test_changed_node_rewrites_the_units(tmp_path, capsys):
    root = tmp_path / "root"
    assert timer_cli(root, "install") == 0
    capsys.readouterr()
    assert timer_cli(root, "status", "--ssl-dir", "/srv/ssl", "--json") == 0
    assert json.loads(capsys.readouterr().out)["systemd"]["current"] is False
    assert timer_cli(root, "install", "--ssl-dir", "/srv/ssl") == 0
    assert "--ssl-dir /srv/ssl" in (units(root) / timer.SERVICE).read_text()


def test_cron_install_keeps_its_moment_and_remove(tmp_path, capsys, host_untouched):
    root = tmp_path / "root"
    assert timer_cli(root, "install", "--cron") == 0
    path = root / "etc/cron.d/sesam-tls"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    text = path.read_text()
    assert timer_cli(root, "install", "--cron", "--container", "web") == 0
    updated = path.read_text()
    assert updated != text and "--container web" in updated
    assert updated.splitlines()[-1].split()[:2] == text.splitlines()[-1].split()[:2]  # same minute and hours
    assert timer_cli(root, "status") == 0
    assert "cron entry:     " + str(path) in capsys.readouterr().out
    assert timer_cli(root, "remove") == 0
    assert not path.exists()


def test_foreign_files_are_neither_overwritten_nor_removed(tmp_path, capsys):
    root = tmp_path / "root"
    folder = units(root)
    folder.mkdir(parents=True)
    (folder / timer.TIMER).write_text("[Timer]\nOnCalendar=daily\n")
    assert timer_cli(root, "install") == UsageError.exit_code
    assert "not written by sesam-tls" in capsys.readouterr().err
    assert timer_cli(root, "remove") == 0
    assert (folder / timer.TIMER).read_text() == "[Timer]\nOnCalendar=daily\n"


def test_systemctl_sequence_when_live(tmp_path):
    """The systemctl calls, through the seam the CLI fills only on a live host."""
    calls = []

    def systemctl(args):
        calls.append(list(args))
        return "NextElapseUSecRealtime=Tue 2030-01-01 07:00:00 UTC\nLastTriggerUSec=\nActiveState=active\n"

    n = node(root=str(tmp_path / "root"))
    change = timer.install(n, [EXE], systemctl=systemctl)
    assert calls == [["daemon-reload"], ["enable", "--now", timer.TIMER]] and not change.to_run
    calls.clear()
    timer.install(n, [EXE], systemctl=systemctl)
    assert calls == [["enable", "--now", timer.TIMER]]  # nothing rewritten: no reload
    info = timer.status(n, [EXE], systemctl=systemctl)
    assert info.systemd.next_run == "Tue 2030-01-01 07:00:00 UTC" and info.systemd.last_run is None
    calls.clear()
    timer.remove(n, systemctl=systemctl)
    assert calls == [["disable", "--now", timer.TIMER], ["daemon-reload"]]


def test_remove_without_systemd_says_to_stop_the_loaded_timer(tmp_path):
    """No live systemd (a container, a chroot): the enablement link goes, and the
    hint says to stop the timer a systemd may already have loaded, then reload."""
    node = Node.from_settings(root=str(tmp_path), env={})
    timer.install(node, ["/usr/local/bin/sesam-tls"])
    change = timer.remove(node)[0]
    assert change.to_run == ("systemctl stop " + timer.TIMER, "systemctl daemon-reload")


def test_remove_without_systemd_drops_the_enablement_link(tmp_path):
    n = node(root=str(tmp_path / "root"))
    timer.install(n, [EXE])
    wants = units(n.root) / "timers.target.wants"
    wants.mkdir()
    (wants / timer.TIMER).symlink_to(units(n.root) / timer.TIMER)  # as `systemctl --root enable` makes it
    timer.remove(n)
    assert list(wants.iterdir()) == []


# ---- systemd's own parser -------------------------------------------------------------


def systemd_analyze():
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.fail("systemd-analyze not found (Debian package systemd): run `make testbed`", pytrace=False)
    return exe


@pytest.mark.parametrize("exe_dir", ["bin", "with space/50% dir"])
def test_systemd_analyze_verify_accepts_the_units(tmp_path, exe_dir):
    """An executable path with a space and a % must reach systemd as one word (else: 'not executable')."""
    folder = tmp_path / exe_dir
    folder.mkdir(parents=True)
    exe = folder / "sesam-tls"
    exe.symlink_to(sys.executable)
    n = node(root=str(tmp_path / "scratch root"), ssl_dir=str(tmp_path / "ssl $x %n"), container="a;b")
    timer.install(n, [str(exe)])
    done = subprocess.run(
        [systemd_analyze(), "verify", "--man=no", timer.SERVICE, timer.TIMER],
        check=False,
        cwd=units(n.root),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_systemd_analyze_notices_a_missing_executable(tmp_path):
    """The verify test above can fail: a command that is not there is refused."""
    n = node(root=str(tmp_path / "root"))
    timer.install(n, [str(tmp_path / "no such" / "sesam-tls")])
    done = subprocess.run(
        [systemd_analyze(), "verify", "--man=no", timer.SERVICE, timer.TIMER],
        check=False,
        cwd=units(n.root),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "no such/sesam-tls" in done.stderr


def test_real_process_install(tmp_path):
    """Once as a real process: the console script puts its own path in ExecStart."""
    script = Path(sys.executable).parent / "sesam-tls"
    root = tmp_path / "root"
    env = {k: v for k, v in os.environ.items() if k not in ENV.values()}
    argv = [str(script), "timer", "install", "--root", str(root)]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"ExecStart={script} renew --root {root}\n" in (units(root) / timer.SERVICE).read_text()
