"""import, renew and ensure through the library alone (issue 13: the library owns every operation).

Each operation runs in a fresh interpreter through ``import sesam_tls`` only,
against a real nginx container, and ends with ``assert "sesam_tls.cli" not
in sys.modules``: what the CLI did beside the call (the settings to record,
the replayed record, the metrics file, the webhook's file, the password, the
desired state's JSON) is the library's now. The results are typed, and
``to_json()`` is what ``--json`` prints.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import sesam_tls
from sesam_tls.errors import UsageError

from . import certgen as g
from .acme_fixtures import NAME, node_factory  # noqa: F401 - node_factory is a fixture
from .testbed import served_cert_der

#: Runs after every script: the operation did not need the CLI.
NO_CLI = '\nassert "sesam_tls.cli" not in sys.modules, sorted(m for m in sys.modules if m.startswith("sesam_tls.cli"))\n'


NODE = "import sesam_tls\nnode = sesam_tls.Node.from_settings(root=V['root'], container=V['container'], " \
       "docker_host=V['docker_host'], env={})\n"


def library(script: str, values: dict[str, Any], *, stdin: str = "") -> Any:
    """``script`` in a fresh interpreter with ``V`` (the JSON ``values``) and ``node`` (:data:`NODE`);
    what it printed last, as JSON."""
    code = "import json, sys\nV = json.loads(sys.argv[1])\n" + NODE + textwrap.dedent(script) + NO_CLI
    done = subprocess.run([sys.executable, "-c", code, json.dumps(values)], input=stdin, capture_output=True,
                          text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def node_values(tn: Any) -> dict[str, Any]:
    n = tn.node
    return {"root": str(n.root), "container": n.container, "docker_host": n.docker_host, "port": tn.https_port,
            "name": NAME}


def served_sha256(port: int) -> str:
    return hashlib.sha256(served_cert_der("127.0.0.1", port, NAME, timeout=20)).hexdigest()


def url_file(tmp_path: Path) -> str:
    path = tmp_path / "webhook.url"
    path.write_text("https://hooks.example.test/T000/secret-token\n")
    path.chmod(0o600)
    return str(path)


# ---- the pure parts: given values, password sources ----------------------------------------------


def test_deploy_given_records_only_what_was_given_and_replays_over_the_record(tmp_path, caplog):
    node = sesam_tls.Node.from_settings(root=str(tmp_path), container="web", docker_host="unix:///d.sock", env={})
    given = sesam_tls.DeployGiven(verify="127.0.0.1:8443", metrics_file="m.prom", restart=False,
                                  deploy_hook="true", hook_env=("PATH",), secret_env=("PW",))
    env = {"HTTPS_PROXY": "http://proxy:3128", "HTTP_PROXY": "http://user:pw@proxy:3128"}
    with caplog.at_level(logging.WARNING, logger="sesam_tls"):
        settings, options = given.for_new_certificate(node, env)
    assert (settings.verify, settings.restart, settings.container, settings.docker_host) == \
        ("127.0.0.1:8443", False, "web", "unix:///d.sock")
    assert settings.metrics_file == os.path.abspath("m.prom")
    assert settings.proxy.https_proxy == "http://proxy:3128" and settings.proxy.http_proxy is None  # a password
    assert "HTTP_PROXY carries a password" in caplog.text
    assert (options.restart, options.verify, options.reload_mode, options.timeout) == (False, "127.0.0.1:8443",
                                                                                       "auto", 30.0)
    assert (options.deploy_hook, options.hook_env, options.secret_env) == ("true", ("PATH",), ("PW",))
    # renew: what is given wins for this run, the record fills in the rest
    recorded = sesam_tls.DeployGiven(reload_mode="restart", timeout=9.0, verify="127.0.0.1:1").settings()
    replayed = sesam_tls.DeployGiven(verify="127.0.0.1:2").options(recorded)
    assert (replayed.verify, replayed.reload_mode, replayed.timeout, replayed.restart) == \
        ("127.0.0.1:2", "restart", 9.0, True)


def test_password_sources_read_now_and_never_show_the_secret(tmp_path, monkeypatch, caplog):
    pw = tmp_path / "pw"
    pw.write_bytes(g.PASSWORD + b"\r\n")
    pw.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="sesam_tls"):
        from_file = sesam_tls.Password.given(file=str(pw))
    assert from_file("x.p12") == g.PASSWORD
    assert "`password_file`" in caplog.text and "readable by everyone" in caplog.text
    assert g.PASSWORD.decode() not in repr(from_file)
    monkeypatch.setenv("LIB_OPS_PW", "from-env")
    assert sesam_tls.Password.given(env="LIB_OPS_PW")("x") == b"from-env"
    assert sesam_tls.Password.given(stream=io.BytesIO(b"line\nrest"))("x") == b"line"
    asked: list[str] = []
    assert sesam_tls.Password.given(ask=lambda source: asked.append(source) or b"typed")("x.p12") == b"typed"
    assert asked == ["x.p12"]
    assert sesam_tls.Password.given()("x.p12") is None  # nobody to ask: an encrypted input is refused
    with pytest.raises(UsageError, match="`password_file` .*cannot read it"):
        sesam_tls.Password.given(file=str(tmp_path / "missing"))
    monkeypatch.delenv("LIB_OPS_PW")
    with pytest.raises(UsageError, match="`password_env` LIB_OPS_PW: the environment variable is not set"):
        sesam_tls.Password.given(env="LIB_OPS_PW")


def test_desired_from_bytes_names_where_it_came_from_never_the_text():
    with pytest.raises(UsageError, match="no desired state on stdin"):
        sesam_tls.Desired.from_bytes(b"  ", where="on stdin")
    with pytest.raises(UsageError, match=r"the desired state in d.json is not JSON \(") as caught:
        sesam_tls.Desired.from_bytes(b'{"eab_hmac": "s3cret"', where="in d.json")
    assert "s3cret" not in str(caught.value)
    desired = sesam_tls.Desired.from_json({"provider": "selfsigned", "names": ["Node.Example.TEST"]})
    assert desired.names == ("node.example.test",)


# ---- import ---------------------------------------------------------------------------------------


@pytest.mark.integration
def test_import_a_pem_pair_through_the_library_alone(node_factory, tmp_path):  # noqa: F811
    tn = node_factory(container=True)
    pki = g.pki([NAME], now=dt.datetime.now(dt.timezone.utc))
    cert = tmp_path / "cert.pem"
    cert.write_bytes(g.pem(pki.leaf, pki.inter.cert))
    key = tmp_path / "key.pem"
    key.write_bytes(g.key_bytes(pki.key))
    key.chmod(0o600)
    metrics = tmp_path / "metrics" / "sesam_tls.prom"
    metrics.parent.mkdir()
    values = {**node_values(tn), "cert": str(cert), "key": str(key), "metrics": str(metrics),
              "url_file": url_file(tmp_path)}
    out = library("""
        settings, options = sesam_tls.DeployGiven(
            verify=f"127.0.0.1:{V['port']}", metrics_file=V["metrics"]).for_new_certificate(node, {})
        outcome = sesam_tls.import_certificate(V["cert"], key_file=V["key"], node=node, options=options,
                                               settings=settings, domains=[V["name"]], notify_url_file=V["url_file"])
        assert type(outcome) is sesam_tls.Outcome, type(outcome)
        assert outcome.deployment.verified and outcome.record.provider == "import"
        print(json.dumps(outcome.to_json()))
    """, values)
    assert out["result"] == "deployed" and out["provider"] == "import"
    assert out["names"] == [NAME] and out["deployment"]["verified"] is True and "config_changed" in out
    fp = hashlib.sha256(g.der(pki.leaf)).hexdigest()
    assert out["fingerprint_sha256"] == fp
    assert served_sha256(tn.https_port) == fp
    # the library's steps after the deployment: the recorded metrics file, the webhook's file recorded
    assert 'sesam_tls_certificate_ready_status{names="node.example.test",provider="import",condition="True"} 1' \
        in metrics.read_text()
    record = json.loads(tn.node.metadata_path.read_text())
    assert record["notify"]["url_from"] == {"kind": "file", "name": values["url_file"]}
    assert "secret-token" not in tn.node.metadata_path.read_text()


@pytest.mark.integration
def test_import_a_password_protected_pkcs12_with_the_password_from_a_file(node_factory, tmp_path):  # noqa: F811
    tn = node_factory(container=True)
    before = served_sha256(tn.https_port)
    pki = g.pki([NAME], now=dt.datetime.now(dt.timezone.utc))
    p12 = tmp_path / "node.pfx"
    p12.write_bytes(g.p12(pki.key, pki.leaf, [pki.root.cert, pki.inter.cert], password=g.PASSWORD))
    pw = tmp_path / "pfx.pw"
    pw.write_bytes(g.PASSWORD + b"\n")
    pw.chmod(0o600)
    values = {**node_values(tn), "p12": str(p12), "pw": str(pw)}
    out = library("""
        from sesam_tls import DeployOptions, ImportReport, Password, import_certificate

        # check only: the typed report, nothing written
        report = import_certificate(V["p12"], password=Password.given(file=V["pw"]), node=node,
                                    domains=[V["name"]], check_only=True)
        assert isinstance(report, ImportReport) and report.ok, report.errors
        checked = report.to_json()
        outcome = import_certificate(V["p12"], password=Password.given(file=V["pw"]), node=node,
                                     domains=[V["name"]], options=DeployOptions(verify=f"127.0.0.1:{V['port']}"))
        assert isinstance(outcome, sesam_tls.Outcome)
        print(json.dumps({"checked": checked, "deployed": outcome.to_json()}))
    """, values)
    fp = hashlib.sha256(g.der(pki.leaf)).hexdigest()
    checked = out["checked"]
    assert checked["result"] == "ok" and checked["errors"] == []
    assert checked["certificate"]["fingerprint_sha256"] == fp and checked["certificate"]["names"] == [NAME]
    assert checked["chain"] == [pki.inter.cert.subject.rfc4514_string()] and checked["root_dropped"] is True
    assert out["deployed"]["fingerprint_sha256"] == fp and out["deployed"]["deployment"]["verified"] is True
    assert before != fp and served_sha256(tn.https_port) == fp


# ---- renew ----------------------------------------------------------------------------------------


def _issue_self_signed(tn: Any, metrics: Path, *, days: int = 30) -> Any:
    """The managed certificate the renewals start from (set up in this process, through the library)."""
    node = tn.node
    given = sesam_tls.DeployGiven(metrics_file=str(metrics),
                                  verify=f"127.0.0.1:{tn.https_port}" if tn.https_port else None,
                                  restart=None if tn.https_port else False)
    settings, options = given.for_new_certificate(node, {})
    return sesam_tls.issue(sesam_tls.CertRequest.build([NAME], days=days), sesam_tls.SelfSigned(), node=node,
                           options=options, settings=settings)


RENEW = """
    result = sesam_tls.renew_replayed(node, env={}, **V["kwargs"])
    assert isinstance(result, sesam_tls.RenewResult)
    print(json.dumps({"json": result.to_json(), "status": result.status,
                      "serial": result.record.certificate.serial if result.record else None}))
"""


def test_renew_with_nothing_due_through_the_library_alone(node_factory, tmp_path):  # noqa: F811
    tn = node_factory()
    metrics = tmp_path / "renew.prom"
    outcome = _issue_self_signed(tn, metrics, days=365)
    metrics.unlink()  # issue wrote it: the renewal's run writes it again, from the record
    out = library(RENEW, {**node_values(tn), "kwargs": {}})
    assert out["status"] == "not-due" and out["json"]["exit_code"] == 0
    assert out["json"]["result"] == "not-due" and out["json"]["message"].startswith("not due: ")
    assert out["serial"] == outcome.record.certificate.serial
    assert "sesam_tls_last_run_timestamp_seconds" in metrics.read_text()  # the recorded metrics file, replayed


@pytest.mark.integration
def test_a_due_self_signed_renewal_on_a_real_nginx_through_the_library_alone(node_factory, tmp_path):  # noqa: F811
    tn = node_factory(container=True)
    metrics = tmp_path / "renew.prom"
    first = _issue_self_signed(tn, metrics, days=30)
    assert served_sha256(tn.https_port) == first.record.certificate.fingerprint_sha256
    # 30 days left, fewer than 60: due; the verify address and metrics file come from the record
    out = library(RENEW, {**node_values(tn), "kwargs": {"days": 60}})
    assert out["status"] == "renewed" and out["json"]["exit_code"] == 0, out
    assert out["json"]["message"].startswith(f"renewed {NAME}: serial ")
    assert out["serial"] != first.record.certificate.serial
    record = json.loads(tn.node.metadata_path.read_text())
    assert record["deployment"]["verified"] is True  # replayed --verify, by TLS handshake
    served = served_sha256(tn.https_port)
    assert served == record["certificate"]["fingerprint_sha256"] != first.record.certificate.fingerprint_sha256
    assert record["certificate"]["serial"] == out["serial"]
    assert "sesam_tls_renewal_failures" in metrics.read_text()


# ---- ensure ---------------------------------------------------------------------------------------


@pytest.mark.integration
def test_ensure_from_stdin_through_the_library_alone(node_factory, tmp_path):  # noqa: F811
    tn = node_factory(container=True)
    own = served_sha256(tn.https_port)
    desired = {"provider": "selfsigned", "names": [NAME], "days": 90,
               "deploy": {"verify": f"127.0.0.1:{tn.https_port}", "metrics_file": str(tmp_path / "e.prom")}}
    out = library("""
        desired = sesam_tls.Desired.from_file("-")
        results = [sesam_tls.ensure(node, desired, check=True), sesam_tls.ensure(node, desired),
                   sesam_tls.ensure(node, desired)]
        assert all(isinstance(r, sesam_tls.EnsureResult) for r in results)
        print(json.dumps([r.to_json() for r in results]))
    """, node_values(tn), stdin=json.dumps(desired))
    check, done, again = out
    assert check["check"] is True and check["changed"] is True and check["actions"] == ["issue"]
    assert check["after"]["serial"] == "(new)"
    assert done["changed"] is True and done["actions"] == ["issue"] and done["check"] is False
    assert again["changed"] is False and again["actions"] == [] and again["after"] == done["after"]
    served = served_sha256(tn.https_port)
    assert served == done["after"]["fingerprint_sha256"] != own
    assert done["after"]["settings"]["verify"] == f"127.0.0.1:{tn.https_port}"
    assert (tmp_path / "e.prom").exists()
