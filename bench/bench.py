#!/usr/bin/env python3
"""Benchmarks of sesam-tls against certbot and lego on one loopback Pebble (issue 7).

    .venv/bin/python bench/bench.py [--smoke] [--tools sesam-tls,certbot,lego] [--only 1,2,3,4,5,dns] [--out DIR]

`make bench` installs the peers (bench/setup-peers.sh) and runs this; `make
bench-smoke` runs one iteration of everything. Measurements:

1. issuance latency: one name, new key, existing account, HTTP-01 standalone
   on the same port (peers interleaved A B C A B C ...);
2. scaling with the number of names on one certificate;
3. start-up: ``--help`` and ``renew`` with nothing due;
4. rotation cost for clients: failed requests and the longest gap while a
   load generator makes back-to-back HTTPS requests (a new TLS connection
   each) to an nginx container and sesam-tls deploys with reload / restart;
5. port-80 downtime of ``--http01 stop-nginx``;
6. peak memory (max RSS) of measurement 1;
8. (``imports``) what each verb imports, ``python -X importtime`` summed by top-level package
   (bench/imports.py);
9. (``warm``) a warm in-process issuance, as a ``renew --loop`` process makes it, with the
   CA's own time beside it (bench/warm.py);
10. (``wire``) requests, nonce HEADs and connections (TLS handshakes) for 1, 10 and 100 names
   (bench/wire.py, a Pebble of its own on free ports);
11. the goals of issue 16, each with the measured value and met or not, at the top of the report;
12. (``a2c``) a second ACME server, acme2certifier (PyPI, in bench/.venv-a2c; bench/a2c_launcher.py
   under wsgiref on 127.0.0.1, its HTTP-01 validation sent to the benchmark's HTTP-01 port and its
   DNS to our Pebble's challtestsrv): sesam-tls, lego and certbot interleaved, and the stack's
   floor (a Python that only imports what ``issue`` imports, plus the CA's own time measured in
   a warm process);
7. DNS-01 (``--only dns``): sesam-tls's built-in RFC 2136 updates against
   lego's ``rfc2136`` provider, one name and ten names, interleaved, on a
   knotd of our own (testbed/knot.sh) and a second Pebble whose VA resolves
   through it; certbot is not run there (its RFC 2136 support is a separate
   plugin, certbot-dns-rfc2136, which bench/setup-peers.sh does not install).
   ``--smoke`` runs it once per size, with sesam-tls only.

Everything talks to 127.0.0.1 only: our own Pebble and challtestsrv (ports
14200/15200, HTTP-01 on 5202, DNS 8253, or free ones with --free-ports; an instance
bench-<pid> in the testbed's folder; for DNS-01 a knotd bench-<pid> and a
Pebble bench-<pid>-dns, both on free ports) and containers with --network
host. Every process this starts is stopped by its pid (Pebble and knotd by
their pid files).
Wall times are time.perf_counter() around the subprocess; max RSS comes from
os.wait4() on the child. Writes DIR/results.json, DIR/REPORT.md and (when a
Python with matplotlib is given by --plot-python) DIR/bench.png.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import testbed as tb  # noqa: E402  (tests/testbed.py: dockerd, nginx image, Pebble, nginx containers)

SESAM = str(REPO / ".venv" / "bin" / "sesam-tls")
CERTBOT = str(REPO / "bench" / ".venv-certbot" / "bin" / "certbot")
LEGO = shutil.which("lego") or "/usr/bin/lego"
TOOLS = ("sesam-tls", "certbot", "lego")
EMAIL = "a@example.test"

# One instance name per run, in the testbed's folder (unless --state-dir):
# `make clean-testbed` then stops what a crashed run left behind.
PEBBLE_INSTANCE = f"bench-{os.getpid()}"
# DNS-01 (measurement 7): a knotd and a Pebble that resolves through it, always on free ports.
KNOT_INSTANCE = f"bench-{os.getpid()}"
DNS_PEBBLE_INSTANCE = f"bench-{os.getpid()}-dns"
# lego's rfc2136 waits RFC2136_POLLING_INTERVAL before each name's (here disabled) propagation
# check and RFC2136_SEQUENCE_INTERVAL between names (it solves them one after another); its
# defaults are 2 s and 60 s. --lego-dns-interval sets both.
LEGO_DNS_INTERVAL = 0
# Ports; --port-offset N adds N to each, --free-ports takes free ones chosen at
# run time (the smoke test does, so that it never meets anything else on the machine;
# never meets a full `make bench` on the same machine).
PEBBLE_PORT, PEBBLE_MGMT_PORT, HTTP01_PORT = 14200, 15200, 5202
DNS_PORT, CHALL_MGMT_PORT = 8253, 8255
ROTATE_HTTPS_PORT = 8643
STOPNGINX_HTTPS_PORT = 8644
CONTAINER_PREFIX = "sesam-tls-bench-"
NONCE_REJECT = 0  # percent of nonces Pebble rejects (Pebble's own default: 5)


def use_free_ports() -> None:
    """Every port the benchmark listens on (or has Pebble dial) becomes a free one."""
    global PEBBLE_PORT, PEBBLE_MGMT_PORT, HTTP01_PORT, DNS_PORT, CHALL_MGMT_PORT
    global ROTATE_HTTPS_PORT, STOPNGINX_HTTPS_PORT
    PEBBLE_PORT, PEBBLE_MGMT_PORT, DNS_PORT, CHALL_MGMT_PORT = (tb.free_port() for _ in range(4))
    ROTATE_HTTPS_PORT, STOPNGINX_HTTPS_PORT = tb.free_port(), tb.free_port()
    HTTP01_PORT = tb.free_port()
    while HTTP01_PORT - 1 in (PEBBLE_PORT, PEBBLE_MGMT_PORT, DNS_PORT, CHALL_MGMT_PORT):
        HTTP01_PORT = tb.free_port()


def set_port_offset(offset: int) -> None:
    global PEBBLE_PORT, PEBBLE_MGMT_PORT, HTTP01_PORT, DNS_PORT, CHALL_MGMT_PORT
    global ROTATE_HTTPS_PORT, STOPNGINX_HTTPS_PORT
    PEBBLE_PORT += offset
    PEBBLE_MGMT_PORT += offset
    HTTP01_PORT += offset
    DNS_PORT += offset
    CHALL_MGMT_PORT += offset
    ROTATE_HTTPS_PORT += offset
    STOPNGINX_HTTPS_PORT += offset


def pebble_env(state_dir: Path) -> dict[str, str]:
    """Environment for testbed/pebble.sh: our own state folder (so that the
    testbed's `pebble.sh stop-all` / `make clean-testbed`, run by a test
    suite on the same machine, does not stop our Pebble) and our own
    challtestsrv (DNS: every name is 127.0.0.1)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEBBLE_")}
    env.update(
        SESAM_TESTBED_DIR=str(state_dir),
        PEBBLE_INSTANCE=PEBBLE_INSTANCE, PEBBLE_PORT=str(PEBBLE_PORT), PEBBLE_MGMT_PORT=str(PEBBLE_MGMT_PORT),
        PEBBLE_HTTP_PORT=str(HTTP01_PORT), PEBBLE_TLS_PORT=str(HTTP01_PORT - 1), PEBBLE_EAB="0",
        PEBBLE_DNS_PORT=str(DNS_PORT), PEBBLE_CHALL_MGMT_PORT=str(CHALL_MGMT_PORT),
        PEBBLE_VA_NOSLEEP="1", PEBBLE_AUTHZREUSE="0",
        # Pebble rejects 5% of nonces by default; with 50-100 names certbot then failed most runs
        # on badNonce (seen here), which measures luck, not speed. --nonce-reject N puts it back.
        PEBBLE_WFE_NONCEREJECT=str(NONCE_REJECT),
    )
    return env


def start_bench_pebble(state_dir: Path) -> tb.Pebble:
    ca_bundle = tb.run_script("pebble.sh", "start", env=pebble_env(state_dir), replace_env=True).splitlines()[-1]
    return tb.Pebble(
        name=PEBBLE_INSTANCE, directory=f"https://127.0.0.1:{PEBBLE_PORT}/dir", ca_bundle=ca_bundle,
        mgmt_url=f"https://127.0.0.1:{PEBBLE_MGMT_PORT}", port=PEBBLE_PORT, mgmt_port=PEBBLE_MGMT_PORT,
        http_port=HTTP01_PORT, tls_port=HTTP01_PORT - 1,
    )


def stop_bench_pebble(state_dir: Path) -> None:
    """Stop our Pebble and challtestsrv, by their pid files."""
    tb.run_script("pebble.sh", "stop", env=pebble_env(state_dir), replace_env=True)


def pebble_alive(state_dir: Path, instance: str = PEBBLE_INSTANCE) -> bool:
    return pid_alive(state_dir / "pebble" / instance / "pebble.pid", "pebble")


def pid_alive(pid_file: Path, comm: str) -> bool:
    try:
        pid = int(pid_file.read_text())
        return Path(f"/proc/{pid}/comm").read_text().strip() == comm
    except (OSError, ValueError):
        return False


def start_bench_knot(state_dir: Path) -> tb.Knot:
    """Our own knotd (testbed/knot.sh) on a free port, updates allowed with its TSIG key."""
    env = {"SESAM_TESTBED_DIR": str(state_dir), "KNOT_INSTANCE": KNOT_INSTANCE, "KNOT_PORT": "auto",
           "KNOT_UPDATES": "1"}
    ports_env = tb.run_script("knot.sh", "start", env=env).splitlines()[-1]
    values = dict(line.split("=", 1) for line in Path(ports_env).read_text().split())
    return tb.Knot(KNOT_INSTANCE, int(values["PORT"]), values["KEY_NAME"], values["KEY_ALGORITHM"],
                   values["SECRET_FILE"], values["UPDATES"] == "1")


def stop_bench_knot(state_dir: Path) -> None:
    """Stop our knotd, by its pid file."""
    tb.run_script("knot.sh", "stop", env={"SESAM_TESTBED_DIR": str(state_dir), "KNOT_INSTANCE": KNOT_INSTANCE})


def knot_alive(state_dir: Path) -> bool:
    return pid_alive(state_dir / "knot" / KNOT_INSTANCE / "knotd.pid", "knotd")


def dns_pebble_env(state_dir: Path, knot_address: str) -> dict[str, str]:
    """Like pebble_env, for the DNS-01 Pebble: free ports, no challtestsrv, its VA asks our knotd."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEBBLE_")}
    env.update(
        SESAM_TESTBED_DIR=str(state_dir), PEBBLE_INSTANCE=DNS_PEBBLE_INSTANCE, PEBBLE_EAB="0",
        PEBBLE_PORT="auto", PEBBLE_MGMT_PORT="auto", PEBBLE_HTTP_PORT="auto", PEBBLE_TLS_PORT="auto",
        PEBBLE_DNS_PORT="auto", PEBBLE_CHALL_MGMT_PORT="auto", PEBBLE_DNS_SERVER=knot_address,
        PEBBLE_VA_NOSLEEP="1", PEBBLE_AUTHZREUSE="0", PEBBLE_WFE_NONCEREJECT=str(NONCE_REJECT),
    )
    return env


def start_dns_pebble(state_dir: Path, knot: tb.Knot) -> tb.Pebble:
    ca_bundle = tb.run_script("pebble.sh", "start", env=dns_pebble_env(state_dir, knot.address),
                              replace_env=True).splitlines()[-1]
    folder = state_dir / "pebble" / DNS_PEBBLE_INSTANCE
    ports = dict(line.split("=", 1) for line in (folder / "ports.env").read_text().split())
    cfg = json.loads((folder / "config.json").read_text())["pebble"]
    return tb.Pebble(
        name=DNS_PEBBLE_INSTANCE, directory=f"https://127.0.0.1:{ports['PORT']}/dir", ca_bundle=ca_bundle,
        mgmt_url=f"https://127.0.0.1:{ports['MGMT_PORT']}", port=int(ports["PORT"]),
        mgmt_port=int(ports["MGMT_PORT"]), http_port=int(cfg["httpPort"]), tls_port=int(cfg["tlsPort"]),
    )


def stop_dns_pebble(state_dir: Path) -> None:
    """Stop the DNS-01 Pebble, by its pid file."""
    tb.run_script("pebble.sh", "stop", env={"SESAM_TESTBED_DIR": str(state_dir),
                                            "PEBBLE_INSTANCE": DNS_PEBBLE_INSTANCE})


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- running things


@dataclass
class Run:
    wall: float  # seconds, perf_counter around the child
    rc: int
    maxrss_kb: int  # the child's (and its waited-for descendants') peak RSS
    output: str


def run(cmd: list[str], *, env: Optional[dict[str, str]] = None, timeout: float = 600) -> Run:
    """Run cmd with stdout+stderr to a temp file; wall time and max RSS of the child."""
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        killer = threading.Timer(timeout, lambda: p.kill())
        killer.start()
        try:
            _, status, usage = os.wait4(p.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    return Run(wall=wall, rc=p.returncode, maxrss_kb=int(usage.ru_maxrss), output=text)


def must(r: Run, what: str) -> Run:
    if r.rc != 0:
        raise RuntimeError(f"{what} failed (exit {r.rc}):\n{r.output[-3000:]}")
    return r


def failure_reason(r: Run) -> str:
    """The last line of a failed run's output that says something."""
    lines = [ln.strip() for ln in r.output.splitlines() if ln.strip()]
    for ln in reversed(lines):
        low = ln.lower()
        if any(w in low for w in ("error", "failed", "invalid", "refused", "timeout", "problem", "[bench]")) \
                and not low.startswith(("ask for help", "saving debug log")):
            return ln[:300]
    return (lines[-1] if lines else "(no output)")[:300]


def stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {"n": len(values), "median": statistics.median(values), "min": min(values), "max": max(values)}


# ---------------------------------------------------------------- the three clients


class Client:
    """One ACME client: a template state (account registered, one warm-up
    certificate) that every measured run starts from as a fresh copy."""

    name = ""

    def __init__(self, work: Path, pebble: tb.Pebble):
        self.work = work / self.name
        self.template = self.work / "template"
        self.pebble = pebble
        self.runs = 0

    def fresh(self) -> Path:
        self.runs += 1
        d = self.work / f"run-{self.runs}"
        shutil.copytree(self.template, d, symlinks=True)
        return d

    def discard(self, d: Path) -> None:
        shutil.rmtree(d, ignore_errors=True)

    def prepare(self) -> None:
        raise NotImplementedError

    def issue(self, names: list[str]) -> Run:
        """One measured issuance from a fresh copy of the template."""
        d = self.fresh()
        try:
            cmd, env = self.issue_cmd(d, names)
            r = run(cmd, env=env)
            if r.rc == 0 and not self.got_cert(d, names):
                r.rc = 99
                r.output += "\n[bench] exit 0 but no certificate file found"
            return r
        finally:
            self.discard(d)

    def issue_cmd(self, d: Path, names: list[str]) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def got_cert(self, d: Path, names: list[str]) -> bool:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError


class SesamTls(Client):
    name = "sesam-tls"

    def prepare(self) -> None:
        make_root(self.template)
        cmd, env = self.issue_cmd(self.template, [f"warmup.{self.name}.example.test"])
        must(run(cmd, env=env), "sesam-tls warm-up issuance (registers the account)")

    def issue_cmd(self, d, names):
        cmd = [SESAM, "issue"]
        for n in names:
            cmd += ["--domain", n]
        cmd += [
            "--server", self.pebble.directory, "--ca-bundle", self.pebble.ca_bundle,
            "--email", EMAIL, "--agree-tos", "--key-type", "ecdsa-p256",
            "--http01", "standalone", "--http-port", str(HTTP01_PORT), "--http-address", "127.0.0.1",
            "--no-restart", "--root", str(d),
        ]
        return cmd, clean_env()

    def got_cert(self, d, names):
        return cert_has_names(d / "sesam/nginx/conf/ssl/fullchain.pem", names)

    def version(self):
        return must(run([SESAM, "--version"]), "sesam-tls --version").output.strip()


class Certbot(Client):
    name = "certbot"

    def dirs(self, d: Path) -> list[str]:
        return ["--config-dir", str(d / "config"), "--work-dir", str(d / "work"), "--logs-dir", str(d / "logs")]

    def env(self) -> dict[str, str]:
        # certbot reaches the ACME server through requests: trust Pebble's API cert.
        return clean_env(REQUESTS_CA_BUNDLE=self.pebble.ca_bundle)

    def prepare(self) -> None:
        self.template.mkdir(parents=True)
        must(run([CERTBOT, "register", *self.dirs(self.template), "--server", self.pebble.directory,
                  "--agree-tos", "-m", EMAIL, "--no-eff-email", "--non-interactive"], env=self.env()),
             "certbot register")
        cmd, env = self.issue_cmd(self.template, [f"warmup.{self.name}.example.test"])
        must(run(cmd, env=env), "certbot warm-up issuance")

    def issue_cmd(self, d, names):
        cmd = [CERTBOT, "certonly", "--standalone", "--http-01-port", str(HTTP01_PORT),
               "--http-01-address", "127.0.0.1", "--server", self.pebble.directory,
               "--key-type", "ecdsa", "--elliptic-curve", "secp256r1",
               "--non-interactive", "--agree-tos", "--no-eff-email", *self.dirs(d)]
        for n in names:
            cmd += ["-d", n]
        return cmd, self.env()

    def got_cert(self, d, names):
        return cert_has_names(d / "config/live" / names[0] / "fullchain.pem", names)

    def renew_cmd(self, d: Path) -> list[str]:
        return [CERTBOT, "renew", *self.dirs(d), "--no-random-sleep-on-renew", "--non-interactive"]

    def version(self):
        return must(run([CERTBOT, "--version"], env=self.env()), "certbot --version").output.strip()


class Lego(Client):
    name = "lego"

    def env(self) -> dict[str, str]:
        return clean_env(LEGO_CA_CERTIFICATES=self.pebble.ca_bundle)

    def prepare(self) -> None:
        self.template.mkdir(parents=True)
        # lego 4.9 has no separate "register": its first run registers the account.
        cmd, env = self.issue_cmd(self.template, [f"warmup.{self.name}.example.test"])
        must(run(cmd, env=env), "lego warm-up issuance (registers the account)")

    def issue_cmd(self, d, names):
        cmd = [LEGO, "--server", self.pebble.directory, "--accept-tos", "--email", EMAIL,
               "--path", str(d), "--key-type", "ec256", "--http", "--http.port", f"127.0.0.1:{HTTP01_PORT}"]
        for n in names:
            cmd += ["--domains", n]
        return cmd + ["run"], self.env()

    def got_cert(self, d, names):
        return cert_has_names(d / "certificates" / f"{names[0]}.crt", names)

    def version(self):
        pkg = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "lego"], capture_output=True, text=True)
        return f"lego {pkg.stdout.strip() or '?'} (Debian package)"


CLIENTS: dict[str, type[Client]] = {"sesam-tls": SesamTls, "certbot": Certbot, "lego": Lego}


class SesamTlsDns01(SesamTls):
    """sesam-tls with its built-in RFC 2136 updates (TSIG secret from the knotd's file) and its
    default propagation check: it asks the --dns-server, as the zone's authoritative server,
    until the value is served (polls from 20 ms, growing)."""

    def __init__(self, work: Path, pebble: tb.Pebble, knot: tb.Knot):
        super().__init__(work, pebble)
        self.knot = knot

    def issue_cmd(self, d, names):
        cmd = [SESAM, "issue"]
        for n in names:
            cmd += ["--domain", n]
        cmd += [
            "--server", self.pebble.directory, "--ca-bundle", self.pebble.ca_bundle,
            "--email", EMAIL, "--agree-tos", "--key-type", "ecdsa-p256",
            "--challenge", "dns-01", "--dns-server", self.knot.address, "--dns-tsig-name", self.knot.key_name,
            "--dns-tsig-file", self.knot.secret_file, "--no-restart", "--root", str(d),
        ]
        return cmd, clean_env()


class LegoDns01(Lego):
    """lego's rfc2136 provider. Its propagation check looks the zone's NS host name up through
    the system resolver and asks it on port 53, which cannot work on loopback (and would leave
    the machine): --dns.disable-cp turns it off, and --dns.resolvers points every other lookup
    lego makes (the zone's SOA, a CNAME on _acme-challenge) at our knotd."""

    def __init__(self, work: Path, pebble: tb.Pebble, knot: tb.Knot):
        super().__init__(work, pebble)
        self.knot = knot

    def env(self) -> dict[str, str]:
        return clean_env(
            LEGO_CA_CERTIFICATES=self.pebble.ca_bundle, RFC2136_NAMESERVER=self.knot.address,
            RFC2136_TSIG_KEY=self.knot.key_name, RFC2136_TSIG_SECRET=self.knot.secret,
            RFC2136_TSIG_ALGORITHM=self.knot.key_algorithm + ".",
            RFC2136_POLLING_INTERVAL=str(LEGO_DNS_INTERVAL), RFC2136_SEQUENCE_INTERVAL=str(LEGO_DNS_INTERVAL),
        )

    def issue_cmd(self, d, names):
        cmd = [LEGO, "--server", self.pebble.directory, "--accept-tos", "--email", EMAIL,
               "--path", str(d), "--key-type", "ec256", "--dns", "rfc2136", "--dns.disable-cp",
               "--dns.resolvers", self.knot.address]
        for n in names:
            cmd += ["--domains", n]
        return cmd + ["run"], self.env()


DNS01_CLIENTS: dict[str, type[Client]] = {"sesam-tls": SesamTlsDns01, "lego": LegoDns01}


def clean_env(**extra: str) -> dict[str, str]:
    """The environment every measured tool runs in: none of our settings, and Python's bytecode cache
    on (a session may set PYTHONDONTWRITEBYTECODE; an installed tool runs from cached bytecode, as
    pip compiles it at install: without it sesam-tls, installed editable, would compile its own
    modules at every run while certbot's come compiled; see :func:`compile_sources`)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SESAM_TLS_", "REQUESTS_CA_BUNDLE", "LEGO_", "PEBBLE_", "RFC2136_",
                                "PYTHONDONTWRITEBYTECODE"))}
    env.update(extra)
    return env


def compile_sources() -> None:
    """sesam-tls's bytecode, written before any run is timed, as pip writes it when it installs a
    package (certbot's venv has its own): the first timed run does not pay for compiling."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "src")], check=True,
                   env=clean_env(), stdout=subprocess.DEVNULL)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def make_root(root: Path) -> None:
    """A scratch Sesam node: the agent config from the Sesam guide."""
    (root / "etc/sesam-agent").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "testbed/sesam-agent-config.example.json", root / "etc/sesam-agent/config.json")


def cert_has_names(path: Path, names: list[str]) -> bool:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)) == set(names)


def names_for(tool: str, tag: str, count: int) -> list[str]:
    salt = secrets.token_hex(3)
    return [f"n{i}.{tag}-{salt}.{tool}.example.test" for i in range(count)]


# ---------------------------------------------------------------- measurements 1, 2, 6


def m_issue(clients: dict[str, Client], runs: int, sizes: list[int], size_runs: dict[str, dict[int, int]]) -> dict:
    """Issuance latency (size 1, `runs` times) and scaling (other sizes), interleaved."""
    out: dict = {"latency": {}, "maxrss_mb": {}, "scaling": {}, "failures": {}, "failure_reasons": []}
    per_tool: dict[str, list[Run]] = {t: [] for t in clients}
    for i in range(runs):
        for t, c in clients.items():
            r = c.issue(names_for(t, f"m1r{i}", 1))
            per_tool[t].append(r)
            log(f"m1 run {i + 1}/{runs} {t}: {r.wall:.3f} s, {r.maxrss_kb / 1024:.1f} MB, exit {r.rc}")
            if r.rc != 0:
                log(f"   {t} failed: {r.output[-800:]}")
                out["failure_reasons"].append(f"{t}, 1 name, run {i + 1}: exit {r.rc}: {failure_reason(r)}")
    for t, rs in per_tool.items():
        ok = [r for r in rs if r.rc == 0]
        out["latency"][t] = {**stats([r.wall for r in ok]), "runs": [r.wall for r in rs]}
        out["maxrss_mb"][t] = stats([r.maxrss_kb / 1024 for r in ok])
        out["failures"][t] = len(rs) - len(ok)
        out["scaling"].setdefault(t, {})["1"] = out["latency"][t]
    for size in sizes:
        if size == 1:
            continue
        n = max(size_runs[t].get(size, 0) for t in clients)
        sruns: dict[str, list[Run]] = {t: [] for t in clients}
        for i in range(n):
            for t, c in clients.items():
                if i >= size_runs[t].get(size, 0):
                    continue
                r = c.issue(names_for(t, f"m2s{size}r{i}", size))
                sruns[t].append(r)
                log(f"m2 {size} names run {i + 1} {t}: {r.wall:.3f} s, exit {r.rc}")
                if r.rc != 0:
                    log(f"   {t} failed: {r.output[-800:]}")
                    out["failure_reasons"].append(f"{t}, {size} names, run {i + 1}: exit {r.rc}: {failure_reason(r)}")
        for t in clients:
            rs = sruns[t]
            if not rs:
                out["scaling"][t][str(size)] = {"n": 0, "skipped": True}
                continue
            ok = [r for r in rs if r.rc == 0]
            out["scaling"][t][str(size)] = {**stats([r.wall for r in ok]), "failures": len(rs) - len(ok)}
    return out


# ---------------------------------------------------------------- measurement 3


def m_startup(clients: dict[str, Client], work: Path, runs: int) -> dict:
    cmds: dict[str, tuple[list[str], dict[str, str]]] = {}
    if "sesam-tls" in clients:
        root = work / "startup-sesam"
        make_root(root)
        must(run([SESAM, "issue", "--self-signed", "--domain", "startup.example.test", "--no-restart",
                  "--root", str(root)], env=clean_env()), "sesam-tls issue --self-signed")
        cmds["sesam-tls --help"] = ([SESAM, "--help"], clean_env())
        cmds["sesam-tls --version"] = ([SESAM, "--version"], clean_env())
        cmds["sesam-tls renew (nothing due)"] = ([SESAM, "renew", "--root", str(root)], clean_env())
    if "certbot" in clients:
        cb = clients["certbot"]
        assert isinstance(cb, Certbot)
        d = work / "startup-certbot"
        shutil.copytree(cb.template, d, symlinks=True)  # one certificate: the warm-up one
        cmds["certbot --help"] = ([CERTBOT, "--help"], cb.env())
        cmds["certbot renew (nothing due)"] = (cb.renew_cmd(d), cb.env())
    if "lego" in clients:
        cmds["lego --help"] = ([LEGO, "--help"], clean_env())
    results: dict[str, list[float]] = {k: [] for k in cmds}
    # interleaved: every command once per round
    for i in range(runs + 1):
        for k, (cmd, env) in cmds.items():
            r = must(run(cmd, env=env), k)
            if k.endswith("(nothing due)") and "renew" in k and i == 0:
                log(f"m3 {k}: {r.output.strip().splitlines()[-1] if r.output.strip() else ''}")
            if i > 0:  # round 0 warms the page cache
                results[k].append(r.wall)
    out = {k: stats(v) for k, v in results.items()}
    for k, v in out.items():
        log(f"m3 {k}: median {v['median'] * 1000:.0f} ms")
    return out


# ---------------------------------------------------------------- measurement 4


class LoadGen(threading.Thread):
    """Back-to-back HTTPS GETs, a new TCP+TLS connection each, until stopped
    or `max_requests` / `max_seconds` are reached. Records (start, end, ok)."""

    def __init__(self, port: int, max_requests: int = 50000, max_seconds: float = 60):
        super().__init__(daemon=True)
        self.port, self.max_requests, self.max_seconds = port, max_requests, max_seconds
        self.stop_evt = threading.Event()
        self.records: list[tuple[float, float, bool]] = []
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE

    def one(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as raw:
                with self.ctx.wrap_socket(raw, server_hostname="rotate.example.test") as s:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: rotate.example.test\r\nConnection: close\r\n\r\n")
                    data = b""
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
            return data.startswith(b"HTTP/1.1 200") and b"sesam node" in data
        except (OSError, ssl.SSLError):
            return False

    def run(self) -> None:
        deadline = time.perf_counter() + self.max_seconds
        while not self.stop_evt.is_set() and len(self.records) < self.max_requests:
            if time.perf_counter() >= deadline:
                break
            t0 = time.perf_counter()
            ok = self.one()
            self.records.append((t0, time.perf_counter(), ok))

    def ok_after(self, t: float) -> bool:
        return any(ok and s >= t for s, _, ok in self.records[-50:])


def analyse_load(records: list[tuple[float, float, bool]], t_from: float, t_to: float) -> dict:
    """Failures and the longest time without a successful response, in [t_from, t_to]."""
    window = [r for r in records if r[0] >= t_from and r[1] <= t_to]
    fails = sum(1 for r in window if not r[2])
    ok_ends = [t_from] + [r[1] for r in window if r[2]] + [t_to]
    longest = max(b - a for a, b in zip(ok_ends, ok_ends[1:], strict=False))
    durations = [r[1] - r[0] for r in window if r[2]]
    return {
        "requests": len(window), "failed": fails, "longest_gap_ms": longest * 1000,
        "median_request_ms": statistics.median(durations) * 1000 if durations else None,
    }


def m_rotation(work: Path, docker_host: str, runs: int, load_seconds: float) -> dict:
    client = tb.docker_client(docker_host)
    containers = tb.NginxContainers(client, work)
    root = work / "rotation-root"
    make_root(root)
    must(run([SESAM, "issue", "--self-signed", "--domain", "rotate.example.test", "--no-restart",
              "--root", str(root)], env=clean_env()), "self-signed issue for the rotation node")
    name = CONTAINER_PREFIX + "rotate-" + secrets.token_hex(3)
    out: dict = {"reload": [], "restart": [], "idle": []}
    try:
        containers(root / "sesam/nginx/conf/ssl", ROTATE_HTTPS_PORT, name=name)
        modes = ["idle", "reload", "restart"]
        for i in range(runs):
            for mode in modes:
                load = LoadGen(ROTATE_HTTPS_PORT, max_seconds=load_seconds + 30)
                load.start()
                time.sleep(load_seconds / 2)
                t_from = time.perf_counter() - load_seconds / 2
                if mode == "idle":  # the same window with no deployment: the baseline
                    time.sleep(0.3)
                    r = Run(0.0, 0, 0, "")
                else:
                    r = run([SESAM, "issue", "--self-signed", "--domain", f"rotate{i}-{mode}.example.test",
                             "--container", name, "--docker-host", docker_host, "--root", str(root),
                             "--reload-mode", mode], env=clean_env())
                t_done = time.perf_counter()
                # keep loading until nginx answered again, then half the window more
                deadline = t_done + 15
                while not load.ok_after(t_done) and time.perf_counter() < deadline:
                    time.sleep(0.01)
                time.sleep(load_seconds / 2)
                load.stop_evt.set()
                load.join()
                t_to = load.records[-1][1] if load.records else time.perf_counter()
                res = analyse_load(load.records, t_from, t_to)
                res["deploy_s"] = r.wall
                res["exit"] = r.rc
                if r.rc != 0:
                    log(f"   deploy failed: {r.output[-800:]}")
                if mode != "idle":
                    served = tb.served_cert_der("127.0.0.1", ROTATE_HTTPS_PORT)
                    res["serves_new_cert"] = served == pem_leaf_der(root / "sesam/nginx/conf/ssl/fullchain.pem")
                out[mode].append(res)
                log(f"m4 run {i + 1} {mode}: {res['requests']} requests, {res['failed']} failed, "
                    f"longest gap {res['longest_gap_ms']:.1f} ms, deploy {r.wall:.2f} s, exit {r.rc}")
    finally:
        containers.cleanup()
    summary = {}
    for mode, rs in out.items():
        summary[mode] = {
            "runs": rs,
            "failed_total": sum(r["failed"] for r in rs),
            "requests_total": sum(r["requests"] for r in rs),
            "longest_gap_ms": stats([r["longest_gap_ms"] for r in rs]),
            "deploy_s": stats([r["deploy_s"] for r in rs]) if mode != "idle" else None,
            "all_serve_new_cert": all(r.get("serves_new_cert", True) for r in rs),
            "all_exit_0": all(r["exit"] == 0 for r in rs),
        }
    return summary


def pem_leaf_der(path: Path) -> bytes:
    text = path.read_text()
    first = text[: text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    return ssl.PEM_cert_to_DER_cert(first)


# ---------------------------------------------------------------- measurement 5


class PortProbe(threading.Thread):
    """Every `interval` s: connect to 127.0.0.1:port, GET /, classify the answer:
    'nginx' (the site), 'other' (any other HTTP answer, e.g. the HTTP-01
    responder's 404), 'none' (refused, reset, timeout)."""

    def __init__(self, port: int, interval: float = 0.002):
        super().__init__(daemon=True)
        self.port, self.interval = port, interval
        self.stop_evt = threading.Event()
        self.records: list[tuple[float, str]] = []

    def one(self) -> str:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"GET / HTTP/1.0\r\nHost: probe.example.test\r\n\r\n")
                s.settimeout(0.5)
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
        except OSError:
            return "none"
        if not data.startswith(b"HTTP/"):
            return "none"
        return "nginx" if b"sesam node (http)" in data else "other"

    def run(self) -> None:
        deadline = time.perf_counter() + 120
        while not self.stop_evt.is_set() and time.perf_counter() < deadline:
            t = time.perf_counter()
            self.records.append((t, self.one()))
            time.sleep(self.interval)


def analyse_probe(records: list[tuple[float, str]]) -> dict:
    silent = 0.0
    longest = 0.0
    streak_start = None
    first_not_nginx = last_not_nginx_next = None
    for (t, kind), _nxt in zip(records, records[1:] + [(records[-1][0], records[-1][1])], strict=True):
        if kind == "none":
            if streak_start is None:
                streak_start = t
        elif streak_start is not None:
            silent += t - streak_start
            longest = max(longest, t - streak_start)
            streak_start = None
        if kind != "nginx":
            if first_not_nginx is None:
                first_not_nginx = t
        elif first_not_nginx is not None and last_not_nginx_next is None:
            last_not_nginx_next = t
    not_nginx = (last_not_nginx_next - first_not_nginx) if first_not_nginx and last_not_nginx_next else None
    return {
        "probes": len(records),
        "silent_ms": silent * 1000,
        "longest_silence_ms": longest * 1000,
        "nginx_absent_ms": not_nginx * 1000 if not_nginx is not None else None,
        "answers": {k: sum(1 for _, x in records if x == k) for k in ("nginx", "other", "none")},
    }


def m_stop_nginx(work: Path, docker_host: str, pebble: tb.Pebble, runs: int, *, mounted: bool = False) -> dict:
    """Port 80 while sesam-tls issues: with ``--http01 stop-nginx`` (the container is stopped), or
    (``mounted``) with ``--http01 auto`` on a container that serves /.well-known/acme-challenge/
    from a folder mounted from the host, as an nginx set up for certbot does: auto answers there."""
    client = tb.docker_client(docker_host)
    containers = tb.NginxContainers(client, work)
    tag = "mounted" if mounted else "stopnginx"
    root = work / f"{tag}-root"
    make_root(root)
    webroot = work / f"{tag}-acme-webroot"
    webroot.mkdir()
    must(run([SESAM, "issue", "--self-signed", "--domain", "stop.example.test", "--no-restart",
              "--root", str(root)], env=clean_env()), "self-signed issue for the stop-nginx node")
    name = CONTAINER_PREFIX + "port80-" + secrets.token_hex(3)
    results = []
    try:
        containers(root / "sesam/nginx/conf/ssl", STOPNGINX_HTTPS_PORT, http_port=HTTP01_PORT, name=name,
                   acme_webroot=webroot if mounted else None)
        tb.wait_port(HTTP01_PORT)
        for i in range(runs):
            probe = PortProbe(HTTP01_PORT)
            probe.start()
            time.sleep(0.2)
            r = run([SESAM, "issue", "--domain", f"stop{i}-{secrets.token_hex(3)}.example.test",
                     "--server", pebble.directory, "--ca-bundle", pebble.ca_bundle, "--email", EMAIL,
                     "--agree-tos", "--replace", "--http01", "auto" if mounted else "stop-nginx",
                     "--http-port", str(HTTP01_PORT),
                     "--http-address", "127.0.0.1", "--container", name, "--docker-host", docker_host,
                     "--root", str(root)], env=clean_env())
            t_done = time.perf_counter()
            # nginx must answer again before the window closes
            deadline = t_done + 15
            while time.perf_counter() < deadline and not any(
                    k == "nginx" and t >= t_done for t, k in probe.records[-20:]):
                time.sleep(0.01)
            time.sleep(0.2)
            probe.stop_evt.set()
            probe.join()
            res = analyse_probe(probe.records)
            res["issue_s"] = r.wall
            res["exit"] = r.rc
            if r.rc != 0:
                log(f"   stop-nginx issue failed: {r.output[-1500:]}")
            results.append(res)
            log(f"m5 {tag} run {i + 1}: silent {res['silent_ms']:.0f} ms (longest {res['longest_silence_ms']:.0f} ms), "
                f"nginx absent {res['nginx_absent_ms']} ms, issue {r.wall:.2f} s, exit {r.rc}")
    finally:
        containers.cleanup()
    ok = [r for r in results if r["exit"] == 0]
    return {
        "runs": results,
        "silent_ms": stats([r["silent_ms"] for r in ok]),
        "longest_silence_ms": stats([r["longest_silence_ms"] for r in ok]),
        "nginx_absent_ms": stats([r["nginx_absent_ms"] for r in ok if r["nginx_absent_ms"] is not None]),
        "issue_s": stats([r["issue_s"] for r in ok]),
        "failures": len(results) - len(ok),
    }


# ---------------------------------------------------------------- measurements 8, 9, 10 (issue 16)


def m_imports(clients: dict[str, Client], work: Path) -> dict:
    """What each sesam-tls verb imports (``-X importtime``, self time summed by top-level package)."""
    sys.path.insert(0, str(REPO / "bench"))
    from imports import import_table

    c = clients["sesam-tls"]
    issue_dir = c.fresh()
    issue_cmd, env = c.issue_cmd(issue_dir, names_for("sesam-tls", "imports", 1))
    root = work / "imports-root"
    make_root(root)
    must(run([SESAM, "issue", "--self-signed", "--domain", "imports.example.test", "--no-restart",
              "--root", str(root)], env=clean_env()), "sesam-tls issue --self-signed (imports)")
    cmds = {
        "issue (1 name, ACME)": issue_cmd,
        "renew (nothing due)": [SESAM, "renew", "--root", str(root)],
        "status": [SESAM, "status", "--root", str(root)],
        "--help": [SESAM, "--help"],
        "--version": [SESAM, "--version"],
    }
    out = {}
    for verb, cmd in cmds.items():
        table, total, modules, rc = import_table(cmd, env if verb.startswith("issue") else clean_env())
        out[verb] = {"total_ms": total, "modules": modules, "exit": rc,
                     "packages": {k: {"modules": n, "ms": ms} for k, (n, ms) in table.items()}}
        log(f"m8 {verb}: {total:.0f} ms of imports, {modules} modules, exit {rc}")
    c.discard(issue_dir)
    return out


def m_warm(pebble: tb.Pebble, work: Path, runs: int) -> dict:
    """A warm in-process issuance (bench/warm.py): wall, the CA's own time, ours."""
    root = work / "warm-root"
    make_root(root)
    r = must(run([str(REPO / ".venv/bin/python"), str(REPO / "bench/warm.py"), "--server", pebble.directory,
                  "--ca-bundle", pebble.ca_bundle, "--http-port", str(HTTP01_PORT), "--root", str(root),
                  "--runs", str(runs)], env=clean_env()), "bench/warm.py")
    data = json.loads(r.output.strip().splitlines()[-1])
    out = {k: stats(data[k]) for k in ("wall", "ca", "own", "cpu")}
    log(f"m9 warm in-process issuance: {out['wall']['median'] * 1000:.0f} ms, CA "
        f"{out['ca']['median'] * 1000:.0f} ms, own {out['own']['median'] * 1000:.0f} ms")
    # the same with 10 names: where the extra names' time goes (our CPU, or waiting on the CA)
    r = must(run([str(REPO / ".venv/bin/python"), str(REPO / "bench/warm.py"), "--server", pebble.directory,
                  "--ca-bundle", pebble.ca_bundle, "--http-port", str(HTTP01_PORT), "--root", str(root),
                  "--runs", str(max(3, runs // 2)), "--names", "10"], env=clean_env()), "bench/warm.py --names 10")
    data = json.loads(r.output.strip().splitlines()[-1])
    out["ten"] = {k: stats(data[k]) for k in ("wall", "cpu")}
    log(f"m9 warm, 10 names: {out['ten']['wall']['median'] * 1000:.0f} ms, CPU "
        f"{out['ten']['cpu']['median'] * 1000:.0f} ms")
    return out


def m_wire(sizes: str) -> dict:
    """Requests, nonce HEADs and connections per issuance (bench/wire.py: a Pebble of its own)."""
    r = must(run([str(REPO / ".venv/bin/python"), str(REPO / "bench/wire.py"), "--json", "--sizes", sizes],
                 env=clean_env()), "bench/wire.py")
    rows = json.loads(r.output.strip().splitlines()[-1])
    for row in rows:
        log(f"m10 {row['names']} names: {row.get('HEAD', 0)} nonce HEADs, {row.get('connections', 0)} connections")
    return {"rows": rows}


# ---------------------------------------------------------------- measurement 12: acme2certifier

A2C_PYTHON = REPO / "bench" / ".venv-a2c" / "bin" / "python"
#: What the HTTP-01 ``issue`` path imports, for the floor: start the interpreter, import these, exit.
ISSUE_IMPORTS = ("sesam_tls.cli, sesam_tls.cli.issue, sesam_tls.api, sesam_tls.providers.acme, "
                 "sesam_tls.http01, acme.client, acme.messages, acme.challenges, josepy, requests, "
                 "cryptography.x509, cryptography.hazmat.primitives.asymmetric.ec")


def start_a2c(work: Path, dns_server: str) -> tuple[subprocess.Popen, str]:
    """acme2certifier on a free port of 127.0.0.1 (bench/a2c_launcher.py); its directory URL."""
    d = work / "a2c-server"
    must(run(["bash", str(REPO / "bench" / "a2c_setup.sh"), str(d)]), "bench/a2c_setup.sh")
    port = tb.free_port()
    env = clean_env(A2C_PORT=str(port), A2C_HTTP_PORT=str(HTTP01_PORT), A2C_DNS=dns_server,
                    ACME_SRV_CONFIGFILE=str(d / "acme_srv.cfg"))
    with open(d / "server.log", "wb") as logf:
        proc = subprocess.Popen([str(A2C_PYTHON), str(REPO / "bench" / "a2c_launcher.py")], env=env, cwd=d,
                                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    tb.wait_port(port)
    return proc, f"http://127.0.0.1:{port}/directory"


def m_a2c(tools: list[str], work: Path, pebble: tb.Pebble, state_dir: Path, runs: int) -> dict:
    import dataclasses

    ports = dict(line.split("=", 1) for line in
                 (state_dir / "pebble" / PEBBLE_INSTANCE / "ports.env").read_text().split())
    proc, directory = start_a2c(work, ports["DNS_SERVER"])
    try:
        a2c = dataclasses.replace(pebble, name="acme2certifier", directory=directory)
        clients = {t: CLIENTS[t](work / "a2c", a2c) for t in tools}
        for t, c in clients.items():
            log(f"a2c: preparing {t} (account + warm-up certificate)")
            c.prepare()
        out = m_issue(clients, runs, [1], {t: {1: 1} for t in tools})
        root = work / "a2c-warm"
        make_root(root)
        r = must(run([str(REPO / ".venv/bin/python"), str(REPO / "bench/warm.py"), "--server", directory,
                      "--http-port", str(HTTP01_PORT), "--root", str(root), "--runs", str(max(3, runs))],
                     env=clean_env()), "bench/warm.py against acme2certifier")
        warm = json.loads(r.output.strip().splitlines()[-1])
        out["warm"] = {k: stats(warm[k]) for k in ("wall", "ca", "own")}
        imports = [must(run([str(REPO / ".venv/bin/python"), "-c", f"import {ISSUE_IMPORTS}"], env=clean_env()),
                        "import the issue path").wall for _ in range(max(3, runs))]
        out["import_s"] = stats(imports)
        out["floor_s"] = out["import_s"]["median"] + out["warm"]["ca"]["median"]
        version = subprocess.run([str(A2C_PYTHON), "-c", "import importlib.metadata as m; "
                                  "print(m.version('acme2certifier'))"], capture_output=True, text=True)
        out["version"] = version.stdout.strip()
        log(f"a2c: sesam-tls {out['latency'].get('sesam-tls', {}).get('median')}, lego "
            f"{out['latency'].get('lego', {}).get('median')}, floor {out['floor_s']:.3f} s")
        return out
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def a2c_report(m: dict) -> list[str]:
    tools = list(m["latency"])
    n = max(v.get("n", 0) for v in m["latency"].values())
    lines = [f"## 12. A second ACME server: acme2certifier {m.get('version', '')}", "",
             "acme2certifier from PyPI in its own venv (bench/.venv-a2c), its WSGI app under `wsgiref` on "
             "127.0.0.1 (bench/a2c_launcher.py: one request at a time, sqlite, `openssl_ca_handler` with a CA "
             "made by `openssl req -x509`); its HTTP-01 validation goes to the benchmark's HTTP-01 port instead "
             "of 80 and its DNS to our Pebble's challtestsrv, the two changes the launcher makes. One name, "
             f"new key, existing account, tools interleaved, {n} runs each.", "",
             "| tool | wall time | failed runs |", "| --- | --- | --- |"]
    for t in tools:
        lines.append(f"| {t} | {fmt_stat(m['latency'][t])} | {m['failures'][t]} |")
    w = m["warm"]
    lines += ["", "The stack's floor for sesam-tls: a process that starts Python and imports what `issue` imports "
              f"(and does nothing) takes {fmt_stat(m['import_s'])}; the CA's own time in one issuance (wall time "
              f"inside HTTP requests to it plus the waits between polls, in a warm process) is {fmt_stat(w['ca'])}. "
              f"Floor: **{fmt_s(m['floor_s'])}**.", ""]
    s, lg = m["latency"].get("sesam-tls", {}), m["latency"].get("lego", {})
    if s.get("n"):
        lines.append(f"- sesam-tls: {fmt_s(s['median'])}, {s['median'] - m['floor_s']:+.3f} s from the floor "
                     f"({s['median'] / m['floor_s']:.2f}× it)")
    if s.get("n") and lg.get("n"):
        lines.append(f"- sesam-tls / lego: {s['median'] / lg['median']:.2f}×; the floor alone is "
                     f"{m['floor_s'] / lg['median']:.2f}× lego's time")
    lines.append(f"- warm in-process issuance against it: {fmt_stat(w['wall'])}, of which the CA {fmt_stat(w['ca'])}")
    return lines + [""]


# ---------------------------------------------------------------- the goals of issue 16


def goals(res: dict) -> list[tuple[str, str, str]]:
    """(goal, measured, verdict) for each goal of issue 16 that this run measured or could not."""
    rows: list[tuple[str, str, str]] = []
    m1, m3 = res.get("issue") or {}, res.get("startup") or {}
    lat = m1.get("latency", {})
    s, cb = lat.get("sesam-tls", {}), lat.get("certbot", {})
    if s.get("n") and cb.get("n"):
        x = cb["median"] / s["median"]
        rows.append(("one name on Pebble ≥ 12× faster than certbot", f"{x:.1f}× ({fmt_s(s['median'])} vs "
                     f"{fmt_s(cb['median'])})", "met" if x >= 12 else
                     "not met: the stack's imports alone take most of sesam-tls's time (table 8)"))
    else:
        rows.append(("one name on Pebble ≥ 12× faster than certbot", "certbot not run", "not measured"))
    a2c = res.get("a2c") or {}
    al, ll = a2c.get("latency", {}).get("sesam-tls", {}), a2c.get("latency", {}).get("lego", {})
    if al.get("n") and ll.get("n"):
        x = al["median"] / ll["median"]
        rows.append(("acme2certifier: within 1.5× of lego", f"{x:.2f}× lego's time ({fmt_s(al['median'])} vs "
                     f"{fmt_s(ll['median'])})", "met" if x <= 1.5 else "not met: see the floor in its section"))
        if x > 1.5:
            floor = a2c["floor_s"] / ll["median"]
            rows[-1] = (rows[-1][0], rows[-1][1] + f"; the floor (imports + the CA's time) is {floor:.2f}× lego's",
                        "not met: " + ("the floor itself is above 1.5× lego's time" if floor > 1.5
                                       else "above the floor by what table 12 shows"))
    else:
        rows.append(("acme2certifier: within 1.5× of lego", "not run", "not measured in this run"))
    sc = m1.get("scaling", {}).get("sesam-tls", {})
    if sc.get("1", {}).get("n") and sc.get("10", {}).get("n"):
        x = sc["10"]["median"] / sc["1"]["median"]
        why = "not met"
        w9 = res.get("warm") or {}
        if "ten" in w9 and "cpu" in w9:
            extra = w9["ten"]["wall"]["median"] - w9["wall"]["median"]
            cpu = w9["ten"]["cpu"]["median"] - w9["cpu"]["median"]
            allowed = sc["1"]["median"] * 0.2
            ten = sc["10"]
            why = (f"not met: warm (table 9) the 9 extra names add {extra * 1000:.0f} ms, of which "
                   f"{cpu * 1000:.0f} ms our CPU (signing, TLS, checks) and {(extra - cpu) * 1000:.0f} ms "
                   f"waiting on the CA; 1.2× allows {allowed * 1000:.0f} ms")
            if extra <= allowed:
                why += (f", so the cost per name is within it and the fresh processes' spread decides "
                        f"(10 names: {fmt_s(ten['min'])}–{fmt_s(ten['max'])} in {ten['n']} runs)")
        rows.append(("10 names ≤ 1.2× the one-name time", f"{x:.2f}× ({fmt_s(sc['10']['median'])} vs "
                     f"{fmt_s(sc['1']['median'])})", "met" if x <= 1.2 else why))
    wire = {str(r["names"]): r for r in (res.get("wire") or {}).get("rows", [])}
    if "10" in wire:
        w = wire["10"]
        rows.append(("no more TLS handshakes than connections needed; nonces from answers",
                     f"10 names: {plural(w.get('connections', 0), 'connection')}, "
                     f"{plural(w.get('HEAD', 0), 'nonce HEAD')} "
                     f"(before: 12 and 11)", "met" if w.get("connections", 99) <= 4 else "not met"))
    for cmd, goal_ms in (("sesam-tls --help", 50), ("sesam-tls --version", 50), ("sesam-tls renew (nothing due)", 80)):
        v = m3.get(cmd, {})
        if v.get("n"):
            ms = v["median"] * 1000
            rows.append((f"`{cmd.removeprefix('sesam-tls ')}` ≤ {goal_ms} ms", f"{ms:.0f} ms",
                         "met" if ms <= goal_ms else "not met: " + (
                             "the per-verb parser is another branch's work (every verb's parser is built)"
                             if "help" in cmd or "version" in cmd else
                             "its imports (cryptography, sesam_tls's own modules: table 8) exceed the budget")))
    w9 = res.get("warm")
    if w9:
        own = w9["own"]["median"]
        rows.append(("`renew --loop` (warm, in-process): < 0.1 s beyond the CA's own time",
                     f"{fmt_s(w9['wall']['median'])}, of which the CA {fmt_s(w9['ca']['median'])}: "
                     f"{fmt_s(own)} beyond", "met" if own < 0.1 else "not met"))
    mw, sn = res.get("mounted_webroot"), res.get("stop_nginx")
    if mw and mw.get("silent_ms", {}).get("n"):
        silent = mw["silent_ms"]["median"]
        rows.append(("port 80 never silent (nginx serving the challenge folder mounted from the host)",
                     f"{silent:.0f} ms silent per issuance (stop-nginx: "
                     f"{sn['silent_ms']['median']:.0f} ms)" if sn and sn.get("silent_ms", {}).get("n")
                     else f"{silent:.0f} ms", "met" if silent == 0 else "not met"))
    return rows


def imports_report(m8: dict) -> list[str]:
    lines = ["## 8. What each verb imports", "",
             "`PYTHONPROFILEIMPORTTIME=1` (`python -X importtime`) on one run of each command; each module's "
             "self time added to its top-level package (bench/imports.py). One run: the numbers move by "
             "10-20 % between runs on a shared machine.", "",
             "| command | imports | modules | the biggest packages (ms, modules) |", "| --- | --- | --- | --- |"]
    for verb, v in m8.items():
        pk = sorted(v["packages"].items(), key=lambda kv: -kv[1]["ms"])[:8]
        biggest = ", ".join(f"{k} {x['ms']:.0f} ({x['modules']})" for k, x in pk)
        lines.append(f"| `{verb}` | {v['total_ms']:.0f} ms | {v['modules']} | {biggest} |")
    return lines + [""]


# ---------------------------------------------------------------- measurement 7: DNS-01


def dns01_settings(tools: list[str]) -> dict[str, str]:
    """How each tool puts the record and decides it is visible: said in the report."""
    out = {}
    if "sesam-tls" in tools:
        out["sesam-tls"] = ("`--challenge dns-01 --dns-server 127.0.0.1:PORT --dns-tsig-name test-key "
                            "--dns-tsig-file FILE`; its default propagation check: it asks the --dns-server "
                            "(the zone's authoritative server here) until the value is served, polling from "
                            "20 ms up (timeout 120 s)")
    if "lego" in tools:
        out["lego"] = (f"`--dns rfc2136 --dns.disable-cp --dns.resolvers 127.0.0.1:PORT` with RFC2136_NAMESERVER, "
                       f"RFC2136_TSIG_KEY/_SECRET/_ALGORITHM=hmac-sha256, RFC2136_POLLING_INTERVAL="
                       f"{LEGO_DNS_INTERVAL} and RFC2136_SEQUENCE_INTERVAL={LEGO_DNS_INTERVAL} (lego's defaults: "
                       "2 s before each name's check and 60 s between names, which it solves one after "
                       "another); no propagation check: lego's looks the zone's NS host name up through the "
                       "system resolver and asks it on port 53, which cannot work on loopback")
    return out


def m_dns01(clients: dict[str, Client], knot: tb.Knot, runs: dict[int, int]) -> dict:
    """DNS-01 issuance with RFC 2136 for each size (runs[size] times), tools interleaved; after
    every run the benchmark asks knotd whether a TXT value of that run was left behind."""
    out: dict = {"tools": list(clients), "sizes": {}, "records_left": {t: 0 for t in clients},
                 "failure_reasons": [], "settings": dns01_settings(list(clients)), "knot_port": knot.port}
    for size, n in runs.items():
        per_tool: dict[str, list[Run]] = {t: [] for t in clients}
        for i in range(n):
            for t, c in clients.items():
                names = names_for(t, f"dns{size}r{i}", size)
                r = c.issue(names)
                left = sum(len(knot.txt(f"_acme-challenge.{x}")) for x in names)
                out["records_left"][t] += left
                per_tool[t].append(r)
                log(f"dns-01 {size} names run {i + 1}/{n} {t}: {r.wall:.3f} s, exit {r.rc}, "
                    f"{left} TXT values left")
                if r.rc != 0:
                    log(f"   {t} failed: {r.output[-800:]}")
                    out["failure_reasons"].append(f"{t}, DNS-01, {size} names, run {i + 1}: exit {r.rc}: "
                                                  f"{failure_reason(r)}")
        out["sizes"][str(size)] = {}
        for t, rs in per_tool.items():
            ok = [r for r in rs if r.rc == 0]
            out["sizes"][str(size)][t] = {**stats([r.wall for r in ok]), "failures": len(rs) - len(ok),
                                          "runs": [r.wall for r in rs],
                                          "maxrss_mb": stats([r.maxrss_kb / 1024 for r in ok])}
    return out


# ---------------------------------------------------------------- machine facts and report


def machine_facts(clients: dict[str, Client]) -> dict:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass

    def deb(pkg: str) -> str:
        p = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True, text=True)
        return p.stdout.strip() or "?"

    os_name = "?"
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    facts = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "os": os_name,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "pebble": deb("pebble"),
        "nginx": deb("nginx"),
        "knot": deb("knot"),
        "tools": {t: c.version() for t, c in clients.items()},
        "loadavg_start": loadavg(),
    }
    return facts


def busy(facts: dict) -> bool:
    try:
        loads = [float(x) for k in ("loadavg_start", "loadavg_end") for x in facts.get(k, "").split()[:1]]
    except ValueError:
        return False
    return bool(loads) and max(loads) > (facts.get("nproc") or 1)


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def fmt_s(v: Optional[float]) -> str:
    if v is None:
        return "–"
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s"


def fmt_stat(s: dict, unit: str = "s") -> str:
    if not s or not s.get("n"):
        return "not run"
    if unit == "s":
        return f"{fmt_s(s['median'])} ({fmt_s(s['min'])}–{fmt_s(s['max'])})"
    if unit == "ms":
        return f"{s['median']:.0f} ms ({s['min']:.0f}–{s['max']:.0f})"
    return f"{s['median']:.0f} {unit} ({s['min']:.0f}–{s['max']:.0f})"


def ratio(a: dict, b: dict) -> str:
    if not a.get("n") or not b.get("n") or not a["median"]:
        return "–"
    return f"{b['median'] / a['median']:.1f}×"


def write_report(res: dict, out: Path, chart: Optional[str]) -> Path:
    f = res["machine"]
    lines = ["# sesam-tls benchmarks", ""]
    if res["smoke"]:
        lines += ["**Smoke run** (one iteration each: the numbers mean nothing).", ""]
    lines += [
        "Taken by `make bench` (bench/bench.py) on one machine, against one local Pebble "
        f"(`PEBBLE_VA_NOSLEEP=1 PEBBLE_AUTHZREUSE=0 PEBBLE_WFE_NONCEREJECT={res.get('nonce_reject', 0)}`, HTTP-01 on 127.0.0.1:{HTTP01_PORT}); "
        "the tools run interleaved (A B C A B C ...). Wall time is `time.perf_counter()` around each "
        "process; memory is the process's max RSS (`wait4`). Values: median (min–max).",
        "",
        f"Pebble rejects {res.get('nonce_reject', 0)}% of nonces (`PEBBLE_WFE_NONCEREJECT`; Pebble's default is 5%, "
        "under which certbot failed most 50- and 100-name runs with `badNonce`; "
        "`bench/bench.py --nonce-reject 5` shows it).",
        "",
        "## Machine",
        "",
        f"- date: {f['date']}",
        f"- CPU: {f['cpu']}, nproc {f['nproc']}, memory {f['memory']}",
        f"- OS: {f['os']}, kernel {f['kernel']}, Python {f['python']}",
        f"- Pebble {f['pebble']} (Debian), nginx {f['nginx']} (Debian binary in the test image)",
        "- tools: " + "; ".join(f"{v}" for v in f["tools"].values()),
        f"- load average (1/5/15 min) at start {f.get('loadavg_start', '?')}, at end {f.get('loadavg_end', '?')}; "
        f"whole run {res.get('elapsed_s', 0):.0f} s",
    ]
    if busy(f):
        lines += ["", "**The machine was busy during this run** (load average above the number of CPUs: other "
                  "work ran beside the benchmark). Absolute times are inflated; the ratios still compare like "
                  "with like, since the tools ran interleaved."]
    lines.append("")
    rows = goals(res)
    if rows:
        lines += ["## Goals (issue 16)", "", "| goal | measured | |", "| --- | --- | --- |"]
        lines += [f"| {g} | {m} | {v} |" for g, m, v in rows] + [""]
    tools = list(res["tools"])
    m1 = res.get("issue")
    if m1:
        n_runs = max(v.get("n", 0) for v in m1["latency"].values())
        lines += [f"## 1. Issuance latency (one name, new key, existing account; {n_runs} runs each)", ""]
        head = "| tool | wall time | peak memory (max RSS) | failed runs |"
        lines += [head, "| --- | --- | --- | --- |"]
        for t in tools:
            lines.append(f"| {t} | {fmt_stat(m1['latency'][t])} | {fmt_stat(m1['maxrss_mb'][t], 'MB')} | "
                         f"{m1['failures'][t]} |")
        lines.append("")
        if "sesam-tls" in tools and len(tools) > 1:
            for t in tools:
                if t == "sesam-tls":
                    continue
                lines.append(f"- sesam-tls vs {t}: {ratio(m1['latency']['sesam-tls'], m1['latency'][t])} faster "
                             f"(median wall time); peak memory {ratio(m1['maxrss_mb'][t], m1['maxrss_mb']['sesam-tls'])}"
                             f" {t}'s")
            lines.append("")
        lines += ["## 2. Scaling with the number of names on one certificate", ""]
        sizes = sorted({int(s) for t in tools for s in m1["scaling"][t]})
        lines += ["| names | " + " | ".join(tools) + " |", "| --- |" + " --- |" * len(tools)]
        for s in sizes:
            row = []
            for t in tools:
                v = m1["scaling"][t].get(str(s), {})
                cell = f"{fmt_stat(v)}, n={v['n']}" if v.get("n") else "not run (see note)"
                if v.get("failures"):
                    cell += f", {v['failures']} failed"
                row.append(cell)
            lines.append(f"| {s} | " + " | ".join(row) + " |")
        lines.append("")
        if res.get("notes", {}).get("scaling"):
            lines += [res["notes"]["scaling"], ""]
        if m1.get("failure_reasons"):
            lines += ["Failed runs (left out of the numbers above):", ""]
            lines += [f"- {x}" for x in m1["failure_reasons"]] + [""]
    m3 = res.get("startup")
    if m3:
        lines += ["## 3. Start-up", "", "| command | wall time |", "| --- | --- |"]
        for k, v in m3.items():
            lines.append(f"| `{k}` | {fmt_stat(v)} |")
        lines.append("")
        pairs = [("sesam-tls --help", "certbot --help"), ("sesam-tls renew (nothing due)", "certbot renew (nothing due)")]
        for a, b in pairs:
            if a in m3 and b in m3:
                lines.append(f"- `{a}` vs `{b}`: {ratio(m3[a], m3[b])} faster")
        lines.append("")
    m4 = res.get("rotation")
    if m4:
        lines += [
            "## 4. Rotation cost for clients",
            "",
            f"A load generator makes back-to-back HTTPS requests (a new TCP and TLS connection each, "
            f"`Connection: close`) to the nginx container on 127.0.0.1:{ROTATE_HTTPS_PORT} while "
            "`sesam-tls issue --self-signed --container NAME --reload-mode MODE` deploys a new pair; "
            "`idle` is the same window without a deployment. The gap is the longest time between two "
            "successful responses in the window.",
            "",
            "| mode | runs | requests | failed | longest gap | deploy (sesam-tls wall) | new cert served |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for mode in ("idle", "reload", "restart"):
            v = m4[mode]
            lines.append(f"| {mode} | {len(v['runs'])} | {v['requests_total']} | {v['failed_total']} | "
                         f"{fmt_stat(v['longest_gap_ms'], 'ms')} | "
                         f"{fmt_stat(v['deploy_s']) if v['deploy_s'] else '–'} | "
                         f"{'–' if mode == 'idle' else ('yes' if v['all_serve_new_cert'] else 'NO')} |")
        lines.append("")
    m5 = res.get("stop_nginx")
    if m5:
        lines += [
            "## 5. Port-80 downtime of `--http01 stop-nginx`",
            "",
            f"nginx holds the HTTP-01 port ({HTTP01_PORT} here, 80 on a node); `sesam-tls issue --http01 "
            "stop-nginx` stops the container, answers the challenge itself, and starts nginx again. "
            "A probe connects every ~2 ms and sends `GET /`.",
            "",
            "| what | value |",
            "| --- | --- |",
            f"| port answered nothing (total per issuance) | {fmt_stat(m5['silent_ms'], 'ms')} |",
            f"| longest silence | {fmt_stat(m5['longest_silence_ms'], 'ms')} |",
            f"| the site (nginx) not answering, stop to back | {fmt_stat(m5['nginx_absent_ms'], 'ms')} |",
            f"| whole issuance incl. restart (wall) | {fmt_stat(m5['issue_s'])} |",
            f"| failed runs | {m5['failures']} of {len(m5['runs'])} |",
            "",
        ]
    mw = res.get("mounted_webroot")
    if mw:
        lines += [
            "### Port 80 with nginx serving the challenge folder (`--http01 auto`)",
            "",
            "The same probe, with an nginx container that serves `/.well-known/acme-challenge/` from a folder "
            "mounted from the host (as an nginx set up for certbot does): `auto` finds the folder among the "
            "container's mounts, proves it with a probe file and answers there; nothing is stopped.",
            "",
            "| what | mounted folder (`auto`) | `stop-nginx` |",
            "| --- | --- | --- |",
            f"| port answered nothing (total per issuance) | {fmt_stat(mw['silent_ms'], 'ms')} | "
            f"{fmt_stat((m5 or {}).get('silent_ms', {}), 'ms')} |",
            f"| longest silence | {fmt_stat(mw['longest_silence_ms'], 'ms')} | "
            f"{fmt_stat((m5 or {}).get('longest_silence_ms', {}), 'ms')} |",
            f"| whole issuance incl. deployment (wall) | {fmt_stat(mw['issue_s'])} | "
            f"{fmt_stat((m5 or {}).get('issue_s', {}))} |",
            f"| failed runs | {mw['failures']} of {len(mw['runs'])} | "
            f"{(m5 or {}).get('failures', '–')} of {len((m5 or {}).get('runs', []))} |",
            "",
        ]
    if res.get("imports"):
        lines += imports_report(res["imports"])
    w9 = res.get("warm")
    if w9:
        lines += ["## 9. A warm in-process issuance (`renew --loop`)", "",
                  "bench/warm.py: one process issues once (imports, account), then again and again through "
                  "`sesam_tls.issue` (ACME exchange, checks, files, state; no container). The CA's own time "
                  "is the wall time inside HTTP requests to it plus the waits between polls.", "",
                  "| | median (min–max) |", "| --- | --- |",
                  f"| whole issuance | {fmt_stat(w9['wall'])} |", f"| the CA's own time | {fmt_stat(w9['ca'])} |",
                  f"| sesam-tls's own time | {fmt_stat(w9['own'])} |"]
        if "cpu" in w9:
            lines.append(f"| sesam-tls's CPU time (every thread) | {fmt_stat(w9['cpu'])} |")
        if "ten" in w9:
            lines += [f"| 10 names: whole issuance | {fmt_stat(w9['ten']['wall'])} |",
                      f"| 10 names: sesam-tls's CPU time | {fmt_stat(w9['ten']['cpu'])} |"]
        lines.append("")
    w10 = res.get("wire")
    if w10:
        lines += ["## 10. On the wire", "",
                  "bench/wire.py, in process, a Pebble of its own: requests counted by wrapping "
                  "`requests.Session.send`, connections (each a TLS handshake) by wrapping urllib3's "
                  "`HTTPConnection._new_conn`; a HEAD is a nonce fetch. Before issue 16 (commit 9779822): "
                  "1 name 9 requests, 1 HEAD, 2 connections; 10 names 37, 11, 12; 100 names 226, 17, 18.", "",
                  "| names | requests | nonce HEADs | connections | in-process |", "| --- | --- | --- | --- | --- |"]
        for row in w10["rows"]:
            total = sum(v for k, v in row.items() if k.isupper())
            lines.append(f"| {row['names']} | {total} | {row.get('HEAD', 0)} | {row.get('connections', 0)} | "
                         f"{fmt_s(row.get('seconds'))} |")
        lines.append("")
    if res.get("a2c"):
        lines += a2c_report(res["a2c"])
    m7 = res.get("dns01")
    if m7:
        lines += dns01_report(m7, res.get("notes", {}).get("dns01", []), f.get("knot", "?"))
    if res.get("errors"):
        lines += ["## Errors", ""] + [f"- {e}" for e in res["errors"]] + [""]
    if chart:
        lines += ["## Chart", "", f"![benchmarks]({chart})", ""]
    lines += ["Raw numbers: `results.json` beside this file.", ""]
    path = out / "REPORT.md"
    path.write_text("\n".join(lines))
    return path


def dns01_report(m7: dict, notes: list[str], knot_version: str) -> list[str]:
    tools = m7["tools"]
    lines = [
        "## DNS-01 (RFC 2136)",
        "",
        "One certificate with DNS-01, new key, existing account, tools interleaved: each tool adds the TXT "
        "value(s) with an RFC 2136 update signed with TSIG (hmac-sha256) to a knotd of the benchmark's own "
        f"(Knot {knot_version}, 127.0.0.1:{m7.get('knot_port', '?')}, zone example.test), a second Pebble "
        "(same settings as above) looks them up there, and the tool removes them. Wall time of the whole "
        "issuance. Propagation settings:",
        "",
    ]
    lines += [f"- {t}: {m7['settings'][t]}" for t in tools if t in m7["settings"]]
    lines += [f"- {n}" for n in notes]
    lines += ["", "| names | " + " | ".join(tools) + " |", "| --- |" + " --- |" * len(tools)]
    for size, per in m7["sizes"].items():
        row = []
        for t in tools:
            v = per[t]
            cell = f"{fmt_stat(v)}, n={v['n']}" if v.get("n") else "no successful run"
            if v.get("failures"):
                cell += f", {v['failures']} failed"
            row.append(cell)
        lines.append(f"| {size} | " + " | ".join(row) + " |")
    lines.append("")
    if "sesam-tls" in tools:
        for t in tools:
            if t == "sesam-tls":
                continue
            lines.append("- sesam-tls vs " + t + ": " + ", ".join(
                f"{ratio(per['sesam-tls'], per[t])} faster with {size} name{'s' if size != '1' else ''}"
                for size, per in m7["sizes"].items()) + " (median wall time)")
    lines.append("- TXT values left on the server after the runs: "
                 + ", ".join(f"{t} {m7['records_left'][t]}" for t in tools))
    lines += [
        "",
        "Steps seen in these numbers (on this testbed): knotd answered about one update in four after a flat "
        "0.7 s (also with dnspython alone; its log says the update itself took 0.00 s), which either tool meets "
        "at random; and lego, when the challenge is not yet valid at its first look, looks again after the "
        "server's Retry-After or 5 s without one: its one-name runs took either under a second or 6-8 s.",
        "",
    ]
    if m7.get("failure_reasons"):
        lines += ["Failed runs (left out of the numbers above):", ""]
        lines += [f"- {x}" for x in m7["failure_reasons"]] + [""]
    return lines


# ---------------------------------------------------------------- main


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="one iteration of everything, small sizes")
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset of sesam-tls,certbot,lego")
    ap.add_argument("--out", default=str(REPO / "bench" / "results"))
    ap.add_argument("--runs", type=int, help="issuance runs per tool (default 10, smoke 1)")
    ap.add_argument("--sizes", default=None, help="name counts for scaling (default 1,3,10,50,100; smoke 1,2)")
    ap.add_argument("--size-runs", type=int, default=None, help="runs per size above 1 (default 5, smoke 1)")
    ap.add_argument("--lego-max-names", type=int, default=10,
                    help="largest name count lego is run with (it validates names one after another, ~5 s each)")
    ap.add_argument("--lego-size-runs", type=int, default=2, help="lego's runs per size above 1")
    ap.add_argument("--plot-python", default=str(REPO / "bench" / ".venv-plot" / "bin" / "python"),
                    help="a Python with matplotlib for the chart (skipped when absent)")
    ap.add_argument("--only", default="1,2,3,4,5,imports,warm,wire,a2c,dns",
                    help="measurements to run (6 comes with 1; dns: DNS-01 with RFC 2136; imports, warm, wire: "
                         "issue 16's import table, warm in-process issuance, requests and handshakes)")
    ap.add_argument("--dns-sizes", default="1,10", help="name counts for the DNS-01 measurement (default 1,10)")
    ap.add_argument("--dns-runs", type=int, default=None, help="DNS-01 runs per tool with one name (default 10, smoke 1)")
    ap.add_argument("--dns-size-runs", type=int, default=None,
                    help="DNS-01 runs per tool with more names (default 5, smoke 1: lego takes ~30 s for 10 names)")
    ap.add_argument("--lego-dns-interval", type=int, default=0,
                    help="lego's RFC2136_POLLING_INTERVAL and RFC2136_SEQUENCE_INTERVAL in s (default 0; "
                         "lego's own defaults are 2 and 60)")
    ap.add_argument("--port-offset", type=int, default=0, help="add N to every port the benchmark uses")
    ap.add_argument("--free-ports", action="store_true", help="take free ports chosen at run time instead")
    ap.add_argument("--nonce-reject", type=int, default=0,
                    help="percent of nonces Pebble rejects (default 0; Pebble's own default is 5)")
    ap.add_argument("--state-dir", default=None,
                    help="testbed folder for the benchmark's Pebble (default $SESAM_TESTBED_DIR, so that "
                         "make clean-testbed stops a Pebble a crashed run left)")
    args = ap.parse_args(argv)
    compile_sources()
    if args.free_ports:
        use_free_ports()
    else:
        set_port_offset(args.port_offset)
    global NONCE_REJECT, LEGO_DNS_INTERVAL
    NONCE_REJECT = args.nonce_reject
    LEGO_DNS_INTERVAL = args.lego_dns_interval
    state_dir = Path(args.state_dir) if args.state_dir else tb.testbed_dir()

    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    for t in tools:
        if t not in TOOLS:
            ap.error(f"unknown tool {t}")
    only = {x.strip() for x in args.only.split(",")}
    for x in only - {"1", "2", "3", "4", "5", "6", "imports", "warm", "wire", "a2c", "dns"}:
        ap.error(f"unknown measurement {x} (1,2,3,4,5,imports,warm,wire,a2c,dns)")
    # DNS-01: certbot's RFC 2136 support is a plugin of its own (certbot-dns-rfc2136), not installed here;
    # the smoke run keeps it to sesam-tls.
    dns_tools = [t for t in tools if t in DNS01_CLIENTS and (t == "sesam-tls" or not args.smoke)]
    dns_runs = {int(s): (args.dns_runs or (1 if args.smoke else 10)) if int(s) == 1
                else (args.dns_size_runs or (1 if args.smoke else 5)) for s in args.dns_sizes.split(",")}
    runs = args.runs or (1 if args.smoke else 10)
    sizes = [int(s) for s in (args.sizes or ("1,2" if args.smoke else "1,3,10,50,100")).split(",")]
    if "2" not in only:
        sizes = [1]
    size_runs_n = args.size_runs or (1 if args.smoke else 5)
    size_runs = {t: {s: size_runs_n for s in sizes} for t in tools}
    if "lego" in tools:
        size_runs["lego"] = {s: (min(size_runs_n, args.lego_size_runs) if s <= args.lego_max_names else 0)
                             for s in sizes}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="sesam-tls-bench-"))
    t_start = time.perf_counter()
    res: dict = {"smoke": args.smoke, "tools": tools, "errors": [], "notes": {}, "nonce_reject": NONCE_REJECT}

    main_pebble = bool(only & {"1", "2", "3", "4", "5", "6", "imports", "warm", "a2c"})
    # the tools that will run: with --only dns, certbot need not be installed
    needed = tools if main_pebble else [t for t in tools if t in dns_tools]
    for t in needed:
        exe = {"sesam-tls": SESAM, "certbot": CERTBOT, "lego": LEGO}[t]
        if not os.access(exe, os.X_OK):
            raise SystemExit(f"bench: {t} not found at {exe}: run bench/setup-peers.sh (make bench does)")

    log(f"testbed: dockerd, nginx image; our own Pebble on 127.0.0.1:{PEBBLE_PORT} (state {state_dir})"
        if main_pebble else f"testbed: dockerd, nginx image (state {state_dir})")
    docker_host = tb.start_dockerd()
    tb.build_nginx_image()
    pebble = start_bench_pebble(state_dir) if main_pebble else None
    knot: Optional[tb.Knot] = None
    dns_pebble: Optional[tb.Pebble] = None
    try:
        clients = {t: CLIENTS[t](work, pebble) for t in needed}  # type: ignore[arg-type]  # (None: not used)
        res["machine"] = machine_facts(clients)
        log(f"machine: {res['machine']}")
        if only & {"1", "2", "3", "imports"}:
            for t, c in clients.items():
                log(f"preparing {t} (account + warm-up certificate)")
                c.prepare()

        def step(key: str, fn: Callable[[], dict], alive: Callable[[], bool] = lambda: pebble_alive(state_dir),
                 what: str = "our Pebble") -> None:
            try:
                res[key] = fn()
                if not alive():
                    raise RuntimeError(f"{what} was stopped during this measurement (by someone else?): "
                                       "its numbers are not valid")
            except Exception as e:  # one broken measurement must not lose the others
                log(f"{key} failed: {e!r}")
                res["errors"].append(f"{key}: {type(e).__name__}: {str(e)[:1500]}")

        if only & {"1", "2"}:
            step("issue", lambda: m_issue(clients, runs, sizes, size_runs))
            if "lego" in tools and any(s > args.lego_max_names for s in sizes):
                res["notes"]["scaling"] = (
                    f"lego was run up to {args.lego_max_names} names only ({args.lego_size_runs} runs each): it "
                    "validates one name after another, several seconds each here, so 50 and 100 names would "
                    "take minutes per run, beyond this benchmark's 10-minute budget "
                    "(`bench/bench.py --lego-max-names 100` runs them).")
        if "3" in only:
            step("startup", lambda: m_startup(clients, work, 3 if args.smoke else 10))
        if "4" in only and "sesam-tls" in tools:
            step("rotation", lambda: m_rotation(work, docker_host, 1 if args.smoke else 3, 1.0 if args.smoke else 2.0))
        if "5" in only and "sesam-tls" in tools:
            step("stop_nginx", lambda: m_stop_nginx(work, docker_host, pebble, 1 if args.smoke else 3))
            step("mounted_webroot", lambda: m_stop_nginx(work, docker_host, pebble, 1 if args.smoke else 3,
                                                         mounted=True))
        if "imports" in only and "sesam-tls" in tools:
            step("imports", lambda: m_imports(clients, work))
        if "warm" in only and "sesam-tls" in tools:
            step("warm", lambda: m_warm(pebble, work, 3 if args.smoke else 10))
        if "a2c" in only and "sesam-tls" in tools:
            if A2C_PYTHON.exists():
                # the smoke run keeps to sesam-tls, as for DNS-01
                a2c_tools = [t for t in tools if t != "certbot" or not args.smoke]
                step("a2c", lambda: m_a2c(a2c_tools, work, pebble, state_dir, 1 if args.smoke else 10))
            else:
                log(f"no {A2C_PYTHON}: the acme2certifier measurement is skipped (bench/setup-peers.sh installs it)")
        if "wire" in only and "sesam-tls" in tools:
            step("wire", lambda: m_wire("1,10" if args.smoke else "1,10,100"))
        if "dns" in only and dns_tools:
            def dns01() -> dict:
                nonlocal knot, dns_pebble
                knot = start_bench_knot(state_dir)
                dns_pebble = start_dns_pebble(state_dir, knot)
                log(f"DNS-01: our knotd on {knot.address}, our Pebble {dns_pebble.directory} resolving through it")
                dclients = {t: DNS01_CLIENTS[t](work / "dns01", dns_pebble, knot) for t in dns_tools}
                for t, c in dclients.items():
                    log(f"preparing {t} for DNS-01 (account + warm-up certificate)")
                    c.prepare()
                return m_dns01(dclients, knot, dns_runs)

            step("dns01", dns01, what="our knotd or DNS-01 Pebble",
                 alive=lambda: knot_alive(state_dir) and pebble_alive(state_dir, DNS_PEBBLE_INSTANCE))
            if "certbot" in tools:
                res["notes"]["dns01"] = ["certbot: not run (its RFC 2136 support is a separate plugin, "
                                         "certbot-dns-rfc2136, which bench/setup-peers.sh does not install)"]
            if args.smoke and "lego" in tools:
                res["notes"].setdefault("dns01", []).append("lego: not run in the smoke run")
    finally:
        if main_pebble:
            log("stopping our Pebble and challtestsrv (by their pid files)")
            try:
                stop_bench_pebble(state_dir)
            except tb.TestbedError as e:
                log(f"could not stop pebble: {e}")
        if "dns" in only and dns_tools:
            log("stopping our DNS-01 Pebble and knotd (by their pid files)")
            for stop in (stop_dns_pebble, stop_bench_knot):
                try:
                    stop(state_dir)
                except tb.TestbedError as e:
                    log(f"could not stop: {e}")
        shutil.rmtree(work, ignore_errors=True)
    res["elapsed_s"] = time.perf_counter() - t_start
    if "machine" in res:
        res["machine"]["loadavg_end"] = loadavg()
    (out / "results.json").write_text(json.dumps(res, indent=2, default=str))

    chart = None
    if Path(args.plot_python).exists():
        p = subprocess.run([args.plot_python, str(REPO / "bench" / "chart.py"), str(out / "results.json"),
                            str(out / "bench.png")], capture_output=True, text=True)
        if p.returncode == 0:
            chart = "bench.png"
        else:
            res["errors"].append(f"chart: {p.stderr.strip()[-800:]}")
    else:
        log(f"no {args.plot_python}: chart skipped")
    report = write_report(res, out, chart)
    log(f"done in {res['elapsed_s']:.0f} s: {report}")
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
