import os
import stat

import pytest

from sesam_tls.bundle import Bundle
from sesam_tls.errors import StorageError
from sesam_tls.providers.base import CertRequest
from sesam_tls.providers.selfsigned import SelfSigned
from sesam_tls.store import SslFolder


def new_bundle(name="node.example.test"):
    return SelfSigned().issue(CertRequest.build([name]))


def served(folder: SslFolder) -> Bundle:
    cert, key = folder.read_pair()
    return Bundle.from_pem(cert, key)  # raises if key and cert do not match


def test_first_deployment_makes_relative_links_inside_the_folder(tmp_path):
    folder = SslFolder(tmp_path / "ssl")
    b = new_bundle()
    version = folder.stage(b)
    assert folder.read_pair() is None  # staged only: nginx sees nothing yet
    assert folder.activate(version) is None
    for name in ("fullchain.pem", "privkey.pem", "live"):
        target = os.readlink(folder.path / name)
        assert not os.path.isabs(target)
        assert os.path.realpath(folder.path / name).startswith(str(folder.path.resolve()))
    assert served(folder).fingerprint == b.fingerprint
    assert stat.S_IMODE(os.stat(folder.path / "privkey.pem").st_mode) == 0o600


def test_swap_and_rollback(tmp_path):
    folder = SslFolder(tmp_path / "ssl")
    first, second = new_bundle("a.example"), new_bundle("b.example")
    v1 = folder.stage(first)
    folder.activate(v1)
    v2 = folder.stage(second)
    assert folder.activate(v2) == v1
    assert served(folder).fingerprint == second.fingerprint
    folder.activate(v1)
    assert served(folder).fingerprint == first.fingerprint


def test_operator_pair_is_adopted_and_stays_consistent(tmp_path):
    ssl = tmp_path / "ssl"
    ssl.mkdir()
    own = new_bundle("own.example")
    (ssl / "fullchain.pem").write_bytes(own.fullchain_pem())
    (ssl / "privkey.pem").write_bytes(own.key_pem())
    folder = SslFolder(ssl)
    previous = folder.adopt()
    assert previous is not None and previous.endswith("-adopted")
    # after adoption the files may still be plain, but they match
    assert served(folder).fingerprint == own.fingerprint
    new = new_bundle()
    assert folder.activate(folder.stage(new)) == previous
    assert served(folder).fingerprint == new.fingerprint
    folder.activate(previous)
    assert served(folder).fingerprint == own.fingerprint
    assert folder.read_version(previous)[1] == own.key_pem()


def test_rollback_to_nothing_removes_the_pair(tmp_path):
    folder = SslFolder(tmp_path / "ssl")
    folder.activate(folder.stage(new_bundle()))
    folder.activate(None)
    assert folder.read_pair() is None


def test_prune_keeps_live_previous_and_newest(tmp_path):
    folder = SslFolder(tmp_path / "ssl")
    versions = []
    for i in range(6):
        versions.append(folder.stage(new_bundle(f"n{i}.example")))
    folder.activate(versions[0])
    folder.prune(keep=(versions[0], versions[1]), retain=2)
    assert set(folder.version_ids()) == {versions[0], versions[1], versions[4], versions[5]}


def test_planted_symlink_for_versions_is_refused(tmp_path):
    ssl = tmp_path / "ssl"
    ssl.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, ssl / ".versions")
    with pytest.raises(StorageError, match="not a directory"):
        SslFolder(ssl).stage(new_bundle())
    assert list(elsewhere.iterdir()) == []


def test_sweep_removes_leftovers(tmp_path):
    folder = SslFolder(tmp_path / "ssl")
    folder.activate(folder.stage(new_bundle()))
    (folder.path / ".live.sesam-tls-tmp-abc").symlink_to(".versions/x")
    (folder.versions / ".sesam-tls-tmp-half").mkdir()
    folder.sweep_temp()
    assert not [p for p in folder.path.iterdir() if "tmp" in p.name]
    assert not [p for p in folder.versions.iterdir() if "tmp" in p.name]
