"""Time (files only, no Docker, the real clock plus offsets).

A deployed certificate that is not yet valid (a run with the clock years
ahead) needs attention in ``status`` and ``status --warn-days``, and is due
in ``renew``.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sesam_tls import CertRequest, DeployOptions, Node, SelfSigned, issue
from sesam_tls.api import status
from sesam_tls.cli import main
from sesam_tls.state import load_metadata

from .helpers import make_root

NAME = "node.example.test"
FILES_ONLY = DeployOptions(restart=False)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@pytest.fixture
def node(tmp_path):
    root = make_root(tmp_path)
    node = Node.from_settings(root=str(root), env={})
    issue(CertRequest.build([NAME], days=90), SelfSigned(), node=node, options=FILES_ONLY)
    return node


# a certificate from the future -----------------------------------------------------------------


@pytest.fixture
def from_the_future(tmp_path):
    """A node that got a self-signed certificate while its clock was three years ahead."""
    root = make_root(tmp_path)
    node = Node.from_settings(root=str(root), env={})
    ahead = now() + dt.timedelta(days=3 * 365)
    issue(CertRequest.build([NAME], days=90), SelfSigned(clock=lambda: ahead), node=node, options=FILES_ONLY,
          now=ahead)
    return node


def test_status_calls_a_not_yet_valid_certificate_attention(from_the_future, capsys):
    info = status(from_the_future)
    assert info["deployed"]["not_yet_valid"] is True
    assert info["renewal"]["attention"] is True and info["renewal"]["due"] is True
    assert "not valid before" in info["renewal"]["reason"]
    assert main(["status", "--root", str(from_the_future.root), "--warn-days", "14"]) == 10
    assert "not valid before" in capsys.readouterr().out


def test_renew_renews_a_not_yet_valid_certificate(from_the_future, capsys):
    before = load_metadata(from_the_future.metadata_path)["certificate"]["serial"]
    code = main(["renew", "--root", str(from_the_future.root), "--no-restart", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["result"] == "renewed"
    meta = load_metadata(from_the_future.metadata_path)
    assert meta["certificate"]["serial"] != before
    assert dt.datetime.fromisoformat(meta["certificate"]["not_before"]) <= now()


def test_a_valid_certificate_is_neither_attention_nor_due(node):
    info = status(node)
    assert info["deployed"]["not_yet_valid"] is False
    assert info["renewal"]["attention"] is False and info["renewal"]["due"] is False

