"""The self-contained executable (PyInstaller) and the FROM-scratch image.

`make dist image` builds both when a source is newer than dist/sesam-tls
(make's own check; the image is skipped when its recipe label matches), so a
second run of these tests costs seconds. The executable runs with a bare
environment (no PYTHONPATH, no venv) from a scratch folder; the image runs
on the testbed's dockerd with --network host and drives a real nginx test
container through the mounted Docker socket.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from sesam_tls import __version__
from sesam_tls.bundle import Bundle
from sesam_tls.cli import VERBS

from .helpers import make_root, seed_own_pair
from .testbed import TestbedError, free_port, served_cert_der, start_pebble, stop_pebble

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
EXE = REPO / "dist" / "sesam-tls"
IMAGE = f"sesam-tls:{__version__.replace('+', '-')}"
NAME = "node.example.test"
BUILD_TIMEOUT = 900


def _make(*targets: str, env: dict[str, str] | None = None) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        ["make", "--no-print-directory", *targets], cwd=REPO, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=BUILD_TIMEOUT, env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        pytest.fail(
            f"make {' '.join(targets)} failed (exit {proc.returncode}) after "
            f"{time.monotonic() - started:.0f}s:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def frozen_exe() -> Path:
    """dist/sesam-tls, (re)built by `make dist` when missing or older than the sources."""
    _make("dist")
    assert EXE.is_file() and os.access(EXE, os.X_OK)
    return EXE


@pytest.fixture(scope="session")
def frozen_image(frozen_exe, docker_host) -> str:
    """sesam-tls:<version> on the testbed's dockerd, (re)built by `make image` when the executable changed."""
    _make("image", env={"DOCKER_HOST": docker_host})
    return IMAGE


def bare_env(tmp_path: Path) -> dict[str, str]:
    """What a node's shell has, without any Python: the executable must carry its own."""
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}


def run_exe(exe: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe), *args], cwd=cwd, env=bare_env(cwd), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)


def check_pair(root: Path) -> Bundle:
    """The deployed pair matches (Bundle.from_pem raises otherwise), the key is 0600, the names are ours."""
    ssl = root / "sesam/nginx/conf/ssl"
    bundle = Bundle.from_pem((ssl / "fullchain.pem").read_bytes(), (ssl / "privkey.pem").read_bytes())
    assert stat.S_IMODE(os.stat(ssl / "privkey.pem").st_mode) == 0o600
    assert bundle.dns_names == [NAME]
    config = json.loads((root / "etc/sesam-agent/config.json").read_text())
    assert config["nginx"]["ssl_cert"] == "/etc/nginx/includes.d/ssl/fullchain.pem"
    return bundle


# ---- the one-file executable ----------------------------------------------------


def test_version(frozen_exe, tmp_path):
    proc = run_exe(frozen_exe, "--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"sesam-tls {__version__}"


def test_help_lists_every_verb(frozen_exe, tmp_path):
    # every verb module is imported by name (importlib): each must be in the build
    proc = run_exe(frozen_exe, "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # (the top-level help lists the verbs from the VERBS table; a verb module is imported by name
    # only when chosen, so the spec must collect every one of them)
    for verb in VERBS:
        assert f"    {verb} " in proc.stdout
    assert "exit codes" in proc.stdout
    sub = run_exe(frozen_exe, "issue", "--help", cwd=tmp_path)
    assert sub.returncode == 0 and "--self-signed" in sub.stdout, sub.stderr


def test_self_signed_issue_into_scratch_root(frozen_exe, tmp_path):
    root = make_root(tmp_path)
    proc = run_exe(frozen_exe, "issue", "--self-signed", "-d", NAME, "--root", str(root), "--no-restart", "--json",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    bundle = check_pair(root)
    assert out["fingerprint_sha256"] == bundle.fingerprint
    assert not list(tmp_path.glob("_MEI*"))  # unpacks into $TMPDIR or /tmp, never into the cwd


def test_unknown_verb_is_a_usage_error(frozen_exe, tmp_path):
    proc = run_exe(frozen_exe, "nope", cwd=tmp_path)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


@pytest.fixture(scope="module")
def dist_pebble():
    """A Pebble of this module's own on free ports (HTTP-01 included), so that
    other ACME tests or benchmarks on this machine cannot get in the way."""
    try:
        pebble = start_pebble(f"pebble-dist-{os.getpid()}")
    except TestbedError as e:
        pytest.fail(f"testbed not available: {e}", pytrace=False)
    yield pebble
    stop_pebble(pebble.name)


def test_acme_issue_from_pebble(frozen_exe, dist_pebble, tmp_path):
    """The ACME path (acme, josepy, requests: lazily imported) works frozen too."""
    pebble = dist_pebble
    root = make_root(tmp_path)
    proc = run_exe(
        frozen_exe, "issue", "-d", NAME, "--server", pebble.directory, "--ca-bundle", pebble.ca_bundle,
        "--agree-tos", "--http-port", str(pebble.http_port), "--http-address", "127.0.0.1",
        "--root", str(root), "--no-restart", "--json", cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["provider"] == "acme"
    bundle = check_pair(root)
    assert bundle.leaf.issuer != bundle.leaf.subject


# ---- the FROM-scratch image ------------------------------------------------------


def run_image(client, image: str, args: list[str], volumes: dict[str, str]) -> tuple[int, str, str]:
    """docker run --network host -v ... IMAGE ARGS; returns (exit code, stdout, stderr)."""
    container = client.containers.run(
        image, args, detach=True, network_mode="host",
        volumes={host: {"bind": inside, "mode": "rw"} for host, inside in volumes.items()},
    )
    try:
        code = int(container.wait(timeout=120)["StatusCode"])
        out = container.logs(stdout=True, stderr=False).decode()
        err = container.logs(stdout=False, stderr=True).decode()
        return code, out, err
    finally:
        container.remove(force=True)


def test_image_is_from_scratch_with_the_executable(frozen_image, docker_client):
    image = docker_client.images.get(frozen_image)
    assert image.attrs["Config"]["Entrypoint"] == ["/usr/local/bin/sesam-tls"]
    assert len(image.history()) == 1  # one imported layer, no base image
    assert docker_client.images.get("sesam-tls:latest").id == image.id
    code, out, err = run_image(docker_client, frozen_image, ["--version"], {})
    assert (code, out.strip()) == (0, f"sesam-tls {__version__}"), err


def test_image_self_signed_issue_into_scratch_root(frozen_image, docker_client, tmp_path):
    root = make_root(tmp_path)
    code, out, err = run_image(
        docker_client, frozen_image,
        ["issue", "--self-signed", "-d", NAME, "--root", str(root), "--no-restart", "--json"],
        {str(root): str(root)},
    )
    assert code == 0, err
    assert json.loads(out)["fingerprint_sha256"] == check_pair(root).fingerprint


def test_image_restarts_nginx_through_the_mounted_socket(frozen_image, docker_client, docker_host,
                                                         nginx_container, tmp_path):
    """A Sesam node: the operator's own pair served by nginx; the image issues,
    deploys, restarts nginx through /var/run/docker.sock and verifies by handshake."""

    root = make_root(tmp_path)
    ssl, own = seed_own_pair(root, NAME)
    port = free_port()
    name = nginx_container(ssl, port)
    assert served_cert_der("127.0.0.1", port, NAME) == own.leaf.public_bytes(Encoding.DER)
    started = nginx_container.container(name).attrs["State"]["StartedAt"]

    socket_path = docker_host.removeprefix("unix://")
    code, out, err = run_image(
        docker_client, frozen_image,
        ["issue", "--self-signed", "-d", NAME, "--root", str(root),
         "--docker-host", "unix:///var/run/docker.sock", "--container", name,
         "--verify", f"127.0.0.1:{port}", "--json"],
        {str(root): str(root), socket_path: "/var/run/docker.sock"},
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["deployment"]["action"] == "restart" and result["deployment"]["verified"] is True
    bundle = check_pair(root)
    assert result["fingerprint_sha256"] == bundle.fingerprint != own.fingerprint
    served = x509.load_der_x509_certificate(served_cert_der("127.0.0.1", port, NAME))
    assert served == bundle.leaf
    assert nginx_container.status(name) == "running"
    assert nginx_container.container(name).attrs["State"]["StartedAt"] != started


def test_image_acme_http01_stops_nginx_holding_the_port(frozen_image, docker_client, docker_host, dist_pebble,
                                                       nginx_container, tmp_path):
    """The wrapper's options: with the host's PID namespace (--pid host), --http01 auto sees that
    nginx holds the HTTP-01 port, stops it for the challenge, deploys and restarts it."""

    pebble = dist_pebble
    root = make_root(tmp_path)
    ssl, own = seed_own_pair(root, NAME)
    port = free_port()
    name = nginx_container(ssl, port, http_port=pebble.http_port)

    socket_path = docker_host.removeprefix("unix://")
    ca = str(Path(pebble.ca_bundle).resolve())
    container = docker_client.containers.run(
        frozen_image,
        ["issue", "-d", NAME, "--server", pebble.directory, "--ca-bundle", ca, "--agree-tos",
         "--http-port", str(pebble.http_port), "--http-address", "127.0.0.1", "--root", str(root),
         "--docker-host", "unix:///var/run/docker.sock", "--container", name,
         "--verify", f"127.0.0.1:{port}", "--json"],
        detach=True, network_mode="host", pid_mode="host",
        volumes={str(root): {"bind": str(root), "mode": "rw"}, ca: {"bind": ca, "mode": "ro"},
                 socket_path: {"bind": "/var/run/docker.sock", "mode": "rw"}},
    )
    try:
        code = int(container.wait(timeout=120)["StatusCode"])
        out = container.logs(stdout=True, stderr=False).decode()
        err = container.logs(stdout=False, stderr=True).decode()
    finally:
        container.remove(force=True)
    assert code == 0, err
    assert "using stop-nginx" in err
    result = json.loads(out)
    assert result["provider"] == "acme" and result["deployment"]["verified"] is True
    served = x509.load_der_x509_certificate(served_cert_der("127.0.0.1", port, NAME))
    assert served == check_pair(root).leaf and served.issuer != served.subject
    assert nginx_container.status(name) == "running"


def test_image_renew_loop_stops_cleanly(frozen_image, docker_client, tmp_path):
    """`renew --loop` as a long-running container: `docker stop` (SIGTERM to the
    bootloader, PID 1) ends it at once with exit status 0, not after the kill timeout."""
    root = make_root(tmp_path)
    code, _, err = run_image(docker_client, frozen_image,
                             ["issue", "--self-signed", "-d", NAME, "--root", str(root), "--no-restart"],
                             {str(root): str(root)})
    assert code == 0, err
    container = docker_client.containers.run(
        frozen_image, ["renew", "--loop", "--root", str(root), "--no-restart"], detach=True,
        network_mode="host", volumes={str(root): {"bind": str(root), "mode": "rw"}},
    )
    try:
        time.sleep(1.5)
        container.reload()
        assert container.status == "running", container.logs().decode()
        container.stop(timeout=20)
        # exit 0, not 137: SIGTERM ended the loop; docker did not have to SIGKILL it
        assert int(container.wait(timeout=10)["StatusCode"]) == 0, container.logs().decode()
    finally:
        container.remove(force=True)


# ---- how a node runs the image -----------------------------------------------------


def test_docker_wrapper_is_the_one_run_line(tmp_path):
    """packaging/sesam-tls-docker.sh hands its arguments to `docker run` with the
    node's folders mounted at the same paths (a stub docker records the call)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "argv"
    (bin_dir / "docker").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\n')
    (bin_dir / "docker").chmod(0o755)
    (bin_dir / "mkdir").write_text("#!/bin/sh\nexit 0\n")  # keep /var/lib/sesam-tls off this machine
    (bin_dir / "mkdir").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SESAM_TLS_IMAGE": IMAGE}
    proc = subprocess.run(["sh", str(REPO / "packaging/sesam-tls-docker.sh"), "renew", "--quiet"],
                          env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    argv = record.read_text().splitlines()
    assert argv[:5] == ["run", "--rm", "--network", "host", "--pid"]
    mounts = [argv[i + 1] for i, a in enumerate(argv) if a == "-v"]
    assert mounts == [
        "/sesam/nginx/conf/ssl:/sesam/nginx/conf/ssl", "/etc/sesam-agent:/etc/sesam-agent",
        "/var/lib/sesam-tls:/var/lib/sesam-tls", "/var/run/docker.sock:/var/run/docker.sock",
    ]
    assert argv[-3:] == [IMAGE, "renew", "--quiet"]
    # the shell's proxy reaches sesam-tls inside (issue records it, renew replays it)
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-e"][:3] == ["HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"]


def test_timer_install_from_the_executable_on_path(frozen_exe, tmp_path):
    root = make_root(tmp_path)
    env = {**bare_env(tmp_path), "PATH": f"{frozen_exe.parent}:/usr/bin:/bin"}
    proc = subprocess.run(["sesam-tls", "timer", "install", "--cron", "--root", str(root)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    entry = (root / "etc/cron.d/sesam-tls").read_text()
    assert f"{{ timeout --kill-after=90 3600 {frozen_exe} renew --root {root}" in entry
