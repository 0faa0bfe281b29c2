"""``status`` and ``renew`` say why they exit non-zero, ``--json`` agrees with the exit code,
and the metrics file carries what an alert rule needs (files-only node: no testbed)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time

import pytest

from sesam_tls import CertRequest, DeployOptions, Node, SelfSigned, issue
from sesam_tls.bundle import Bundle
from sesam_tls.cli import main
from sesam_tls.errors import IssuanceError
from sesam_tls.metrics import render_metrics
from sesam_tls.renew import renew
from sesam_tls.state import load_record, save_record
from sesam_tls.store import SslFolder

from .helpers import make_root, tree_digest

FILES_ONLY = DeployOptions(restart=False)
NAME = "node.example.test"


@pytest.fixture
def node(tmp_path):
    root = make_root(tmp_path)
    node = Node.from_settings(root=str(root), env={})
    issue(CertRequest.build([NAME], days=90), SelfSigned(), node=node, options=FILES_ONLY)
    return node


def make_imported(node, days_left: int) -> None:
    """The record says the certificate was imported and expires in ``days_left`` days."""
    rec = load_record(node.metadata_path)
    not_after = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days_left)).isoformat()
    save_record(node.metadata_path, rec.replace(provider="import", provider_settings=None,
                                                certificate=dataclasses.replace(rec.certificate, not_after=not_after)))


def status(node, capsys, *args: str) -> tuple[int, dict, list[str]]:
    code = main(["status", "--root", str(node.root), "--json", *args])
    out = capsys.readouterr()
    return code, json.loads(out.out), out.err.strip().splitlines()


def test_a_healthy_node_exits_0_and_says_no_attention(node, capsys):
    code, info, err = status(node, capsys)
    assert (code, info["attention"], info["reasons"], err) == (0, False, [], [])


def test_broken_agent_config_exits_4_with_one_line(node, capsys):
    node.agent_config.write_text('{"nginx": {')
    code, info, err = status(node, capsys)
    assert code == 4 and info["attention"] is True
    assert [r["exit_code"] for r in info["reasons"]] == [4]
    assert len(err) == 1 and str(node.agent_config) in err[0]
    assert main(["status", "--root", str(node.root)]) == 4
    out = capsys.readouterr()
    assert len(out.err.strip().splitlines()) == 1 and str(node.agent_config) in out.err
    assert "agent config:" in out.out  # the rest is still shown


def test_unreadable_record_exits_5_with_one_line_and_json(node, capsys):
    node.metadata_path.write_text("{not json")
    before = tree_digest(node.root)
    code, info, err = status(node, capsys)
    assert code == 5 and info["attention"] is True and info["managed"] is None
    assert [r["reason"] for r in info["reasons"]] == ["record-unreadable"]
    assert len(err) == 1 and str(node.metadata_path) in err[0]
    assert info["deployed"]["serial"]  # what is on disk is still reported
    assert tree_digest(node.root) == before


def test_warn_days_exit_says_why_and_json_agrees(node, capsys):
    code, info, err = status(node, capsys, "--warn-days", "100")
    assert code == 10 and info["attention"] is True
    assert [r["reason"] for r in info["reasons"]] == ["expiring"] and info["exit_code"] == 10
    assert len(err) == 1 and "fewer than 100 days" in err[0]
    assert main(["status", "--root", str(node.root), "--warn-days", "100"]) == 10
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_renewal_attention_shows_in_status_exit_and_json(node, capsys):
    make_imported(node, 3)
    not_after = Bundle.from_pem(*SslFolder(node.ssl_dir).read_pair()).not_after
    assert not_after > dt.datetime.now(dt.timezone.utc)
    code, info, err = status(node, capsys)
    assert code == 10 and info["renewal"]["attention"] is True and info["attention"] is True
    assert [r["reason"] for r in info["reasons"]] == ["imported-expiring"]
    assert len(err) == 1 and "import a new one" in err[0]


def test_renew_json_non_zero_also_prints_one_line(node, capsys):
    make_imported(node, 3)
    assert main(["renew", "--root", str(node.root), "--no-restart", "--json"]) == 10
    out = capsys.readouterr()
    assert json.loads(out.out)["exit_code"] == 10
    assert len(out.err.strip().splitlines()) == 1 and "import a new one" in out.err


def gauges(text: str) -> dict[str, tuple[str, float]]:
    """name -> (labels, value) for every sample line."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        head, value = line.rsplit(" ", 1)
        name, _, labels = head.partition("{")
        out.setdefault(name, []).append((labels.rstrip("}"), float(value)))
    return out


def test_metrics_carry_what_an_alert_rule_needs(node, tmp_path):
    metrics = tmp_path / "m.prom"
    before = time.time()
    result = renew(node, options=FILES_ONLY, metrics_file=metrics)
    assert result.status == "not-due"
    g = gauges(metrics.read_text())
    assert g["sesam_tls_certificate_renewal_timestamp_seconds"][0][1] == pytest.approx(result.decision.at.timestamp(), abs=1)
    assert g["sesam_tls_certificate_expiration_timestamp_seconds"][0][1] == \
        g["sesam_tls_certificate_not_after_timestamp_seconds"][0][1]
    assert before - 1 <= g["sesam_tls_last_run_timestamp_seconds"][0][1] <= time.time() + 1
    ready = dict(g["sesam_tls_certificate_ready_status"])
    assert any('condition="True"' in k and v == 1 for k, v in ready.items())
    assert [(labels, v) for labels, v in g["sesam_tls_attention"] if v == 1] == []

    # a failed renewal: attention with its reason, not ready; the last run moves on
    due = result.decision.at + dt.timedelta(minutes=1)

    class Failing:
        name = "selfsigned"

        def issue(self, request):
            raise IssuanceError("cannot reach the CA")

    renew(node, options=FILES_ONLY, now=due, metrics_file=metrics, provider_factory=lambda *a: Failing())
    renew(node, options=FILES_ONLY, now=due + dt.timedelta(seconds=10), metrics_file=metrics,
          provider_factory=lambda *a: Failing())
    g = gauges(metrics.read_text())
    assert ('reason="renewal-failing"', 1.0) in [(lab.split(",")[-1], v) for lab, v in g["sesam_tls_attention"]]
    assert g["sesam_tls_last_run_timestamp_seconds"][0][1] == pytest.approx(due.timestamp() + 10, abs=1)
    assert any('condition="False"' in k and v == 1 for k, v in g["sesam_tls_certificate_ready_status"])


def test_status_metrics_keep_the_last_renew_run_and_show_the_served_check(node, tmp_path):
    metrics = tmp_path / "m.prom"
    renew(node, options=FILES_ONLY, metrics_file=metrics)
    ran = gauges(metrics.read_text())["sesam_tls_last_run_timestamp_seconds"][0][1]
    time.sleep(1.1)
    assert main(["status", "--root", str(node.root), "--metrics-file", str(metrics), "-q"]) == 0
    g = gauges(metrics.read_text())
    assert g["sesam_tls_last_run_timestamp_seconds"][0][1] == ran  # status is not a renewal run
    served = render_metrics(load_record(node.metadata_path), served=False)
    assert gauges(served)["sesam_tls_certificate_served_status"][0][1] == 0
