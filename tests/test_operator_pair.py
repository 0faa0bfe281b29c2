"""The operator's own pair is never deleted (issue 11, item 2).

A pair the tool cannot take over as a version (an encrypted key that nginx
opens with ssl_password_file, the intermediate before the leaf, a key of
another certificate, or a real ``live`` folder holding the pair) is moved
aside, name, mode and content kept, and a rollback puts it back exactly.
The fault after the switch is a full disk at the agent config, files only.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sesam_tls.bundle import Bundle
from sesam_tls.cli import main
from sesam_tls.store import SslFolder

from . import certgen
from .helpers import make_root, tree_digest
from .test_faults import fill, tmpfs
from .testbed import free_port, served_cert_der

NAME = "node.example.test"
KINDS = ["encrypted-key", "intermediate-first", "other-key", "live-folder", "live-folder-plain-names"]


def plant(kind: str, ssl: Path) -> None:
    """The operator's pair, as they left it in the ssl folder."""
    now = dt.datetime.now(dt.timezone.utc)
    pki = certgen.pki([NAME], now=now)
    chain = certgen.pem(pki.leaf, pki.inter.cert)
    key = certgen.key_bytes(pki.key)
    ssl.mkdir(parents=True, exist_ok=True)
    where = ssl
    if kind.startswith("live-folder"):
        where = ssl / "live"
        where.mkdir(mode=0o750)
        if kind == "live-folder":
            (ssl / "fullchain.pem").symlink_to("live/fullchain.pem")
            (ssl / "privkey.pem").symlink_to("live/privkey.pem")
    if kind == "encrypted-key":
        key = certgen.key_bytes(pki.key, password=b"operator's passphrase")
    elif kind == "intermediate-first":
        chain = certgen.pem(pki.inter.cert, pki.leaf)
    elif kind == "other-key":
        key = certgen.key_bytes(certgen.ec_key())
    (where / "fullchain.pem").write_bytes(chain)
    (where / "privkey.pem").write_bytes(key)
    os.chmod(where / "fullchain.pem", 0o640)
    os.chmod(where / "privkey.pem", 0o400)
    if kind == "live-folder-plain-names":  # a copy made with cp -rL: the names are plain files too
        for name in ("fullchain.pem", "privkey.pem"):
            (ssl / name).write_bytes((where / name).read_bytes())
            os.chmod(ssl / name, 0o600)


def operator_view(ssl: Path) -> dict[str, str]:
    """The ssl folder as the operator left it: every entry but the tool's .versions."""
    return {k: v for k, v in tree_digest(ssl).items() if not k.startswith(".versions")}


def argv(root: Path) -> list[str]:
    return ["issue", "--self-signed", "-d", NAME, "--root", str(root), "--no-restart"]


@pytest.mark.parametrize("kind", KINDS)
def test_failed_run_puts_the_operators_pair_back_byte_for_byte(kind, tmp_path, capsys):
    root = make_root(tmp_path)
    ssl = root / "sesam/nginx/conf/ssl"
    plant(kind, ssl)
    before = operator_view(ssl)
    config = root / "etc/sesam-agent/config.json"
    body = config.read_bytes()
    with tmpfs(config.parent, "64k"):  # the agent config cannot be written: the switch is rolled back
        config.write_bytes(body)
        filler = fill(config.parent)
        assert main(argv(root)) == 7
        filler.unlink()
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]
    assert line.startswith("sesam-tls: error: ") and "no space left on device" in line, line
    assert "put back" in line and "fullchain.pem" in line, line  # says what is served now
    assert operator_view(ssl) == before


@pytest.mark.parametrize("kind", KINDS)
def test_successful_run_keeps_the_operators_pair_aside(kind, tmp_path, capsys):
    root = make_root(tmp_path)
    ssl = root / "sesam/nginx/conf/ssl"
    plant(kind, ssl)
    before = operator_view(ssl)
    assert main(argv(root)) == 0
    err = capsys.readouterr().err
    Bundle.from_pem(*SslFolder(ssl).read_pair())  # the new pair, matching
    found = re.search(r"moved .* aside to (\S+?)[;:,]? ", err)
    assert found, err
    aside = Path(found.group(1))
    assert aside.parent.parent == ssl and aside.is_dir()
    kept = tree_digest(aside)
    for name, digest in before.items():  # content, mode and kind of every entry, under the same name
        assert kept[name] == digest, name


@pytest.mark.integration
def test_real_nginx_serves_the_operators_live_folder_again_after_a_failed_run(tmp_path, nginx_container, docker_host,
                                                                               capsys):
    """``live`` is the operator's folder and nginx serves the pair in it; a run whose verification
    fails leaves the folder as it was and nginx, restarted on it, serves the operator's certificate."""
    root = make_root(tmp_path)
    ssl = root / "sesam/nginx/conf/ssl"
    plant("live-folder", ssl)
    own = x509.load_pem_x509_certificate((ssl / "live/fullchain.pem").read_bytes())
    port = free_port()
    name = nginx_container(ssl, port)
    assert served_cert_der("127.0.0.1", port, NAME) == own.public_bytes(serialization.Encoding.DER)
    before = operator_view(ssl)
    code = main(["issue", "--self-signed", "-d", NAME, "--root", str(root), "--container", name,
                 "--docker-host", docker_host, "--verify", f"127.0.0.1:{free_port()}", "--timeout", "5"])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 7, line
    assert "verification failed" in line and "put back the operator's own fullchain.pem" in line, line
    assert "nginx serves them again" in line, line
    assert operator_view(ssl) == before
    assert served_cert_der("127.0.0.1", port, NAME, timeout=10) == own.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("kind", ["encrypted-key", "live-folder"])
def test_ssl_folder_full_leaves_the_operators_pair_in_place(kind, tmp_path, capsys):
    root = make_root(tmp_path)
    ssl = root / "sesam/nginx/conf/ssl"
    with tmpfs(ssl, "128k"):
        plant(kind, ssl)
        filler = fill(ssl)
        before = {k: v for k, v in operator_view(ssl).items() if k != "filler"}
        assert main(argv(root)) == 5
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert "no space left on device" in line, line
        filler.unlink()
        assert operator_view(ssl) == before
