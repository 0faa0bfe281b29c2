"""No silent provider switch (issue 12, item 6): a certificate from another provider than the
managed one is refused, with nothing changed on disk, until ``--replace`` is given; the
operator's own pair (not managed) is replaced on the first run as before, kept, and said so."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from sesam_tls import DeployOptions, issue
from sesam_tls.cli import main
from sesam_tls.errors import UsageError
from sesam_tls.providers.base import CertRequest
from sesam_tls.state import load_metadata
from sesam_tls.store import SslFolder

from . import certgen as g
from .acme_fixtures import NAME, acme_for, node_factory  # noqa: F401 - fixture
from .helpers import make_root, seed_own_pair, tree_digest

NOW = dt.datetime.now(dt.timezone.utc)
FILES_ONLY = DeployOptions(restart=False)


def write_pki(folder: Path, name: str) -> tuple[str, str]:
    """An operator's commercial-looking certificate (root -> intermediate -> leaf) and its key."""
    pki = g.pki([name], now=NOW)
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(g.pem(pki.leaf, pki.inter.cert))
    key.write_bytes(g.key_bytes(pki.key))
    return str(cert), str(key)


def test_self_signed_over_an_imported_certificate_is_refused_until_replace(tmp_path, capsys):
    root = make_root(tmp_path)
    cert, key = write_pki(tmp_path / "in", "node.example.com")
    assert main(["import", "--cert", cert, "--key", key, "-d", "node.example.com", "--root", str(root),
                 "--no-restart", "-q"]) == 0
    capsys.readouterr()
    before = tree_digest(root)
    expires = load_metadata(root / "var/lib/sesam-tls/certificate.json")["certificate"]["not_after"][:10]

    code = main(["issue", "--self-signed", "-d", "node.example.com", "--root", str(root), "--no-restart", "-q"])
    err = capsys.readouterr().err
    assert code == UsageError.exit_code == 2
    assert tree_digest(root) == before
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "imported certificate" in lines[0] and "node.example.com" in lines[0] and expires in lines[0]
    assert "--replace" in lines[0]

    assert main(["issue", "--self-signed", "-d", "node.example.com", "--root", str(root), "--no-restart",
                 "--replace", "-q"]) == 0
    meta = load_metadata(root / "var/lib/sesam-tls/certificate.json")
    assert meta["provider"] == "selfsigned"
    assert len(SslFolder(root / "sesam/nginx/conf/ssl").version_ids()) == 2  # the imported one is kept


def test_the_same_provider_needs_no_replace(tmp_path):
    root = make_root(tmp_path)
    for _ in range(2):
        assert main(["issue", "--self-signed", "-d", "node.example.com", "--root", str(root), "--no-restart",
                     "-q"]) == 0


def test_the_operators_own_pair_is_replaced_on_the_first_run_kept_and_said_so(tmp_path, capsys):
    root = make_root(tmp_path)
    ssl, own = seed_own_pair(root, "node.example.com")
    assert main(["issue", "--self-signed", "-d", "node.example.com", "--root", str(root), "--no-restart"]) == 0
    err = capsys.readouterr().err
    assert "not managed by sesam-tls" in err and "kept" in err and own.serial in err
    kept = [v for v in SslFolder(ssl).version_ids() if v.endswith("adopted")]
    assert len(kept) == 1
    assert SslFolder(ssl).read_version(kept[0])[0] == own.fullchain_pem()


@pytest.mark.integration
def test_import_over_an_acme_certificate_is_refused_until_replace(pebble, node_factory, tmp_path, capsys):
    t = node_factory()
    issue(CertRequest.build([NAME]), acme_for(pebble, t.node), node=t.node, options=FILES_ONLY)
    root = t.node.root
    cert, key = write_pki(tmp_path / "in", NAME)
    before = tree_digest(root)
    code = main(["import", "--cert", cert, "--key", key, "--root", str(root), "--no-restart", "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert tree_digest(root) == before
    assert len(err.strip().splitlines()) == 1 and "ACME certificate" in err and NAME in err and "--replace" in err

    assert main(["import", "--cert", cert, "--key", key, "--root", str(root), "--no-restart", "--replace",
                 "-q"]) == 0
    assert load_metadata(t.node.metadata_path)["provider"] == "import"


def test_the_api_refuses_too(tmp_path):
    from sesam_tls import Node, SelfSigned, import_certificate

    root = make_root(tmp_path)
    node = Node.from_settings(root=str(root), env={})
    cert, key = write_pki(tmp_path / "in", "node.example.com")
    import_certificate(cert, key_file=key, node=node, options=FILES_ONLY, domains=["node.example.com"])
    with pytest.raises(UsageError, match="give --replace"):
        issue(CertRequest.build(["node.example.com"]), SelfSigned(), node=node, options=FILES_ONLY)
    issue(CertRequest.build(["node.example.com"]), SelfSigned(), node=node, options=FILES_ONLY, replace=True)
