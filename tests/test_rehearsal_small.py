"""Rehearsals without the testbed: which CA finalizes, self-signed and imported nodes, nothing changed."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sesam_tls import CertRequest, DeployOptions, Node, SelfSigned, issue
from sesam_tls.cli import main
from sesam_tls.providers.acme_net import LETSENCRYPT_STAGING
from sesam_tls.state import load_record, save_record

from .helpers import make_root, tree_digest

FILES_ONLY = DeployOptions(restart=False)
NAME = "node.example.test"


class Recording:
    """Provider seam: an ACME provider that records how it was asked to rehearse (its "certificate"
    is self-signed, so it goes through the gate under that name)."""

    name = "selfsigned"

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.asked: list[bool] = []

    def rehearse(self, request, *, finalize):
        self.asked.append(finalize)
        if finalize:
            return SelfSigned().issue(request)
        from sesam_tls.keys import generate_key
        from sesam_tls.providers.acme import Rehearsed

        return Rehearsed(generate_key(request.key_type), "validated; the order was not finalized")


def test_only_a_staging_directory_is_finalized(tmp_path):
    from sesam_tls.rehearse import rehearse

    node = Node.from_settings(root=str(make_root(tmp_path)), env={})
    request = CertRequest.build([NAME])
    staging, private = Recording(LETSENCRYPT_STAGING), Recording("https://acme.example.internal/dir")
    assert "(not deployed)" in rehearse(node, request, staging, FILES_ONLY).message
    result = rehearse(node, request, private, FILES_ONLY)
    assert (staging.asked, private.asked) == ([True], [False])
    assert result.bundle is None and "not finalized" in result.message and "nginx -t skipped" in result.message


def test_self_signed_dry_run_with_nothing_due_rehearses_and_changes_nothing(tmp_path, capsys):
    root = make_root(tmp_path)
    node = Node.from_settings(root=str(root), env={})
    issue(CertRequest.build([NAME]), SelfSigned(), node=node, options=FILES_ONLY)
    before = tree_digest(root)
    capsys.readouterr()
    assert main(["renew", "--dry-run", "--no-restart", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dry run succeeded") and "nothing was deployed or recorded" in out
    assert tree_digest(root) == before


def test_imported_dry_run_says_there_is_nothing_to_rehearse(tmp_path, capsys):
    root = make_root(tmp_path)
    node = Node.from_settings(root=str(root), env={})
    issue(CertRequest.build([NAME]), SelfSigned(), node=node, options=FILES_ONLY)
    rec = load_record(node.metadata_path).replace(provider="import", provider_settings=None)
    save_record(node.metadata_path, rec)
    assert main(["renew", "--dry-run", "--no-restart", "--root", str(root)]) == 0
    assert "nothing to rehearse" in capsys.readouterr().out
    not_after = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3)).isoformat()
    save_record(node.metadata_path, rec.replace(certificate=dataclasses.replace(rec.certificate, not_after=not_after)))
    assert main(["renew", "--dry-run", "--no-restart", "--root", str(root)]) == 10
    assert "import a new one" in capsys.readouterr().err
