"""Helpers for integration tests against the loopback testbed.

The testbed (dockerd without bridge, the image sesam-nginx-test:1, Pebble) is
installed and started by the scripts in testbed/ (`make testbed`); the pytest
fixtures in conftest.py call those scripts, which are idempotent, so a test
run also works when nothing was started beforehand.

Everything listens on 127.0.0.1 only; containers use the host's network.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]
TESTBED = REPO / "testbed"

NGINX_IMAGE = "sesam-nginx-test:1"
CONTAINER_PREFIX = "sesam-tls-test-"
# Mount points inside the image (they mirror a Sesam node's nginx container).
CONTAINER_SSL_DIR = "/etc/nginx/includes.d/ssl"
CONTAINER_SITES_DIR = "/etc/nginx/sites"

SETUP_HINT = "run `make testbed` (or testbed/setup.sh as root) to install the testbed"


class TestbedError(RuntimeError):
    """A testbed script failed (missing binary, service that won't start)."""

    __test__ = False  # not a test class, whatever its name


def testbed_dir() -> Path:
    return Path(os.environ.get("SESAM_TESTBED_DIR", "/tmp/sesam-testbed"))


def run_script(script: str, *args: str, env: dict[str, str] | None = None,
               replace_env: bool = False, timeout: float = 120) -> str:
    """Run testbed/<script> <args>; return its stdout (stripped).

    env is added to os.environ (or used alone with replace_env=True).
    Raises TestbedError with the script's stderr when it fails.
    """
    path = TESTBED / script
    full_env = {} if replace_env else dict(os.environ)
    if env:
        full_env.update(env)
    try:
        proc = subprocess.run(
            ["bash", str(path), *args], env=full_env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        raise TestbedError(f"{script} {' '.join(args)} timed out after {timeout}s") from e
    if proc.returncode != 0:
        # The script's own lines say what went wrong (a missing binary names
        # `make testbed`; a taken port names the port): no guess added here.
        raise TestbedError(
            f"{script} {' '.join(args)} failed (exit {proc.returncode}):\n"
            f"{proc.stderr.strip()}\n{proc.stdout.strip()}"
        )
    return proc.stdout.strip()


# --------------------------------------------------------------------------
# dockerd


def start_dockerd() -> str:
    """Start the loopback dockerd (no-op when it answers); return DOCKER_HOST."""
    if shutil.which("dockerd") is None:
        raise TestbedError(f"no dockerd binary on this machine: {SETUP_HINT}")
    return run_script("dockerd.sh", "start").splitlines()[-1]


def build_nginx_image() -> str:
    """Build sesam-nginx-test:1 unless it exists; return the image name."""
    if not Path("/usr/sbin/nginx").exists():
        raise TestbedError(f"no /usr/sbin/nginx on this machine: {SETUP_HINT}")
    run_script("nginx-image.sh")
    return NGINX_IMAGE


def docker_client(docker_host: str | None = None):
    import docker  # the SDK; imported late so unit tests don't need it loaded

    return docker.DockerClient(
        base_url=docker_host or os.environ["DOCKER_HOST"], version="auto", timeout=60,
    )


# --------------------------------------------------------------------------
# Pebble


@dataclass
class Pebble:
    """A running Pebble instance.

    directory:  ACME directory URL, e.g. https://127.0.0.1:40123/dir
    ca_bundle:  PEM file that verifies Pebble's own API certificate (pass it
                explicitly as `verify=`: REQUESTS_CA_BUNDLE is set machine-wide
                here and points at the system store)
    mgmt_url:   management API, e.g. https://127.0.0.1:40124
    http_port:  port Pebble's VA connects to for HTTP-01 (on 127.0.0.1)
    eab_keys:   {kid: base64url HMAC key} when EAB is required, else {}
    """

    name: str
    directory: str
    ca_bundle: str
    mgmt_url: str
    port: int
    mgmt_port: int
    http_port: int
    tls_port: int
    eab_required: bool = False
    eab_keys: dict[str, str] = field(default_factory=dict)

    def _get(self, path: str) -> str:
        import requests

        r = requests.get(self.mgmt_url + path, verify=self.ca_bundle, timeout=10)
        r.raise_for_status()
        return r.text

    def root_pem(self, index: int = 0) -> str:
        """PEM of the issuing root (changes at every Pebble start)."""
        return self._get(f"/roots/{index}")

    def intermediate_pem(self, index: int = 0) -> str:
        return self._get(f"/intermediates/{index}")

    def root_der(self, index: int = 0) -> bytes:
        return ssl.PEM_cert_to_DER_cert(self.root_pem(index))


def start_pebble(
    instance: str = "pebble",
    *,
    port: int | str = "auto",
    mgmt_port: int | str = "auto",
    http_port: int | str = "auto",
    eab: bool = False,
    knobs: dict[str, str] | None = None,
    dns_server: str | None = None,
) -> Pebble:
    """Start (or reuse) a Pebble instance, with a pebble-challtestsrv of its
    own, via testbed/pebble.sh.

    Every port defaults to "auto": a free port chosen by the script, so runs
    share a machine with other Pebbles (the ports are read back from the
    instance's ports.env). knobs: Pebble's own PEBBLE_* variables (e.g.
    {"PEBBLE_WFE_NONCEREJECT": "50"}); defaults PEBBLE_VA_NOSLEEP=1,
    PEBBLE_AUTHZREUSE=0. An instance already running with other knobs or
    ports is restarted (new roots!), so give each instance its own name.
    """
    if shutil.which("pebble") is None or shutil.which("pebble-challtestsrv") is None:
        raise TestbedError(f"no pebble binary on this machine: {SETUP_HINT}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEBBLE_")}
    env.update(knobs or {})
    env.update(
        PEBBLE_INSTANCE=instance,
        PEBBLE_PORT=str(port),
        PEBBLE_MGMT_PORT=str(mgmt_port),
        PEBBLE_HTTP_PORT=str(http_port),
        PEBBLE_TLS_PORT="auto",
        PEBBLE_DNS_PORT="auto",
        PEBBLE_CHALL_MGMT_PORT="auto",
        PEBBLE_EAB="1" if eab else "0",
    )
    if dns_server:
        env["PEBBLE_DNS_SERVER"] = dns_server
    ca_bundle = run_script("pebble.sh", "start", env=env, replace_env=True).splitlines()[-1]
    folder = testbed_dir() / "pebble" / instance
    ports = dict(line.split("=", 1) for line in (folder / "ports.env").read_text().split())
    cfg = json.loads((folder / "config.json").read_text())["pebble"]
    return Pebble(
        name=instance,
        directory=f"https://127.0.0.1:{ports['PORT']}/dir",
        ca_bundle=ca_bundle,
        mgmt_url=f"https://127.0.0.1:{ports['MGMT_PORT']}",
        port=int(ports["PORT"]),
        mgmt_port=int(ports["MGMT_PORT"]),
        http_port=int(cfg["httpPort"]),
        tls_port=int(cfg["tlsPort"]),
        eab_required=bool(cfg.get("externalAccountBindingRequired")),
        eab_keys=dict(cfg.get("externalAccountMACKeys") or {}),
    )


def stop_pebble(instance: str) -> None:
    """Stop a Pebble instance started with start_pebble(instance, ...), and its challtestsrv."""
    run_script("pebble.sh", "stop", env={"PEBBLE_INSTANCE": instance})


@contextlib.contextmanager
def own_pebble(instance: str, **knobs: str) -> Iterator[Pebble]:
    """A Pebble of a test's own on free ports (its HTTP-01 port too), with PEBBLE_* knobs; stopped afterwards."""
    pebble = start_pebble(f"{instance}-{os.getpid()}", knobs=knobs)
    try:
        yield pebble
    finally:
        stop_pebble(pebble.name)


# --------------------------------------------------------------------------
# Knot (authoritative DNS with RFC 2136 updates, for DNS-01)


@dataclass
class Knot:
    """A running knotd instance (testbed/knot.sh) on 127.0.0.1:port.

    It serves example.test (every name A 127.0.0.1; _acme-challenge.alias is a
    CNAME to alias.validation.example.test). secret_file holds the base64
    secret of the TSIG key key_name (hmac-sha256), which may update the zone
    unless updates is False.
    """

    name: str
    port: int
    key_name: str
    key_algorithm: str
    secret_file: str
    updates: bool

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def secret(self) -> str:
        return Path(self.secret_file).read_text().strip()

    def txt(self, name: str) -> list[str]:
        """The TXT values at name, asked from this server only (kdig, no recursion)."""
        out = subprocess.run(
            ["kdig", "@127.0.0.1", "-p", str(self.port), "+norecurse", "+short", "+time=2", "+retry=1", "TXT", name],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout
        return sorted(line.strip().strip('"') for line in out.splitlines() if line.startswith('"'))

    def update(self, *lines: str, zone: str = "example.test.") -> None:
        """knsupdate with the TSIG key: lines such as 'add x.example.test. 5 TXT "v"'."""
        script = f"server 127.0.0.1 {self.port}\nzone {zone}\n" + "".join(f"update {line}\n" for line in lines) + "send\n"
        subprocess.run(
            ["knsupdate", "-y", f"{self.key_algorithm}:{self.key_name}:{self.secret}"],
            input=script, capture_output=True, text=True, timeout=20, check=True,
        )


def start_knot(instance: str = "knot", *, updates: bool = True) -> Knot:
    """Start (or reuse) a knotd instance on a free port via testbed/knot.sh."""
    if shutil.which("knotd") is None or shutil.which("knsupdate") is None:
        raise TestbedError(f"no knotd/knsupdate on this machine: {SETUP_HINT}")
    env = {"KNOT_INSTANCE": instance, "KNOT_PORT": "auto", "KNOT_UPDATES": "1" if updates else "0"}
    ports_env = run_script("knot.sh", "start", env=env).splitlines()[-1]
    values = dict(line.split("=", 1) for line in Path(ports_env).read_text().split())
    return Knot(instance, int(values["PORT"]), values["KEY_NAME"], values["KEY_ALGORITHM"],
                values["SECRET_FILE"], values["UPDATES"] == "1")


def stop_knot(instance: str) -> None:
    run_script("knot.sh", "stop", env={"KNOT_INSTANCE": instance})


# --------------------------------------------------------------------------
# network helpers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, host: str = "127.0.0.1", timeout: float = 10) -> None:
    """Wait until host:port accepts TCP connections."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def served_cert_der(host: str, port: int, server_hostname: str | None = None,
                    timeout: float = 5) -> bytes:
    """DER of the leaf certificate served at host:port (real TLS handshake).

    No verification. server_hostname is sent as SNI (none when None).
    Retries connection errors and failed handshakes until `timeout` seconds
    have passed (the port may be coming up), then raises the last error.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=2) as raw:
                with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
                    der = tls.getpeercert(binary_form=True)
                    if der:
                        return der
                    raise ssl.SSLError("server sent no certificate")
        except (OSError, ssl.SSLError):
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def wait_served_cert(host: str, port: int, expected_der: bytes,
                     server_hostname: str | None = None, timeout: float = 10) -> None:
    """Wait until host:port serves expected_der (e.g. after `nginx -s reload`,
    while old workers finish). Raises AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = served_cert_der(host, port, server_hostname,
                                   timeout=max(0.1, deadline - time.monotonic()))
        except (OSError, ssl.SSLError):
            last = None
        if last == expected_der:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"{host}:{port} did not serve the expected certificate within {timeout}s"
                + ("" if last is not None else " (no handshake)")
            )
        time.sleep(0.05)


# --------------------------------------------------------------------------
# nginx containers


ACME_WEBROOT = "/var/www/acme"  # where a container set up for certbot keeps the challenge files


def sites_conf(https_port: int, http_port: int | None = None, acme: str | None = None) -> str:
    """nginx sites conf: TLS on 127.0.0.1:https_port with the includes.d/ssl
    pair, plain HTTP on 127.0.0.1:http_port when given. ``acme`` ("root" or
    "alias"): the HTTP server also serves /.well-known/acme-challenge/ from
    ACME_WEBROOT, the way an nginx set up for certbot does."""
    conf = f"""server {{
    listen 127.0.0.1:{https_port} ssl;
    ssl_certificate     {CONTAINER_SSL_DIR}/fullchain.pem;
    ssl_certificate_key {CONTAINER_SSL_DIR}/privkey.pem;
    location / {{ default_type text/plain; return 200 "sesam node\\n"; }}
}}
"""
    if http_port is not None:
        challenge = {
            None: "",
            "root": f"    location /.well-known/acme-challenge/ {{ default_type text/plain; root {ACME_WEBROOT}; }}\n",
            "alias": f"    location /.well-known/acme-challenge/ {{ default_type text/plain; alias {ACME_WEBROOT}/; }}\n",
        }[acme]
        conf += f"""server {{
    listen 127.0.0.1:{http_port};
{challenge}    location / {{ default_type text/plain; return 200 "sesam node (http)\\n"; }}
}}
"""
    return conf


class NginxContainers:
    """Factory behind the `nginx_container` fixture; removes what it made."""

    def __init__(self, client, tmp_dir: Path):
        self.client = client
        self.tmp_dir = Path(tmp_dir)
        self.names: list[str] = []

    def __call__(self, ssl_dir, https_port: int, http_port: int | None = None,
                 name: str | None = None, *, wait: bool = True,
                 timeout: float = 10, acme_webroot=None, acme: str = "root") -> str:
        """Run an nginx container serving ssl_dir on 127.0.0.1:https_port.

        acme_webroot: a host folder mounted at ACME_WEBROOT (read-write) that
        the HTTP server serves /.well-known/acme-challenge/ from (``acme``:
        "root" or "alias" layout).

        ssl_dir is mounted read-only at /etc/nginx/includes.d/ssl, so it must
        hold fullchain.pem and privkey.pem for nginx to start. Returns the
        container name (default: sesam-tls-test-<random>). With wait=True,
        returns once https_port accepts connections, and raises RuntimeError
        with the container's log if nginx exits instead.
        """
        name = name or CONTAINER_PREFIX + secrets.token_hex(4)
        sites = Path(tempfile.mkdtemp(prefix=f"sites-{name}-", dir=self.tmp_dir))
        (sites / "default.conf").write_text(sites_conf(https_port, http_port, acme if acme_webroot else None))
        self.names.append(name)
        extra = {str(Path(acme_webroot).resolve()): {"bind": ACME_WEBROOT, "mode": "rw"}} if acme_webroot else {}
        self.client.containers.run(
            NGINX_IMAGE,
            name=name,
            detach=True,
            network_mode="host",
            volumes={
                str(Path(ssl_dir).resolve()): {"bind": CONTAINER_SSL_DIR, "mode": "ro"},
                str(sites): {"bind": CONTAINER_SITES_DIR, "mode": "ro"},
                **extra,
            },
        )
        if wait:
            self.wait_listening(name, https_port, timeout=timeout)
        return name

    def container(self, name: str):
        return self.client.containers.get(name)

    def status(self, name: str) -> str:
        """'running', 'exited', ... (fresh from the engine)."""
        return self.container(name).attrs["State"]["Status"]

    def logs(self, name: str) -> str:
        return self.container(name).logs().decode(errors="replace")

    def wait_listening(self, name: str, port: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                pass
            c = self.container(name)
            if c.status not in ("created", "running", "restarting"):
                raise RuntimeError(
                    f"nginx container {name} is {c.status} "
                    f"(exit {c.attrs['State']['ExitCode']}):\n{self.logs(name)}"
                )
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"nginx container {name} not listening on {port} after {timeout}s:\n"
                    f"{self.logs(name)}"
                )
            time.sleep(0.02)

    def wait_exited(self, name: str, timeout: float = 10) -> int:
        """Wait until the container stops; return its exit code."""
        res = self.container(name).wait(timeout=timeout)
        return int(res["StatusCode"])

    def cleanup(self) -> None:
        import docker

        for name in self.names:
            try:
                self.client.containers.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass
        self.names.clear()
