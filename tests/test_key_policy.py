"""Keys on renewal (issue 12, item 5): a self-signed certificate keeps its key (clients pin it)
unless ``--new-key``; an ACME certificate gets a new key unless ``--reuse-key``; the choice
is recorded and replayed by the next plain ``renew``."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sesam_tls import CertRequest, DeployOptions, Node, SelfSigned, issue
from sesam_tls.cli import main
from sesam_tls.state import load_metadata
from sesam_tls.store import SslFolder

from .acme_fixtures import NAME, acme_for, node_factory  # noqa: F401 - fixture
from .helpers import make_root

FILES_ONLY = DeployOptions(restart=False)


def spki(node: Node) -> bytes:
    """The served certificate's SubjectPublicKeyInfo, DER: what a client pins."""
    cert = x509.load_pem_x509_certificate(SslFolder(node.ssl_dir).read_pair()[0])
    return cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)


def serial(node: Node) -> int:
    return x509.load_pem_x509_certificate(SslFolder(node.ssl_dir).read_pair()[0]).serial_number


def renew_cli(node: Node, *extra: str) -> int:
    return main(["renew", "--force", "--root", str(node.root), "--no-restart", "-q", *extra])


@pytest.fixture
def self_signed_node(tmp_path):
    node = Node.from_settings(root=str(make_root(tmp_path)), env={})
    issue(CertRequest.build(["node.example.test"]), SelfSigned(), node=node, options=FILES_ONLY)
    return node


def test_a_self_signed_renewal_keeps_the_key_and_new_key_rotates_it(self_signed_node):
    node = self_signed_node
    pinned, first = spki(node), serial(node)
    assert load_metadata(node.metadata_path)["request"]["key_policy"] == "reuse"

    assert renew_cli(node) == 0
    assert serial(node) != first  # a new certificate...
    assert spki(node) == pinned  # ...for the same key

    assert renew_cli(node, "--new-key") == 0
    rotated = spki(node)
    assert rotated != pinned
    # --new-key is for this run: the next renewal keeps the new key, as recorded.
    assert load_metadata(node.metadata_path)["request"]["key_policy"] == "reuse"
    assert renew_cli(node) == 0
    assert spki(node) == rotated


def test_no_reuse_key_is_recorded_and_replayed(self_signed_node):
    node = self_signed_node
    assert renew_cli(node, "--no-reuse-key") == 0
    assert load_metadata(node.metadata_path)["request"]["key_policy"] == "new"
    before = spki(node)
    assert renew_cli(node) == 0
    assert spki(node) != before


def test_reuse_with_an_unreadable_live_key_fails_and_says_how_to_proceed(self_signed_node, capsys):
    node = self_signed_node
    live = node.ssl_dir / "live" / "privkey.pem"
    target = live.resolve()
    target.write_bytes(b"not a key\n")
    assert renew_cli(node) != 0
    err = capsys.readouterr().err
    assert "--new-key" in err


@pytest.mark.integration
def test_an_acme_renewal_makes_a_new_key_unless_reuse_key(pebble, node_factory):
    t = node_factory()
    issue(CertRequest.build([NAME]), acme_for(pebble, t.node), node=t.node, options=FILES_ONLY)
    assert load_metadata(t.node.metadata_path)["request"]["key_policy"] == "new"
    first = spki(t.node)

    assert renew_cli(t.node) == 0
    second = spki(t.node)
    assert second != first

    assert renew_cli(t.node, "--reuse-key") == 0
    assert spki(t.node) == second
    assert load_metadata(t.node.metadata_path)["request"]["key_policy"] == "reuse"
    third_serial = serial(t.node)
    assert renew_cli(t.node) == 0  # replayed: the key is kept again
    assert spki(t.node) == second and serial(t.node) != third_serial


def test_issue_reuse_key_keeps_the_live_key_and_records_it(self_signed_node):
    node = self_signed_node
    pinned = spki(node)
    assert main(["issue", "--self-signed", "-d", "node.example.test", "--reuse-key", "--root", str(node.root),
                 "--no-restart", "-q"]) == 0
    assert spki(node) == pinned
    assert main(["issue", "--self-signed", "-d", "node.example.test", "--no-reuse-key", "--root",
                 str(node.root), "--no-restart", "-q"]) == 0
    assert spki(node) != pinned
    assert load_metadata(node.metadata_path)["request"]["key_policy"] == "new"


def test_a_record_without_a_key_policy_keeps_a_self_signed_key(self_signed_node):
    """Records written before key policies: the provider's default applies."""
    import json

    node = self_signed_node
    meta = json.loads(node.metadata_path.read_text())
    del meta["request"]["key_policy"]
    node.metadata_path.write_text(json.dumps(meta))
    pinned = spki(node)
    assert renew_cli(node) == 0
    assert spki(node) == pinned
