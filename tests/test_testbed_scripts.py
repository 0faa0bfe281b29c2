"""The testbed's own scripts behave on a machine where other things run:
a held dpkg lock is waited for (bounded, saying so), a taken port is named,
and stopping the testbed leaves no process and no mount behind."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from . import testbed

TESTBED = Path(__file__).resolve().parents[1] / "testbed"


def hold_lock(path: Path, seconds: float) -> subprocess.Popen:
    """Another process holding an fcntl lock on path (as apt-get holds dpkg's), for `seconds`."""
    code = (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
        "fcntl.lockf(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(float(sys.argv[2]))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def wait_lock(lock: Path, timeout: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, SESAM_DPKG_LOCK_FILES=str(lock), SESAM_DPKG_LOCK_TIMEOUT=str(timeout))
    return subprocess.run(["bash", str(TESTBED / "dpkg-lock.sh"), "wait"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def test_a_free_dpkg_lock_is_not_waited_for(tmp_path):
    lock = tmp_path / "lock-frontend"
    lock.touch()
    done = wait_lock(lock, 5)
    assert done.returncode == 0 and done.stderr == ""


def test_a_held_dpkg_lock_is_waited_for_and_named(tmp_path):
    lock = tmp_path / "lock-frontend"
    holder = hold_lock(lock, 2)
    try:
        done = wait_lock(lock, 30)
    finally:
        holder.wait(timeout=10)
    assert done.returncode == 0, done.stderr
    assert f"waiting up to 30s for the dpkg lock {lock}, held by another package manager (pid {holder.pid}" in done.stderr
    assert "the dpkg lock is free after" in done.stderr


def test_a_dpkg_lock_held_too_long_ends_the_wait_with_one_error(tmp_path):
    lock = tmp_path / "lock-frontend"
    holder = hold_lock(lock, 30)
    try:
        done = wait_lock(lock, 1)
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 1
    assert f"ERROR: the dpkg lock {lock} is still held after 1s (pid {holder.pid})" in done.stderr


def test_setup_waits_for_the_dpkg_lock_before_apt():
    text = (TESTBED / "setup.sh").read_text()
    assert text.index("    wait_dpkg_lock\n") < text.index('apt-get "${lock_wait[@]}" update')


def test_a_taken_port_is_named_not_blamed_on_the_installation(tmp_path, monkeypatch):
    monkeypatch.setenv("SESAM_TESTBED_DIR", str(tmp_path / "tb"))
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(testbed.TestbedError) as info:
            testbed.start_pebble("squatted", port=port)
    message = str(info.value)
    assert f"127.0.0.1:{port} (squatted ACME API) is already in use by another process" in message
    assert "make testbed" not in message and "install" not in message


def test_stop_all_stops_every_pebble_and_its_challtestsrv(tmp_path, monkeypatch):
    monkeypatch.setenv("SESAM_TESTBED_DIR", str(tmp_path / "tb"))
    a = testbed.start_pebble("a")
    b = testbed.start_pebble("b", eab=True)
    assert a.port != b.port
    pids = [int((tmp_path / "tb/pebble" / n / f).read_text()) for n in ("a", "b") for f in ("pebble.pid", "dns.pid")]
    assert all(Path(f"/proc/{pid}").exists() for pid in pids)
    testbed.run_script("pebble.sh", "stop-all")
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pids)
    assert not [p for p in (tmp_path / "tb/pebble").iterdir() if p.is_dir()]


def _alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def _mounts_under(folder: Path) -> list[str]:
    out = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True, check=True).stdout
    return [m for m in out.splitlines() if m.startswith(str(folder) + "/")]


@pytest.mark.integration
def test_stopping_dockerd_leaves_no_mount_behind(nginx_image, docker_host):
    """A --network host container makes dockerd mount an nsfs under exec/netns;
    `dockerd.sh stop` (what make clean-testbed runs) must leave nothing mounted."""
    # a short path: containerd's sockets under it must fit a unix socket address (108 bytes)
    tmp_path = Path(tempfile.mkdtemp(prefix="tbd-", dir="/tmp"))
    env = dict(os.environ, SESAM_TESTBED_DIR=str(tmp_path / "tb"))
    own = f"unix://{tmp_path}/tb/dockerd/docker.sock"
    subprocess.run(["bash", str(TESTBED / "dockerd.sh"), "start"], env=env, check=True, capture_output=True, timeout=60)
    try:
        save = subprocess.Popen(["docker", "-H", docker_host, "save", nginx_image], stdout=subprocess.PIPE)
        subprocess.run(["docker", "-H", own, "load", "-q"], stdin=save.stdout, check=True, capture_output=True,
                       timeout=120)
        assert save.wait(timeout=60) == 0
        subprocess.run(["docker", "-H", own, "run", "--rm", "--network", "host", nginx_image, "/usr/sbin/nginx", "-v"],
                       check=True, capture_output=True, timeout=60)
        assert any("/exec/netns/" in m for m in _mounts_under(tmp_path / "tb"))
    finally:
        subprocess.run(["bash", str(TESTBED / "dockerd.sh"), "stop"], env=env, check=True, capture_output=True,
                       timeout=120)
    assert _mounts_under(tmp_path / "tb") == []
    shutil.rmtree(tmp_path, ignore_errors=True)
