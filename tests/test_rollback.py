"""``sesam-tls rollback``: back to a kept version through the deployment pipeline, on a real nginx."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sesam_tls.cli import main
from sesam_tls.state import load_metadata
from sesam_tls.store import SslFolder

from .acme_fixtures import NAME, node_factory  # noqa: F401 - fixture
from .helpers import make_root, tree_digest
from .testbed import served_cert_der

pytestmark = pytest.mark.integration


def node_args(tn) -> list[str]:
    node = tn.node
    return ["--root", str(node.root), "--container", node.container, "--docker-host", node.docker_host]


def verify_args(tn) -> list[str]:
    return ["--verify", f"127.0.0.1:{tn.https_port}", "--verify-name", NAME]


def served_sha256(tn) -> str:
    return hashlib.sha256(served_cert_der("127.0.0.1", tn.https_port, NAME)).hexdigest()


def issue_self_signed(tn, *extra: str) -> dict:
    assert main(["issue", "--self-signed", "-d", NAME, "-q", *node_args(tn), *verify_args(tn), *extra]) == 0
    return load_metadata(tn.node.metadata_path)


def test_rollback_puts_the_previous_pair_back_and_nginx_serves_it(node_factory, capsys):
    tn = node_factory(container=True)
    first = issue_self_signed(tn)
    second = issue_self_signed(tn)
    assert served_sha256(tn) == second["certificate"]["fingerprint_sha256"]
    capsys.readouterr()

    assert main(["rollback", *node_args(tn), *verify_args(tn)]) == 0
    out = capsys.readouterr().out
    assert f"rolled back to version {first['deployment']['version']}" in out
    assert served_sha256(tn) == first["certificate"]["fingerprint_sha256"]
    assert SslFolder(tn.node.ssl_dir).live_version() == first["deployment"]["version"]
    meta = load_metadata(tn.node.metadata_path)
    assert meta["deployment"]["version"] == first["deployment"]["version"]
    assert meta["certificate"]["fingerprint_sha256"] == first["certificate"]["fingerprint_sha256"]
    assert meta["deployment"]["rolled_back"]["from_version"] == second["deployment"]["version"]
    assert meta["deployment"]["verified"] is True

    # status says so, and renew does not undo it: the older certificate is not due by its own dates
    assert main(["status", *node_args(tn)]) == 0
    assert f"rolled back to {first['deployment']['version']} on " in capsys.readouterr().out
    assert main(["renew", *node_args(tn), *verify_args(tn)]) == 0
    assert "not due" in capsys.readouterr().out
    assert served_sha256(tn) == first["certificate"]["fingerprint_sha256"]

    # and forward again by name
    assert main(["rollback", "--to", second["deployment"]["version"], *node_args(tn), *verify_args(tn)]) == 0
    assert served_sha256(tn) == second["certificate"]["fingerprint_sha256"]


def test_rollback_list_shows_the_kept_versions_and_which_is_live(node_factory, capsys):
    tn = node_factory(container=True)
    first = issue_self_signed(tn)
    second = issue_self_signed(tn)
    capsys.readouterr()
    assert main(["rollback", "--list", *node_args(tn)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines[1:]}
    assert lines[0].split()[:2] == ["live", "version"]
    second_row, first_row = rows["*"], rows[first["deployment"]["version"]]
    assert second["deployment"]["version"] in second_row and second["certificate"]["serial"] in second_row
    assert first["certificate"]["serial"] in first_row and NAME in first_row
    assert any("adopted" in line for line in lines)  # the operator's own pair, kept for rollback

    assert main(["rollback", "--list", "--json", *node_args(tn)]) == 0
    listed = json.loads(capsys.readouterr().out)["versions"]
    assert [v["live"] for v in listed].count(True) == 1
    assert listed[-1]["version"] == second["deployment"]["version"] and listed[-1]["live"]
    assert listed[-2]["serial"] == first["certificate"]["serial"]


def test_nothing_to_roll_back_to_is_one_line_and_exit_2(tmp_path, capsys):
    root = make_root(tmp_path)
    assert main(["issue", "--self-signed", "-d", NAME, "--no-restart", "-q", "--root", str(root)]) == 0
    before = tree_digest(root)
    capsys.readouterr()
    assert main(["rollback", "--no-restart", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "nothing to roll back to" in err
    assert main(["rollback", "--to", "no-such-version", "--no-restart", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no-such-version" in err
    assert tree_digest(root) == before


def weak_pair() -> tuple[bytes, bytes]:
    """A self-signed RSA-1024 pair: loads and matches, but this nginx's OpenSSL refuses the key size."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def test_a_rollback_to_a_pair_nginx_refuses_is_itself_rolled_back(node_factory, nginx_container, capsys):
    tn = node_factory(container=True)
    current = issue_self_signed(tn)
    bad = tn.node.ssl_dir / ".versions" / "20000101T000000Z-weak"
    bad.mkdir(mode=0o755)
    cert, key = weak_pair()
    (bad / "fullchain.pem").write_bytes(cert)
    (bad / "privkey.pem").write_bytes(key)
    bad.chmod(0o755)
    record = tn.node.metadata_path.read_bytes()
    config = tn.node.agent_config.read_bytes()
    capsys.readouterr()

    code = main(["rollback", "--to", bad.name, "--reload-mode", "restart", *node_args(tn), *verify_args(tn)])
    assert code == 7
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("sesam-tls: error:") and "nginx serves it again" in err[-1]
    assert served_sha256(tn) == current["certificate"]["fingerprint_sha256"]
    assert nginx_container.status(tn.node.container) == "running"
    assert SslFolder(tn.node.ssl_dir).live_version() == current["deployment"]["version"]
    assert tn.node.metadata_path.read_bytes() == record and tn.node.agent_config.read_bytes() == config
    assert bad.is_dir()  # a kept version is never deleted by a failed rollback
