"""``sesam_tls.import_certificate`` for Python callers, on a fixed ``now``."""

from __future__ import annotations

import json
import logging

import pytest

import sesam_tls
from sesam_tls.errors import InputError, UsageError
from sesam_tls.validate import Report

from . import certgen as g
from .helpers import make_root, tree_digest

P = g.pki(["node.example.com", "alt.example.com"])
FILES_ONLY = sesam_tls.DeployOptions(restart=False)


@pytest.fixture
def node(tmp_path):
    return sesam_tls.Node.from_settings(root=str(make_root(tmp_path)), env={})


@pytest.fixture
def warnings():
    """Warnings on the sesam_tls logger (the CLI may have turned propagation off)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.WARNING)
    logger = logging.getLogger("sesam_tls")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_check_only_returns_the_report_and_logs_warnings(tmp_path, node, warnings):
    soon_key, soon = P.inter.leaf(not_after=g.NOW + 3 * g.DAY)
    (tmp_path / "c.pem").write_bytes(g.pem(soon, P.inter.cert) + g.key_bytes(soon_key))
    before = tree_digest(node.root)
    report = sesam_tls.import_certificate(tmp_path / "c.pem", node=node, check_only=True, now=g.NOW)
    assert isinstance(report, Report) and report.ok
    assert [r.getMessage() for r in warnings] == [report.warnings[0].message]
    assert "expires in 3 days" in warnings[0].getMessage()
    assert tree_digest(node.root) == before


def test_deploys_and_records_where_it_came_from(tmp_path, node):
    (tmp_path / "c.pem").write_bytes(g.pem(P.leaf, P.inter.cert))
    (tmp_path / "k.pem").write_bytes(g.key_bytes(P.key, password=g.PASSWORD))
    outcome = sesam_tls.import_certificate(
        tmp_path / "c.pem",
        key_file=tmp_path / "k.pem",
        password=g.PASSWORD,
        node=node,
        options=FILES_ONLY,
        domains=["alt.example.com"],
        now=g.NOW,
    )
    assert isinstance(outcome, sesam_tls.Outcome)
    assert outcome.bundle.leaf == P.leaf and outcome.bundle.chain == (P.inter.cert,)
    meta = json.loads(node.metadata_path.read_text())
    assert meta["provider"] == "import"
    assert meta["request"]["names"] == ["alt.example.com"]
    assert meta["provider_settings"] == {
        "cert_file": str(tmp_path / "c.pem"),
        "key_file": str(tmp_path / "k.pem"),
        "chain_file": None,
    }
    assert meta["deployment"]["deployed_at"] == g.NOW.isoformat()
    assert g.PASSWORD.decode() not in node.metadata_path.read_text()


def test_refusal_raises_before_anything_is_written(tmp_path, node):
    (tmp_path / "c.pem").write_bytes(g.pem(P.leaf, P.inter.cert) + g.key_bytes(P.key))
    before = tree_digest(node.root)
    with pytest.raises(
        InputError,
        match=r"c\.pem: the certificate 'CN=node\.example\.com' does not cover 'x\.example\.com'",
    ):
        sesam_tls.import_certificate(
            tmp_path / "c.pem", node=node, options=FILES_ONLY, domains=["x.example.com"], now=g.NOW
        )
    assert tree_digest(node.root) == before


def test_domains_may_be_ip_addresses_and_are_checked(tmp_path, node):
    (tmp_path / "c.pem").write_bytes(g.pem(P.leaf, P.inter.cert) + g.key_bytes(P.key))
    report = sesam_tls.import_certificate(
        tmp_path / "c.pem", node=node, domains=["10.0.0.5"], check_only=True, now=g.NOW
    )
    assert [f.code for f in report.errors] == ["name-not-covered"]
    with pytest.raises(UsageError):
        sesam_tls.import_certificate(
            tmp_path / "c.pem", node=node, domains=["not a name"], check_only=True, now=g.NOW
        )


def test_imported_is_a_provider(tmp_path):
    (tmp_path / "c.pem").write_bytes(g.pem(P.leaf, P.inter.cert) + g.key_bytes(P.key))
    provider: sesam_tls.Provider = sesam_tls.Imported(tmp_path / "c.pem", clock=lambda: g.NOW)
    assert provider.name == "import"
    assert provider.issue(sesam_tls.CertRequest(names=("node.example.com",))).leaf == P.leaf
