"""Faults from outside, each on the real testbed (dockerd, an nginx container, Pebble, tmpfs).

Every test starts from a node that serves a certificate through a running
nginx container, injects one fault, and checks the same promise: one clear
error line, a non-zero exit, nginx still serving a matching pair (the TLS
handshake proves the key matches), nothing lost, and the next run recovers.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from sesam_tls import CertRequest, DeployOptions, Node, SelfSigned, issue
from sesam_tls.bundle import Bundle, fingerprint
from sesam_tls.cli import main
from sesam_tls.errors import DeployError, StorageError
from sesam_tls.fsutil import TMP_MARK, atomic_write, write_new
from sesam_tls.store import SslFolder

from .helpers import make_root
from .test_deploy_nginx import WeakKeyProvider, past_the_gate  # noqa: F401 - a fixture
from .testbed import free_port, served_cert_der

pytestmark = pytest.mark.integration

NAME = "node.example.test"


@dataclass
class Served:
    """A node whose nginx container serves a managed pair."""

    node: Node
    port: int
    containers: Any
    fp: str  # what nginx serves now

    def served(self) -> str:
        return fingerprint(x509.load_der_x509_certificate(served_cert_der("127.0.0.1", self.port, NAME)))

    def on_disk(self) -> str:
        return Bundle.from_pem(*SslFolder(self.node.ssl_dir).read_pair()).fingerprint

    def argv(self, verb: str = "self-signed", *extra: str, container: str = "", docker_host: str = "") -> list[str]:
        head = ["issue", "--self-signed", "-d", NAME] if verb == "self-signed" else [verb]
        return [*head, "--root", str(self.node.root), "--container", container or self.node.container,
                "--docker-host", docker_host or str(self.node.docker_host),
                "--verify", f"127.0.0.1:{self.port}", "--timeout", "10", *extra]

    def snapshot(self) -> dict[str, bytes]:
        """What must not be lost: the pair nginx reads, the agent config, the metadata."""
        cert, key = SslFolder(self.node.ssl_dir).read_pair()
        meta = self.node.metadata_path
        return {"cert": cert, "key": key, "config": self.node.agent_config.read_bytes(),
                "meta": meta.read_bytes() if meta.exists() else b""}


def make_served(tmp_path: Path, containers, docker_host: str, *, managed: bool = True, ssl_ready=None) -> Served:
    root = make_root(tmp_path)
    ssl = root / "sesam/nginx/conf/ssl"
    ssl.mkdir(parents=True, exist_ok=True)
    if ssl_ready:
        ssl_ready(ssl)
    if managed:
        node = Node.from_settings(root=str(root), env={})
        issue(CertRequest.build([NAME]), SelfSigned(), node=node, options=DeployOptions(restart=False))
    else:
        own = SelfSigned().issue(CertRequest.build([NAME]))
        (ssl / "fullchain.pem").write_bytes(own.fullchain_pem())
        (ssl / "privkey.pem").write_bytes(own.key_pem())
    port = free_port()
    name = containers(ssl, port)
    node = Node.from_settings(root=str(root), container=name, docker_host=docker_host, env={})
    t = Served(node, port, containers, "")
    t.fp = t.on_disk()
    assert t.served() == t.fp
    return t


@pytest.fixture
def served(tmp_path, nginx_container, docker_host) -> Served:
    return make_served(tmp_path, nginx_container, docker_host)


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "no message"
    assert err[-1].startswith("sesam-tls: error: "), err[-1]
    return err[-1]


def still_sound(t: Served, before: dict[str, bytes]) -> None:
    """nginx serves the pair it served before, by handshake; the files and the config are as they were."""
    assert t.containers.status(t.node.container) == "running"
    assert t.served() == t.fp
    assert t.on_disk() == t.fp
    after = t.snapshot()
    for what in ("cert", "key", "config", "meta"):
        assert after[what] == before[what], f"{what} changed"


def recovers(t: Served, capsys, *argv: str) -> None:
    """The next run, without the fault, deploys and nginx serves the new pair; no temp file stays."""
    assert main(list(argv) or [*t.argv(), "--json"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert t.served() == t.on_disk() != t.fp
    leftovers = [str(p) for p in t.node.root.rglob(f"*{TMP_MARK}*")]
    assert leftovers == []


# Docker and nginx -------------------------------------------------------------------------


def test_docker_engine_down(served, tmp_path, capsys):
    # A socket file nobody accepts on: what a stopped dockerd leaves behind.
    path = tmp_path / "dead-docker.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))
        before = served.snapshot()
        code = main(served.argv(docker_host=f"unix://{path}"))
    assert code == 6
    assert "cannot reach the Docker engine" in error_line(capsys)
    still_sound(served, before)
    recovers(served, capsys)


def test_container_missing(served, capsys):
    before = served.snapshot()
    assert main(served.argv(container="no-such-nginx")) == 6
    assert "no container named 'no-such-nginx'" in error_line(capsys)
    still_sound(served, before)
    recovers(served, capsys)


def test_container_exits_right_after_restart(served, capsys, past_the_gate):
    before = served.snapshot()
    options = DeployOptions(reload_mode="restart", verify=f"127.0.0.1:{served.port}", timeout=5)
    with pytest.raises(DeployError) as info:
        issue(CertRequest.build([NAME]), WeakKeyProvider(), node=served.node, options=options, replace=True)
    assert info.value.exit_code == 7 and "\n" not in str(info.value)
    # Usually "nginx ... exited"; when the container dies while its processes are
    # listed, NginxContainer.wait_ready takes it as up and verification catches it.
    assert "exited" in str(info.value) or "verification failed" in str(info.value)
    assert "restored the previous certificate and nginx serves it again" in str(info.value)
    still_sound(served, before)
    recovers(served, capsys)


def test_nginx_t_fails_reload_falls_back_then_rolls_back(served, capsys, past_the_gate):
    before = served.snapshot()
    with pytest.raises(DeployError) as info:  # the config already points here: the reload path
        issue(CertRequest.build([NAME]), WeakKeyProvider(), node=served.node,
              options=DeployOptions(verify=f"127.0.0.1:{served.port}", timeout=5), replace=True)
    assert info.value.exit_code == 7 and "\n" not in str(info.value)
    assert "restored the previous certificate and nginx serves it again" in str(info.value)
    still_sound(served, before)
    recovers(served, capsys)


# the disk ---------------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "256k") -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(folder: Path) -> Path:
    """Write a filler file until the file system is full."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    return filler


def test_disk_full_while_writing(tmp_path, nginx_container, docker_host, capsys):
    mounted: list[Path] = []
    with contextlib.ExitStack() as stack:
        t = make_served(tmp_path, nginx_container, docker_host,
                        ssl_ready=lambda ssl: mounted.append(stack.enter_context(tmpfs(ssl))))
        filler = fill(mounted[0])
        before = t.snapshot()
        assert main(t.argv()) == 5
        assert "no space left on device" in error_line(capsys)
        still_sound(t, before)
        filler.unlink()
        recovers(t, capsys)
        nginx_container.container(t.node.container).remove(force=True)


def test_disk_full_at_the_agent_config_after_the_switch(tmp_path, nginx_container, docker_host, capsys):
    """The pair is already switched when the config write fails: the rollback puts the old pair back."""
    t = make_served(tmp_path, nginx_container, docker_host, managed=False)  # the config must change
    folder = t.node.agent_config.parent
    config = t.node.agent_config.read_bytes()
    with tmpfs(folder, "64k"):
        t.node.agent_config.write_bytes(config)
        filler = fill(folder)
        before = t.snapshot()
        assert main(t.argv()) == 7
        line = error_line(capsys)
        assert "no space left on device" in line and "restored the previous certificate and nginx serves it" in line
        still_sound(t, before)
        filler.unlink()
        recovers(t, capsys)


def test_ssl_folder_read_only(tmp_path, nginx_container, docker_host, capsys):
    mounted: list[Path] = []
    with contextlib.ExitStack() as stack:
        t = make_served(tmp_path, nginx_container, docker_host,
                        ssl_ready=lambda ssl: mounted.append(stack.enter_context(tmpfs(ssl))))
        subprocess.run(["mount", "-o", "remount,ro", str(mounted[0])], check=True)
        before = t.snapshot()
        assert main(t.argv()) == 5
        assert "read-only file system" in error_line(capsys)
        still_sound(t, before)
        subprocess.run(["mount", "-o", "remount,rw", str(mounted[0])], check=True)
        recovers(t, capsys)
        nginx_container.container(t.node.container).remove(force=True)


# the agent config, the lock ---------------------------------------------------------------


def test_agent_config_changed_by_someone_else_meanwhile(tmp_path, nginx_container, docker_host, capsys, monkeypatch):
    t = make_served(tmp_path, nginx_container, docker_host, managed=False)  # the config must change
    before = t.snapshot()
    theirs = json.loads(before["config"])
    theirs["docker_password"] = "<ROTATED-TOKEN>"  # the operator rotates the token while we run
    their_bytes = (json.dumps(theirs, indent=2) + "\n").encode()
    activate = SslFolder.activate

    def activate_then_edit(self, version):
        previous = activate(self, version)
        if version is not None and t.node.agent_config.read_bytes() == before["config"]:
            t.node.agent_config.write_bytes(their_bytes)
        return previous

    monkeypatch.setattr(SslFolder, "activate", activate_then_edit)
    assert main(t.argv()) == 7
    line = error_line(capsys)
    assert "was changed by someone else" in line and "restored the previous certificate" in line
    monkeypatch.undo()
    assert t.node.agent_config.read_bytes() == their_bytes  # their edit, not clobbered
    still_sound(t, {**before, "config": their_bytes})
    recovers(t, capsys)
    after = json.loads(t.node.agent_config.read_bytes())
    assert after["docker_password"] == "<ROTATED-TOKEN>" and after["nginx"]["ssl_key"].endswith("privkey.pem")


def test_two_runs_at_once(served, tmp_path, capsys):
    """The first run holds the node's lock (in its deploy hook); the second waits, then gives up."""
    held, go = tmp_path / "held", tmp_path / "go"
    hook = f"touch {held}; while [ ! -e {go} ]; do sleep 0.05; done"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESAM_TLS")}
    first = subprocess.Popen([sys.executable, "-m", "sesam_tls", *served.argv(), "--deploy-hook", hook],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not held.exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        served.fp = served.on_disk()  # the first run deployed; it holds the lock until its hook ends
        before = served.snapshot()
        second = subprocess.run([sys.executable, "-m", "sesam_tls", *served.argv()], env=env,
                                capture_output=True, text=True, timeout=60, check=False)
        assert second.returncode == 9
        line = second.stderr.strip().splitlines()[-1]
        assert line.startswith("sesam-tls: error: another sesam-tls run (pid ") and f"{first.pid}" in line
        still_sound(served, before)
    finally:
        go.touch()
        _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    recovers(served, capsys)


# planted symlinks -------------------------------------------------------------------------


def test_symlink_planted_at_privkey_is_replaced_not_written_through(served, tmp_path, capsys):
    outside = tmp_path / "outside-key.pem"
    other = SelfSigned().issue(CertRequest.build(["attacker.example"]))
    outside.write_bytes(other.key_pem())
    os.chmod(outside, 0o640)
    stat_before = outside.stat()
    key = served.node.ssl_dir / "privkey.pem"
    key.unlink()
    key.symlink_to(outside)
    recovers(served, capsys)  # nginx serves a new matching pair; the planted link is gone
    assert os.readlink(key) == "live/privkey.pem"
    assert outside.read_bytes() == other.key_pem()
    after = outside.stat()
    assert (after.st_mode, after.st_mtime_ns, after.st_ino) == (stat_before.st_mode, stat_before.st_mtime_ns,
                                                                stat_before.st_ino)


@pytest.mark.parametrize("plant", ["link-out", "mismatch"])
def test_operator_pair_kept_only_when_it_is_a_matching_pair_inside_the_folder(plant, tmp_path, capsys):
    root = make_root(tmp_path)
    ssl = root / "sesam/nginx/conf/ssl"
    ssl.mkdir(parents=True)
    own = SelfSigned().issue(CertRequest.build([NAME]))
    (ssl / "fullchain.pem").write_bytes(own.fullchain_pem())
    outside = tmp_path / "outside.pem"
    if plant == "link-out":
        outside.write_bytes(own.key_pem())
        (ssl / "privkey.pem").symlink_to(outside)
    else:
        (ssl / "privkey.pem").write_bytes(SelfSigned().issue(CertRequest.build([NAME])).key_pem())
    assert main(["issue", "--self-signed", "-d", NAME, "--root", str(root), "--no-restart"]) == 0
    err = capsys.readouterr().err
    assert "not keeping" in err
    folder = SslFolder(ssl)
    assert not [v for v in folder.version_ids() if v.endswith("-adopted")]
    assert Bundle.from_pem(*folder.read_pair()).fingerprint != own.fingerprint
    if plant == "link-out":
        assert outside.read_bytes() == own.key_pem()


def test_symlink_at_a_temp_name_is_never_followed(served, tmp_path, capsys, monkeypatch):
    target = tmp_path / "target"
    target.write_bytes(b"precious\n")
    # fsutil itself: O_EXCL|O_NOFOLLOW refuses the planted name.
    planted = served.node.ssl_dir / f".privkey.pem{TMP_MARK}planted"
    planted.symlink_to(target)
    with pytest.raises(FileExistsError):
        write_new(planted, b"secret key", 0o600)
    monkeypatch.setattr(secrets, "token_hex", lambda n=None: "0" * 12)
    config_tmp = served.node.agent_config.with_name(f".config.json{TMP_MARK}{'0' * 12}")
    config_tmp.symlink_to(target)
    with pytest.raises(StorageError, match="already exists"):
        atomic_write(served.node.agent_config, b"{}", 0o600)
    assert target.read_bytes() == b"precious\n"
    # Through the pipeline: the temp names are predictable now and planted, for the
    # agent config, the metadata and the ssl folder's links: a run sweeps them and writes its own.
    meta_tmp = served.node.metadata_path.with_name(f".certificate.json{TMP_MARK}{'0' * 12}")
    meta_tmp.symlink_to(target)
    link_tmp = served.node.ssl_dir / f".live{TMP_MARK}{'0' * 12}"
    link_tmp.symlink_to(target)
    served.node.agent_config.write_bytes(
        served.node.agent_config.read_bytes().replace(b"/etc/nginx/includes.d/ssl/privkey.pem", b"/old/key.pem"))
    recovers(served, capsys)
    assert target.read_bytes() == b"precious\n"
    for p in (planted, config_tmp, meta_tmp, link_tmp):
        assert not os.path.lexists(p)


# the ACME server --------------------------------------------------------------------------


class BrokenAcme(ThreadingHTTPServer):
    """A directory URL on 127.0.0.1 that answers 5xx, malformed JSON, or too slowly."""

    daemon_threads = True

    def __init__(self, mode: str) -> None:
        self.mode = mode
        super().__init__(("127.0.0.1", 0), _BrokenHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/dir"


class _BrokenHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        mode = self.server.mode  # type: ignore[attr-defined]
        if mode == "slow":
            time.sleep(3)
        status, body = {"5xx": (503, b"<html>upstream down</html>"), "malformed": (200, b'{"newNonce": "http://x", ')
                        }.get(mode, (200, b"{}"))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = _answer


@contextlib.contextmanager
def broken_acme(mode: str) -> Iterator[str]:
    if mode == "down":
        yield f"http://127.0.0.1:{free_port()}/dir"  # nobody listens there
        return
    server = BrokenAcme(mode)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("mode", ["down", "5xx", "malformed", "slow"])
def test_acme_server_faults(mode, served, pebble, capsys, monkeypatch):
    if mode == "slow":  # the client's own timeout (30 s) made short, so the test stays short
        from sesam_tls.providers import acme_net

        monkeypatch.setitem(acme_net.Connection.__init__.__kwdefaults__, "timeout", 1.0)
    # over the managed self-signed certificate: a provider switch, asked for
    http = ["--agree-tos", "--http01", "standalone", "--http-address", "127.0.0.1", "--replace"]
    before = served.snapshot()
    with broken_acme(mode) as url:
        code = main(served.argv("issue", "-d", NAME, "--server", url, "--http-port", str(free_port()), *http))
    line = error_line(capsys)
    assert code == 8, line
    expected = {"down": "cannot reach the ACME server", "slow": "cannot reach the ACME server",
                "5xx": "answered HTTP 503", "malformed": "unexpected answer"}[mode]
    assert expected in line
    still_sound(served, before)
    monkeypatch.undo()
    recovers(served, capsys, *served.argv("issue", "-d", NAME, "--server", pebble.directory, "--ca-bundle",
                                          pebble.ca_bundle, "--http-port", str(pebble.http_port), *http))
