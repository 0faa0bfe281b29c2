"""status, the renewal timer, configure and rollback through the library alone (issue 13).

Each operation runs in a fresh interpreter that imports ``sesam_tls`` and
nothing of the CLI, against a real nginx where the operation needs one, and
returns typed results; where the CLI prints JSON, the library's ``to_json()``
is the same document.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sesam_tls.cli import main
from sesam_tls.node import Node

from .acme_fixtures import NAME, node_factory  # noqa: F401 - fixture
from .helpers import make_root

REPO = Path(__file__).resolve().parents[1]

#: Every script starts so: the node from argv, and ends by checking that no CLI module was loaded.
PRELUDE = """
import json, sys
import sesam_tls
args = json.loads(sys.argv[1])
node = sesam_tls.Node.from_settings(env={}, **args["node"])
"""
EPILOGUE = """
assert "sesam_tls.cli" not in sys.modules, sorted(m for m in sys.modules if m.startswith("sesam_tls.cli"))
print("RESULT " + json.dumps(out, default=str))
"""


def library(script: str, node, **args) -> dict:
    """Run ``script`` (with ``node`` and ``args`` in scope) in a fresh interpreter; its ``out``, as JSON."""
    settings = {"root": str(node.root), "container": node.container, "docker_host": node.docker_host}
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("SESAM_TLS_ROOT", None)
    code = PRELUDE + textwrap.dedent(script) + EPILOGUE
    done = subprocess.run([sys.executable, "-c", code, json.dumps({"node": settings, **args})], env=env,
                          capture_output=True, text=True, timeout=120, cwd=str(node.root))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.rsplit("RESULT ", 1)[1])


ISSUE = """
options = sesam_tls.DeployOptions(verify=args.get("verify"), verify_name=args.get("verify") and args["name"],
                                  restart=bool(args.get("verify")))
sesam_tls.issue(sesam_tls.CertRequest.build([args["name"]]), sesam_tls.SelfSigned(), node=node, options=options)
"""


def node_flags(node) -> list[str]:
    return ["--root", str(node.root), "--container", node.container, "--docker-host", str(node.docker_host)]


@pytest.mark.integration
def test_status_through_the_library_is_what_the_cli_prints(node_factory, tmp_path, capsys):
    tn = node_factory(container=True)
    verify = f"127.0.0.1:{tn.https_port}"
    metrics = tmp_path / "status.prom"
    out = library(ISSUE + """
info = sesam_tls.status(node, verify=args["verify"], warn_days=14, metrics_file=args["metrics"])
assert isinstance(info, sesam_tls.NodeStatus)
out = {"json": info.to_json(), "exit_code": info.exit_code, "reasons": list(info.reasons),
       "served": info.served.serving_deployed, "names": list(info.deployed.certificate.names),
       "managed": info.managed, "provider": info.provider, "verify_in_settings": info.settings.verify}
""", tn.node, name=NAME, verify=verify, metrics=str(metrics))
    assert (out["exit_code"], out["reasons"], out["served"]) == (0, [], True)
    assert (out["names"], out["managed"], out["provider"], out["verify_in_settings"]) == ([NAME], True, "selfsigned",
                                                                                         None)
    assert "sesam_tls_certificate_served_status 1" in metrics.read_text()

    capsys.readouterr()
    assert main(["status", *node_flags(tn.node), "--verify", verify, "--warn-days", "14", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == out["json"]


@pytest.mark.integration
def test_status_says_why_through_the_library(node_factory, tmp_path):
    """A broken agent config and a pair about to expire: the reasons, and the exit code they stand for."""
    tn = node_factory()
    tn.node.agent_config.write_text('{"nginx": {')
    out = library("""
info = sesam_tls.status(node, warn_days=400, metrics_file=args["metrics"])
out = {"code": info.exit_code, "reasons": [r.reason for r in info.reasons], "managed": info.managed,
       "points": info.agent_config_points_here, "error": info.agent_config_error, "json": info.to_json()}
""", tn.node, metrics=str(tmp_path / "m.prom"))
    assert out["code"] == 4 and out["reasons"] == ["agent-config-unreadable", "expiring"]
    assert out["managed"] is False and out["points"] is None and str(tn.node.agent_config) in out["error"]
    assert out["json"]["exit_code"] == 4 and out["json"]["attention"] is True and "settings" not in out["json"]
    gauges = [line for line in (tmp_path / "m.prom").read_text().splitlines() if line.startswith("sesam_tls_attention{")]
    assert [(line.split('reason="')[1].split('"')[0], line.rsplit(" ", 1)[1]) for line in gauges] == [
        ("agent-config-unreadable", "1"), ("expiring", "1")]


def test_timer_install_status_remove_through_the_library(tmp_path):
    root = make_root(tmp_path)
    node = Node.from_settings(root=str(root), env={})
    out = library("""
exe = ["/opt/sesam-tls/bin/sesam-tls"]
installed = sesam_tls.install_timer(node, command=exe)
status = sesam_tls.timer_status(node, command=exe)
cron = sesam_tls.install_timer(node, cron=True, command=exe)
both = sesam_tls.timer_status(node, command=exe)
removed = sesam_tls.remove_timer(node)
after = sesam_tls.timer_status(node, command=exe)
again = sesam_tls.remove_timer(node)
out = {"installed": installed.to_json(), "root": installed.root, "live": installed.systemd_live,
       "written": [str(p) for p in installed.changes[0].written], "to_run": list(installed.changes[0].to_run),
       "status": status.to_json(), "loaded": status.systemd.loaded, "current": status.systemd.current,
       "cron": [c.kind for c in cron.changes], "cron_schedule": both.cron.schedule, "cron_current": both.cron.current,
       "removed": [c.kind for c in removed.changes], "after": [after.systemd.installed, after.cron.installed],
       "again": again.to_json()}
""", node)
    units = root / "etc/systemd/system"
    assert out["written"] == [str(units / "sesam-tls-renew.service"), str(units / "sesam-tls-renew.timer")]
    assert (out["root"], out["live"]) == (str(root), False)
    assert out["to_run"] == ["systemctl daemon-reload", "systemctl enable --now sesam-tls-renew.timer"]
    assert out["installed"]["action"] == "install" and out["installed"]["changes"][0]["kind"] == "systemd"
    assert out["status"]["renew_command"] == f"/opt/sesam-tls/bin/sesam-tls renew --root {root}"
    assert (out["loaded"], out["current"]) == (False, True)
    assert "next_run" not in out["status"]["systemd"] and out["status"]["cron"] == {
        "installed": False, "file": str(root / "etc/cron.d/sesam-tls")}
    assert out["cron"] == ["cron"] and out["cron_current"] is True and " daily" in out["cron_schedule"]
    assert out["removed"] == ["systemd", "cron"] and out["after"] == [False, False]
    assert out["again"] == {"action": "remove", "changes": []}
    assert [p for p in root.rglob("*") if p.is_file() and "sesam-agent" not in str(p)] == []


def test_timer_status_of_the_library_is_what_the_cli_prints(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)  # the node of the flags alone, in both
    root = make_root(tmp_path)
    assert main(["timer", "install", "--root", str(root)]) == 0
    capsys.readouterr()
    assert main(["timer", "status", "--root", str(root), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    node = Node.from_settings(root=str(root), env={})
    out = library("""
out = sesam_tls.timer_status(node).to_json()  # the command: how this interpreter runs sesam-tls, as the CLI's
""", node)
    assert out == printed


FILES_ONLY_ISSUE = """
options = sesam_tls.DeployOptions(restart=False, hook_env=("SITE",))
sesam_tls.issue(sesam_tls.CertRequest.build([args["name"]]), sesam_tls.SelfSigned(), node=node, options=options)
"""


def test_configure_through_the_library(tmp_path):
    root = make_root(tmp_path)
    node = Node.from_settings(root=str(root), env={})
    out = library("""
from sesam_tls.errors import UsageError
try:
    sesam_tls.configure(node, verify="127.0.0.1:8443")
    refused = None
except UsageError as exc:
    refused = str(exc)
""" + FILES_ONLY_ISSUE + """
first = sesam_tls.configure(node, verify="127.0.0.1:8443", timeout=12, metrics_file="node.prom",
                            deploy_hook="true", proxy_env={"HTTPS_PROXY": "http://proxy.example:3128"})
same = sesam_tls.configure(node, verify="127.0.0.1:8443")
forgot = sesam_tls.configure(node, unset=["verify", "deploy_hook", "proxy"])
try:
    sesam_tls.configure(node, unset=["nonsense"])
    bad_unset = None
except UsageError as exc:
    bad_unset = str(exc)
try:
    sesam_tls.configure(node, timeout=0)
    bad_timeout = None
except UsageError as exc:
    bad_timeout = str(exc)
seen = sesam_tls.status(node).settings
out = {"refused": refused, "changed": first.changed, "names": list(first.changed_names),
       "metrics": first.settings.metrics_file, "before": first.settings_before.verify,
       "proxy": first.settings.proxy.https_proxy, "hook": first.hooks.deploy, "env": list(first.hooks.env),
       "same": same.changed, "same_json": same.to_json()["result"], "forgot": list(forgot.changed_names),
       "forgot_verify": forgot.settings.verify, "forgot_hook": forgot.hooks.deploy, "kept_timeout": forgot.settings.timeout,
       "bad_unset": bad_unset, "bad_timeout": bad_timeout, "seen": [seen.verify, seen.timeout, seen.metrics_file],
       "record": str(first.record_path)}
""", node, name=NAME)
    assert "no managed certificate" in out["refused"]
    assert out["changed"] is True
    assert out["names"] == ["verify", "timeout", "metrics_file", "proxy", "deploy_hook"]
    assert out["metrics"] == str(root / "node.prom")  # made absolute: the timer runs from /
    assert (out["before"], out["proxy"], out["hook"]) == (None, "http://proxy.example:3128", "true")
    assert out["env"] == ["SITE"]  # the hooks' allowed variables survive a configure
    assert (out["same"], out["same_json"]) == (False, "unchanged")
    assert out["forgot"] == ["verify", "proxy", "deploy_hook"]
    assert (out["forgot_verify"], out["forgot_hook"], out["kept_timeout"]) == (None, None, 12)
    assert "`unset`" in out["bad_unset"] and "`timeout`" in out["bad_timeout"]
    assert out["seen"] == [None, 12, str(root / "node.prom")]
    assert out["record"].startswith(str(root))


@pytest.mark.integration
def test_kept_versions_and_rollback_through_the_library(node_factory, capsys):
    tn = node_factory(container=True)
    verify = f"127.0.0.1:{tn.https_port}"
    out = library(ISSUE + ISSUE + """
before = sesam_tls.kept_versions(node)
assert all(isinstance(v, sesam_tls.KeptVersion) for v in before)
options = sesam_tls.DeployOptions(verify=args["verify"], verify_name=args["name"])
outcome = sesam_tls.rollback(node, options=options)
after = sesam_tls.kept_versions(node)
out = {"before": [v.to_json() for v in before], "after": [[v.version, v.live] for v in after],
       "version": outcome.version, "from": outcome.from_version, "json": outcome.to_json(),
       "verified": outcome.deployment.verified, "rolled_back": sesam_tls.status(node).rolled_back.to_version}
""", tn.node, name=NAME, verify=verify)
    live_before = [v["version"] for v in out["before"] if v["live"]]
    assert len(live_before) == 1 and out["from"] == live_before[0]
    ids = [v["version"] for v in out["before"]]
    assert out["version"] == ids[ids.index(out["from"]) - 1]
    assert [v for v, live in out["after"] if live] == [out["version"]] and out["rolled_back"] == out["version"]
    assert out["verified"] is True and out["json"]["result"] == "rolled-back"
    assert out["json"]["version"] == out["version"] and out["json"]["deployment"]["verified"] is True
    assert all(v["names"] == [NAME] for v in out["before"])

    capsys.readouterr()
    assert main(["rollback", "--list", "--json", *node_flags(tn.node)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["ssl_dir"] == str(tn.node.ssl_dir)
    assert [[v["version"], v["live"]] for v in listed["versions"]] == out["after"]


def test_public_names_stay_functions_after_their_modules_are_imported():
    """``sesam_tls.status``/``rollback``/``configure`` are the operations even once a module of
    the same name was imported (Python would set the submodule as the package's attribute)."""
    code = """
import sys
import sesam_tls
import sesam_tls.api, sesam_tls.status, sesam_tls.rollback, sesam_tls.configure
assert callable(sesam_tls.status) and callable(sesam_tls.rollback) and callable(sesam_tls.configure)
from sesam_tls.status import NodeStatus
from sesam_tls import rollback
assert rollback.__name__ == "rollback" and NodeStatus.__module__ == "sesam_tls.status"
assert "sesam_tls.cli" not in sys.modules
"""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
