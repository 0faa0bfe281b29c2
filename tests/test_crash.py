"""Crash consistency: SIGKILL ``python -m sesam_tls`` at every failpoint, then check the node.

For each scenario (a verb, a starting node, with or without a real nginx
container), one traced run lists the failpoints the command passes, in
order. Then, for every one of them, a fresh copy of the starting node gets
the same command with ``SESAM_TLS_FAILPOINT`` naming that point, and:

* the process died by SIGKILL;
* the ssl folder holds a key and a certificate that match, read through
  ``fullchain.pem``/``privkey.pem`` (what nginx reads through its mount):
  the old pair or a new one, never one of each; with a container,
  ``nginx -t`` inside it loads the pair and a TLS handshake succeeds;
* the agent config is valid JSON, every foreign key equal in value and order;
* the metadata, when there is any, loads;
* the same command without the failpoint completes, the node converges
  (nginx serves the deployed certificate, by handshake), no temp file remains.

Points before any Docker action run files-only (``--no-restart``); the
scenarios with a container crash at the Docker step and everything after it
(restart, reload, rollback, recording).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest
from cryptography import x509

from sesam_tls import CertRequest, DeployOptions, Node, SelfSigned, issue
from sesam_tls.bundle import Bundle, fingerprint, key_matches_cert
from sesam_tls.failpoints import POINTS
from sesam_tls.fsutil import TMP_MARK
from sesam_tls.state import load_metadata
from sesam_tls.store import SslFolder

from . import certgen
from .helpers import make_root
from .testbed import free_port, served_cert_der

pytestmark = pytest.mark.integration

NAME = "node.example.test"
FOREIGN = ("docker_username", "docker_password", "sesam-node")
CONTAINER_PATHS = ("/etc/nginx/includes.d/ssl/fullchain.pem", "/etc/nginx/includes.d/ssl/privkey.pem")
#: Cases at once: files-only cases use the CPU, container cases mostly wait for nginx.
WORKERS = {False: 3, True: 6}

#: A crash here leaves the agent config changed but the container not restarted on it:
#: the next run must restart, not reload (the agent reads its config at start).
RESTART_PENDING = ("deploy.after-config-write", "deploy.before-nginx")

#: Filled by the scenario tests, reported by test_summary (the last test here).
TALLY: dict = {"crashed": 0, "points": set(), "violations": [], "scenarios": 0}


@dataclass
class Scenario:
    id: str
    verb: str  # issue, import, renew
    start: str  # fresh, operator, managed
    container: bool = False
    fails: bool = False  # the deployment fails on purpose (verification against a dead port)
    argv: list = field(default_factory=list)


SCENARIOS = [
    Scenario("issue-fresh", "issue", "fresh"),
    Scenario("issue-adopt", "issue", "operator"),
    Scenario("import-adopt", "import", "operator"),
    Scenario("import-managed", "import", "managed"),
    Scenario("renew-managed", "renew", "managed"),
    Scenario("issue-restart", "issue", "operator", container=True),
    Scenario("import-reload", "import", "managed", container=True),
    Scenario("renew-reload", "renew", "managed", container=True),
    Scenario("issue-rollback", "issue", "operator", container=True, fails=True),
    Scenario("import-rollback", "import", "managed", container=True, fails=True),
    Scenario("renew-failure", "renew", "managed", container=True, fails=True),
    # the operator's pair in a real `live` folder: set aside, never deleted (issue 11, item 2)
    Scenario("issue-live-folder", "issue", "live-folder"),
    Scenario("issue-live-folder-rollback", "issue", "live-folder", container=True, fails=True),
]


# the starting nodes -----------------------------------------------------------------


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """One starting node per kind, copied for every case; plus the file to import."""
    base = tmp_path_factory.mktemp("crash-templates")
    out = {}
    fresh = make_root(base / "fresh")
    out["fresh"] = fresh
    operator = make_root(base / "operator")
    ssl = operator / "sesam/nginx/conf/ssl"
    ssl.mkdir(parents=True)
    own = SelfSigned().issue(CertRequest.build([NAME]))
    (ssl / "fullchain.pem").write_bytes(own.fullchain_pem())
    (ssl / "privkey.pem").write_bytes(own.key_pem())
    out["operator"] = operator
    live_folder = make_root(base / "live-folder")
    ssl = live_folder / "sesam/nginx/conf/ssl"
    (ssl / "live").mkdir(parents=True)
    (ssl / "live/fullchain.pem").write_bytes(own.fullchain_pem())
    (ssl / "live/privkey.pem").write_bytes(own.key_pem())
    (ssl / "fullchain.pem").symlink_to("live/fullchain.pem")
    (ssl / "privkey.pem").symlink_to("live/privkey.pem")
    out["live-folder"] = live_folder
    managed = make_root(base / "managed")
    node = Node.from_settings(root=str(managed), env={})
    issue(CertRequest.build([NAME]), SelfSigned(), node=node, options=DeployOptions(restart=False))
    out["managed"] = managed
    pki = certgen.pki([NAME], now=dt.datetime.now(dt.timezone.utc))
    inputs = base / "inputs"
    inputs.mkdir()
    (inputs / "cert.pem").write_bytes(certgen.pem(pki.leaf, pki.inter.cert))
    (inputs / "key.pem").write_bytes(certgen.key_bytes(pki.key))
    out["inputs"] = inputs
    return out


@dataclass
class Case:
    scenario: Scenario
    root: Path
    port: int = 0
    container: Optional[str] = None
    config_before: bytes = b""
    config_mode: int = 0
    known: set = field(default_factory=set)  # fingerprints of the pairs the node may hold

    @property
    def ssl(self) -> Path:
        return self.root / "sesam/nginx/conf/ssl"

    @property
    def config(self) -> Path:
        return self.root / "etc/sesam-agent/config.json"

    def argv(self, templates, docker_host: str, *, good: bool) -> list[str]:
        s = self.scenario
        if s.verb == "issue":
            cmd = ["issue", "--self-signed", "-d", NAME]
        elif s.verb == "import":
            inputs = templates["inputs"]
            cmd = ["import", "--cert", str(inputs / "cert.pem"), "--key", str(inputs / "key.pem"), "-d", NAME]
            if s.start == "managed":  # over the managed self-signed certificate: a provider switch
                cmd.append("--replace")
        else:
            cmd = ["renew", "--force"]
        cmd += ["--root", str(self.root)]
        if not s.container:
            return cmd + ["--no-restart"]
        if good or not s.fails:
            return cmd + ["--container", self.container, "--docker-host", docker_host,
                          "--verify", f"127.0.0.1:{self.port}", "--verify-name", NAME, "--timeout", "10"]
        # Verification against a port nobody listens on fails once its 2 s are up.
        return cmd + ["--container", self.container, "--docker-host", docker_host,
                      "--verify", f"127.0.0.1:{free_port()}", "--timeout", "2"]


def new_case(scenario: Scenario, templates, where: Path, containers) -> Case:
    root = where / "root"
    shutil.copytree(templates[scenario.start], root, symlinks=True)
    case = Case(scenario, root)
    case.config_before = case.config.read_bytes()
    case.config_mode = case.config.stat().st_mode & 0o7777
    pair = SslFolder(case.ssl).read_pair()
    if pair:
        case.known.add(Bundle.from_pem(*pair).fingerprint)
    if scenario.container:
        case.port = free_port()
        case.container = containers(case.ssl, case.port)
    return case


def run(argv: list[str], failpoint: Optional[str] = None, trace: Optional[Path] = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESAM_TLS")}
    if failpoint:
        env["SESAM_TLS_FAILPOINT"] = failpoint
    if trace:
        env["SESAM_TLS_FAILPOINT_TRACE"] = str(trace)
    return subprocess.run([sys.executable, "-m", "sesam_tls", *argv], env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)


# the invariants -----------------------------------------------------------------------


def version_fingerprints(case: Case) -> set[str]:
    folder = SslFolder(case.ssl)
    out = set()
    for version in folder.version_ids():
        try:
            out.add(Bundle.from_pem(*folder.read_version(version)).fingerprint)
        except Exception:  # noqa: BLE001, S110 - a damaged version is simply not a known pair
            pass
    return out


def check_node(case: Case, containers, *, after_rerun: bool) -> list[str]:
    """Every broken invariant, as one line each (empty: the node is sound)."""
    bad = []
    # 1. the pair nginx reads through the mount
    pair = SslFolder(case.ssl).read_pair()
    deployed = None
    if pair is None:
        if case.known or after_rerun:
            bad.append("no readable fullchain.pem/privkey.pem pair")
        elif (case.ssl / "fullchain.pem").exists() or (case.ssl / "privkey.pem").exists():
            bad.append("one half of a pair is readable")
    else:
        try:
            bundle = Bundle.from_pem(*pair)
        except Exception as exc:  # noqa: BLE001 - any failure here is a violation to report
            bad.append(f"the pair does not parse: {exc}")
        else:
            deployed = bundle.fingerprint
            if not key_matches_cert(bundle.key, bundle.leaf):
                bad.append("privkey.pem does not match fullchain.pem")
            if deployed not in case.known | version_fingerprints(case):
                bad.append("the pair is neither the old one nor a staged version")
    # 2. the agent config
    try:
        before = json.loads(case.config_before)
        after = json.loads(case.config.read_bytes())
    except ValueError as exc:
        bad.append(f"agent config is not valid JSON: {exc}")
    else:
        if list(after) != list(before):
            bad.append(f"agent config keys changed order: {list(after)}")
        for key in FOREIGN:
            if json.dumps(after.get(key)) != json.dumps(before.get(key)):
                bad.append(f"agent config key {key!r} changed")
        nginx = dict(after.get("nginx") or {})
        paths = (nginx.pop("ssl_cert", None), nginx.pop("ssl_key", None))
        old = dict(before.get("nginx") or {})
        old_paths = (old.pop("ssl_cert", None), old.pop("ssl_key", None))
        if nginx != old:
            bad.append("agent config: another nginx key changed")
        if paths not in (old_paths, CONTAINER_PATHS):
            bad.append(f"agent config: ssl paths are {paths}")
        if case.config.stat().st_mode & 0o7777 != case.config_mode:
            bad.append("agent config mode changed")
        if after_rerun and paths != CONTAINER_PATHS:
            bad.append("agent config does not point at the pair after the rerun")
    # 3. the metadata
    meta = None
    try:
        meta = load_metadata(case.root / "var/lib/sesam-tls/certificate.json")
    except Exception as exc:  # noqa: BLE001 - any failure here is a violation to report
        bad.append(f"metadata does not load: {exc}")
    # 4. nginx, through the container's mount and by handshake
    if case.container:
        code, out = containers.container(case.container).exec_run(["nginx", "-t"])
        if code != 0:
            bad.append(f"nginx -t fails in the container: {out.decode(errors='replace').strip()[-200:]}")
        try:
            served = fingerprint(x509.load_der_x509_certificate(served_cert_der("127.0.0.1", case.port, NAME)))
        except Exception as exc:  # noqa: BLE001 - any failure here is a violation to report
            bad.append(f"no TLS handshake with nginx: {exc}")
        else:
            if served not in case.known | version_fingerprints(case):
                bad.append("nginx serves a certificate the node never had")
            if after_rerun and served != deployed:
                bad.append("nginx does not serve the deployed certificate after the rerun")
    # 5. convergence
    if after_rerun:
        if meta is None or (meta.get("certificate") or {}).get("fingerprint_sha256") != deployed:
            bad.append("metadata does not describe the deployed certificate")
        live = SslFolder(case.ssl).live_version()
        if live is None or (case.ssl / ".versions" / live / "privkey.pem").stat().st_mode & 0o777 != 0o600:
            bad.append("the live key is not mode 0600")
        for dirpath, dirnames, filenames in os.walk(case.root):
            for name in dirnames + filenames:
                if TMP_MARK in name:
                    bad.append(f"temp file left: {Path(dirpath, name).relative_to(case.root)}")
    return bad


# the matrix -------------------------------------------------------------------------


def trace_points(scenario: Scenario, templates, tmp: Path, containers, docker_host: str) -> list[str]:
    case = new_case(scenario, templates, tmp / "trace", containers)
    trace = tmp / "trace.txt"
    proc = run(case.argv(templates, docker_host, good=False), trace=trace)
    assert proc.returncode == (7 if scenario.fails else 0), proc.stderr  # 7: DeployError, rolled back
    reached = list(dict.fromkeys(trace.read_text().split()))
    if scenario.container:
        # Files-only scenarios crash at the file steps; here: the Docker step, the rollback, renew's record.
        first = min(reached.index(p) for p in RESTART_PENDING if p in reached)
        reached = [p for p in reached[first:] if p.startswith(("deploy.", "renew."))]
    if case.container:
        containers.container(case.container).remove(force=True)
    return reached


def crash_case(scenario: Scenario, point: str, templates, tmp: Path, containers, docker_host: str) -> list[str]:
    where = tmp / point
    case = new_case(scenario, templates, where, containers)
    try:
        proc = run(case.argv(templates, docker_host, good=False), failpoint=point)
        tag = f"{scenario.id} @ {point}"
        if proc.returncode != -signal.SIGKILL:
            return [f"{tag}: not killed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"]
        bad = [f"{tag}, after the crash: {b}" for b in check_node(case, containers, after_rerun=False)]
        again = run(case.argv(templates, docker_host, good=True))
        if again.returncode != 0:
            bad.append(f"{tag}: the rerun failed (exit {again.returncode}): {again.stderr.strip()[-300:]}")
        if point in RESTART_PENDING and scenario.id == "issue-restart" and "nginx restarted" not in again.stdout:
            bad.append(f"{tag}: the rerun did not restart nginx, so the agent never applies the changed config")
        bad += [f"{tag}, after the rerun: {b}" for b in check_node(case, containers, after_rerun=True)]
        return bad
    finally:
        if case.container:
            containers.container(case.container).remove(force=True)
        shutil.rmtree(where, ignore_errors=True)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_crash_matrix(scenario, templates, tmp_path, nginx_container, docker_host):
    points = trace_points(scenario, templates, tmp_path, nginx_container, docker_host)
    assert points, "the command passes no failpoint"
    with ThreadPoolExecutor(WORKERS[scenario.container]) as pool:
        results = list(pool.map(
            lambda p: crash_case(scenario, p, templates, tmp_path, nginx_container, docker_host), points))
    violations = [v for r in results for v in r]
    TALLY["crashed"] += len(points)
    TALLY["points"].update(points)
    TALLY["violations"] += violations
    TALLY["scenarios"] += 1
    assert violations == [], "\n".join(violations)


def test_summary(capsys):
    """Every listed failpoint was crashed at by some scenario; print the figures for the README."""
    assert TALLY["scenarios"] == len(SCENARIOS), "run the whole module: the scenarios fill the tally"
    missing = [p for p in POINTS if p not in TALLY["points"]]
    unknown = sorted(TALLY["points"] - set(POINTS))
    assert missing == [] and unknown == [], f"never reached: {missing}; not in POINTS: {unknown}"
    with capsys.disabled():
        print(
            f"\ncrash matrix: {TALLY['crashed']} crashes at {len(TALLY['points'])} failpoints in "
            f"{len(SCENARIOS)} scenarios (issue, import, renew); invariant violations: {len(TALLY['violations'])}"
        )
    assert TALLY["violations"] == []
