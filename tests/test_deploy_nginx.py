"""The deploy pipeline against a real dockerd and a real nginx container, proven by TLS handshakes."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from sesam_tls import CertRequest, DeployOptions, Node, issue
from sesam_tls.bundle import Bundle, fingerprint
from sesam_tls.cli import main
from sesam_tls.errors import DeployError
from sesam_tls.store import SslFolder

from .helpers import make_root, seed_own_pair, tree_digest
from .testbed import free_port, served_cert_der

pytestmark = pytest.mark.integration

NAME = "node.example.test"


class WeakKeyProvider:
    """A provider seam that hands over a certificate nginx refuses (RSA-1024 under SECLEVEL=2).

    The gate refuses it before anything is written (tests/test_gate.py); tests
    of what happens when nginx refuses a pair step past the gate with the
    ``past_the_gate`` fixture.
    """

    name = "weak"

    def issue(self, request: CertRequest) -> Bundle:
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
            .sign(key, hashes.SHA256())
        )
        return Bundle(key=key, leaf=cert)


@pytest.fixture
def past_the_gate(monkeypatch):
    """The pipeline without its gate: for a pair only nginx refuses, to test the rollback."""
    import sesam_tls.api

    monkeypatch.setattr(sesam_tls.api, "gate_bundle", lambda provider, request, bundle, now=None: bundle)


def served_fp(port: int) -> str:
    return fingerprint(x509.load_der_x509_certificate(served_cert_der("127.0.0.1", port, NAME)))


@pytest.fixture
def node_with_own_pair(tmp_path, nginx_container, docker_host):
    """A node as the Sesam guide leaves it: the operator's plain pair, agent config not pointing at it, nginx running."""
    root = make_root(tmp_path)
    ssl, own = seed_own_pair(root, NAME)
    port = free_port()
    name = nginx_container(ssl, port)
    node = Node.from_settings(root=str(root), container=name, docker_host=docker_host, env={})
    assert served_fp(port) == own.fingerprint
    return node, own, port, nginx_container


def cli(node: Node, port: int, *extra: str) -> int:
    return main([
        "issue", "--self-signed", "-d", NAME, "--root", str(node.root), "--container", node.container,
        "--docker-host", node.docker_host, "--verify", f"127.0.0.1:{port}", "--json", *extra,
    ])


def test_issue_restarts_nginx_then_renewal_reloads(node_with_own_pair, capsys):
    node, own, port, containers = node_with_own_pair
    assert cli(node, port) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["config_changed"] is True and first["deployment"]["action"] == "restart"
    assert first["deployment"]["verified"] is True
    assert served_fp(port) == first["fingerprint_sha256"] != own.fingerprint
    assert containers.status(node.container) == "running"

    # The config already points at the pair: only files change, nginx reloads.
    assert cli(node, port, "--key-type", "rsa-2048") == 0
    second = json.loads(capsys.readouterr().out)
    assert second["config_changed"] is False and second["deployment"]["action"] == "reload"
    assert served_fp(port) == second["fingerprint_sha256"] != first["fingerprint_sha256"]

    assert main(["status", "--root", str(node.root), "--verify", f"127.0.0.1:{port}", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["serving_deployed"] is True and info["agent_config_points_here"] is True


def test_refused_certificate_on_restart_is_rolled_back(node_with_own_pair, past_the_gate):
    node, own, port, containers = node_with_own_pair
    config_before = node.agent_config.read_bytes()
    with pytest.raises(DeployError) as info:
        issue(CertRequest.build([NAME]), WeakKeyProvider(), node=node, options=DeployOptions(verify=f"127.0.0.1:{port}"))
    message = str(info.value)
    assert "exited" in message and "restored the previous certificate and nginx serves it again" in message
    assert containers.status(node.container) == "running"
    assert served_fp(port) == own.fingerprint
    cert, key = SslFolder(node.ssl_dir).read_pair()
    assert Bundle.from_pem(cert, key).fingerprint == own.fingerprint
    assert node.agent_config.read_bytes() == config_before


def test_refused_certificate_on_reload_falls_back_and_rolls_back(node_with_own_pair, capsys, past_the_gate):
    node, own, port, containers = node_with_own_pair
    assert cli(node, port) == 0
    good = json.loads(capsys.readouterr().out)["fingerprint_sha256"]
    before = tree_digest(node.root / "sesam")
    with pytest.raises(DeployError, match="nginx serves it again"):
        issue(CertRequest.build([NAME]), WeakKeyProvider(), node=node, options=DeployOptions(verify=f"127.0.0.1:{port}"),
              replace=True)
    assert served_fp(port) == good
    assert containers.status(node.container) == "running"
    live = SslFolder(node.ssl_dir).live_version()
    assert Bundle.from_pem(*SslFolder(node.ssl_dir).read_version(live)).fingerprint == good
    # the refused version may remain as a folder, but what nginx reads is unchanged
    after = tree_digest(node.root / "sesam")
    for path in ("nginx/conf/ssl/fullchain.pem", "nginx/conf/ssl/privkey.pem", "nginx/conf/ssl/live"):
        assert after[path] == before[path]


def test_missing_container_is_named_and_nothing_changes(tmp_path, docker_host, capsys):
    root = make_root(tmp_path)
    before = tree_digest(root)
    code = main(["issue", "--self-signed", "-d", NAME, "--root", str(root), "--container", "no-such-nginx",
                 "--docker-host", docker_host])
    assert code == 6
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no container named 'no-such-nginx'" in err and docker_host in err
    assert tree_digest(root) == before
