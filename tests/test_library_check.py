"""``sesam_tls.check`` through the library alone: a fresh interpreter that imports ``sesam_tls`` only,
against the real testbed (this session's Pebble, the loopback dockerd and an nginx container).
The report is typed (frozen items with their exit codes) and its ``to_json()`` is what
``sesam-tls check --json`` prints; the CLI is never imported."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from sesam_tls import CheckItem, CheckReport, DeployOptions, issue
from sesam_tls.cli import in_flags, main
from sesam_tls.providers.base import CertRequest

from .acme_fixtures import LOOPBACK, acme_for, node_factory  # noqa: F401 - a fixture
from .test_acme_cli import where
from .testbed import free_port

pytestmark = pytest.mark.integration

ITEMS = ["names", "ACME server", "docker", "challenge", "CAA", "agent config", "ssl folder", "state folder"]


def library(script: str) -> dict:
    """Run ``script`` in a fresh interpreter after ``import sesam_tls``; it sets ``out`` (JSON values).
    The interpreter must not have loaded the CLI by its end."""
    code = (
        "import json, sys\n"
        "import sesam_tls\n"
        f"{script}\n"
        "assert 'sesam_tls.cli' not in sys.modules, sorted(m for m in sys.modules if m.startswith('sesam_tls.cli'))\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def node_code(node) -> str:
    return (f"node = sesam_tls.Node.from_settings(root={str(node.root)!r}, container={node.container!r}, "
            f"docker_host={node.docker_host!r}, env={{}})")


@pytest.fixture
def issued(pebble, node_factory):
    """A node with an nginx container and a certificate for localhost from Pebble, issued by the library."""
    t = node_factory(container=True)
    issue(CertRequest.build(["localhost"]), acme_for(pebble, t.node), node=t.node,
          options=DeployOptions(verify=f"127.0.0.1:{t.https_port}"))
    return t


def test_bare_check_is_typed_and_is_what_the_cli_prints(issued, pebble, capsys):
    out = library(
        node_code(issued.node) + "\n"
        "seen = []\n"
        "report = sesam_tls.check(node, on_item=seen.append)\n"
        "assert isinstance(report, sesam_tls.CheckReport) and report.ok and report.exit_code == 0\n"
        "assert all(isinstance(i, sesam_tls.CheckItem) and i.ok and i.exit_code == 0 for i in report.items)\n"
        "assert list(report.items) == seen  # each item handed over as soon as it was done\n"
        "out = {'json': report.to_json(), 'items': [[i.check, i.ok, i.detail, i.exit_code] for i in report.items]}\n"
    )
    items = {check: (ok, detail, code) for check, ok, detail, code in out["items"]}
    assert list(items) == ITEMS
    # the record's names, CA and HTTP-01 settings: what the next renew uses
    assert items["names"][1] == "localhost -> 127.0.0.1 (this host)"
    assert items["ACME server"][1].startswith(f"{pebble.directory} answers; account ")
    assert items["challenge"][1] == (
        f"HTTP-01 standalone: port {pebble.http_port} is free: a standalone server answers the challenges"
    )
    assert items["docker"][1].startswith(f"container {issued.node.container} is running")
    assert main(["check", *where(issued.node), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == out["json"]


def test_a_failing_check_says_each_reason_with_its_exit_code(pebble, node_factory, capsys):
    t = node_factory(container=True)
    gone = dataclasses.replace(t.node, container="sesam-tls-test-no-such-container")
    port = free_port()
    out = library(
        node_code(gone) + "\n"
        f"report = sesam_tls.check(node, names=['*.example.test'], directory={pebble.directory!r}, "
        f"ca_bundle={pebble.ca_bundle!r}, agree_tos=True, profile='no-such-profile', http01='standalone', "
        f"http_port={port}, http_address=[{LOOPBACK[0]!r}])\n"
        "assert not report.ok and report.exit_code == 2  # the first failed item's: names, a usage error\n"
        "out = {'json': report.to_json(), 'failed': [[i.check, i.detail, i.exit_code] for i in report.items if not i.ok]}\n"
    )
    failed = {check: (detail, code) for check, detail, code in out["failed"]}
    assert list(failed) == ["names", "ACME server", "docker"], failed
    assert failed["names"][1] == 2 and "wildcards cannot be validated over HTTP-01" in failed["names"][0]
    # a Python caller reads the parameter, the CLI's operator the flag
    assert failed["ACME server"][1] == 2
    assert failed["ACME server"][0].startswith(f"{pebble.directory} answers, but does not offer `profile` no-such-profile")
    assert failed["docker"][1] == 6 and "sesam-tls-test-no-such-container" in failed["docker"][0]
    assert out["json"]["ok"] is False
    # the same call through the CLI prints the same report and exits with the same code
    argv = ["check", "-d", "*.example.test", "--server", pebble.directory, "--ca-bundle", pebble.ca_bundle,
            "--agree-tos", "--profile", "no-such-profile", "--http01", "standalone", "--http-port", str(port), "--http-address", LOOPBACK[0],
            *where(gone), "--json"]
    assert main(argv) == 2
    printed = capsys.readouterr().out
    assert "does not offer --profile no-such-profile" in printed
    assert json.loads(printed) == json.loads(in_flags(json.dumps(out["json"])))


def test_the_report_is_frozen_and_its_exit_code_is_the_first_failure():
    report = CheckReport((CheckItem("names", True, "a"), CheckItem("docker", False, "b", 6),
                          CheckItem("CAA", False, "c", 8)))
    assert not report.ok and report.exit_code == 6
    assert report.to_json() == {"ok": False, "checks": [{"check": "names", "ok": True, "detail": "a"},
                                                        {"check": "docker", "ok": False, "detail": "b"},
                                                        {"check": "CAA", "ok": False, "detail": "c"}]}
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.items[0].ok = False  # type: ignore[misc]
    assert CheckReport(()).ok and CheckReport(()).exit_code == 0
