"""``sesam-tls import`` into a real nginx container: the served chain, by TLS handshake."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time

import pytest
from cryptography import x509

from sesam_tls.cli import main

from . import certgen as g
from .helpers import make_root, seed_own_pair, tree_digest
from .testbed import free_port

pytestmark = pytest.mark.integration

NAME = g.NAME


def served_chain(port: int, server_name: str = NAME, timeout: float = 20) -> list[x509.Certificate]:
    """Every certificate the server sends, in its order (Python 3.11's ssl shows only the leaf).

    ``openssl s_client -showcerts`` prints them as PEM blocks; cryptography
    parses the blocks, nothing reads openssl's text around them.
    """
    deadline = time.monotonic() + timeout
    while True:
        proc = subprocess.run(
            [
                "openssl",
                "s_client",
                "-connect",
                f"127.0.0.1:{port}",
                "-servername",
                server_name,
                "-showcerts",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
            check=False,
        )
        if b"-----BEGIN CERTIFICATE-----" in proc.stdout:
            return x509.load_pem_x509_certificates(proc.stdout)
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no handshake with 127.0.0.1:{port}: {proc.stderr.decode()[-300:]}"
            )
        time.sleep(0.1)


@pytest.fixture
def node(tmp_path, nginx_container, docker_host):
    """A node as the Sesam guide leaves it: the operator's own self-signed pair, nginx running."""
    root = make_root(tmp_path)
    ssl, own = seed_own_pair(root, NAME)
    port = free_port()
    container = nginx_container(ssl, port)
    assert served_chain(port)[0] == own.leaf
    args = ["--root", str(root), "--container", container, "--docker-host", docker_host]
    return root, port, args, own


def test_imported_pkcs12_is_served_leaf_then_intermediate(node, tmp_path, monkeypatch, capsys):
    root, port, args, _ = node
    pki = g.pki(now=dt.datetime.now(dt.timezone.utc))
    # The chain inside the .p12 in the wrong order, with the root: as exports often are.
    p12 = tmp_path / "node.pfx"
    p12.write_bytes(g.p12(pki.key, pki.leaf, [pki.root.cert, pki.inter.cert], password=g.PASSWORD))
    monkeypatch.setenv("NODE_PFX_PASSWORD", g.PASSWORD.decode())
    code = main(
        [
            "import",
            "--cert",
            str(p12),
            "--password-env",
            "NODE_PFX_PASSWORD",
            "--domain",
            NAME,
            "--verify",
            f"127.0.0.1:{port}",
            "--json",
            *args,
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert result["provider"] == "import" and result["deployment"]["verified"] is True
    assert served_chain(port) == [pki.leaf, pki.inter.cert]  # leaf, intermediate; no root
    assert g.PASSWORD.decode() not in out + err


def test_then_a_pem_bundle_with_encrypted_key_by_reload(node, tmp_path, monkeypatch, capsys):
    root, port, args, _ = node
    now = dt.datetime.now(dt.timezone.utc)
    first = g.pki(now=now)
    (tmp_path / "first.pem").write_bytes(
        g.pem(first.leaf, first.inter.cert) + g.key_bytes(first.key)
    )
    assert main(["import", "--cert", str(tmp_path / "first.pem"), *args]) == 0
    assert served_chain(port) == [first.leaf, first.inter.cert]
    capsys.readouterr()

    # Two intermediates, shuffled, RSA leaf, key with a traditional OpenSSL password.
    r = g.root(now=now)
    i1 = r.ca("Intermediate One")
    i2 = i1.ca("Intermediate Two")
    key, leaf = i2.leaf(key=g.rsa_key(2048))
    (tmp_path / "cert.pem").write_bytes(
        g.with_text(g.pem(i1.cert), g.pem(leaf), g.pem(r.cert), g.pem(i2.cert))
    )
    (tmp_path / "key.pem").write_bytes(g.key_bytes(key, "traditional", password=g.PASSWORD))
    (tmp_path / "pw").write_bytes(g.PASSWORD + b"\n")
    code = main(
        [
            "import",
            "--cert",
            str(tmp_path / "cert.pem"),
            "--key",
            str(tmp_path / "key.pem"),
            "--password-file",
            str(tmp_path / "pw"),
            "--verify",
            f"127.0.0.1:{port}",
            "--json",
            *args,
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["deployment"]["action"] == "reload"  # the config already pointed here
    assert served_chain(port) == [leaf, i2.cert, i1.cert]


def test_refused_import_leaves_nginx_and_disk_alone(node, tmp_path, capsys):
    root, port, args, own = node
    now = dt.datetime.now(dt.timezone.utc)
    weak = g.pki(now=now, leaf_key=g.rsa_key(1024))
    (tmp_path / "weak.pem").write_bytes(g.pem(weak.leaf, weak.inter.cert) + g.key_bytes(weak.key))
    before = tree_digest(root)
    assert main(["import", "--cert", str(tmp_path / "weak.pem"), *args]) == 3
    err = capsys.readouterr().err
    assert err.strip() == (
        f"sesam-tls: error: {tmp_path / 'weak.pem'}: the certificate 'CN={NAME}': "
        "an RSA key of 1024 bits is too weak (at least 2048)"
    )
    assert tree_digest(root) == before
    assert served_chain(port) == [own.leaf]
