"""renew against a real Pebble and a real nginx container."""

from __future__ import annotations

import json
import os

import pytest

from sesam_tls.cli import main
from sesam_tls.state import load_metadata

from .acme_fixtures import NAME, node_factory, verified_handshake  # noqa: F401 - fixture
from .testbed import start_pebble, stop_pebble

pytestmark = pytest.mark.integration


def node_args(tn) -> list[str]:
    node = tn.node
    return ["--root", str(node.root), "--container", node.container, "--docker-host", node.docker_host,
            "--verify", f"127.0.0.1:{tn.https_port}", "--verify-name", NAME]


def issue(pebble, tn) -> int:
    return main([
        "issue", "-d", NAME, "--server", pebble.directory, "--ca-bundle", pebble.ca_bundle, "--agree-tos",
        "--http01", "standalone", "--http-port", str(pebble.http_port), "--http-address", "127.0.0.1",
        "-q", *node_args(tn),
    ])


def test_forced_renewal_replaces_the_served_certificate(pebble, node_factory, capsys):
    tn = node_factory(container=True)
    assert issue(pebble, tn) == 0
    first = verified_handshake(tn.https_port, NAME, pebble.root_pem())
    capsys.readouterr()

    assert main(["renew", *node_args(tn), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["result"] == "not-due"

    assert main(["renew", "--force", "--json", *node_args(tn)]) == 0
    assert json.loads(capsys.readouterr().out)["result"] == "renewed"
    second = verified_handshake(tn.https_port, NAME, pebble.root_pem())
    assert second.serial_number != first.serial_number
    meta = load_metadata(tn.node.metadata_path)
    assert meta["provider"] == "acme" and meta["provider_settings"]["directory"] == pebble.directory
    assert meta["deployment"]["action"] == "reload" and meta["deployment"]["verified"] is True
    assert meta["history"][0]["serial"] == format(first.serial_number, "x")


def test_renewal_with_the_ca_down_fails_is_recorded_hooked_and_keeps_the_served_certificate(
    node_factory, tmp_path, capsys
):
    ca = start_pebble(f"renew-down-{os.getpid()}")
    tn = node_factory(container=True)
    try:
        assert issue(ca, tn) == 0
        root = ca.root_pem()
        served = verified_handshake(tn.https_port, NAME, root)
    finally:
        stop_pebble(ca.name)
    capsys.readouterr()

    hook_out = tmp_path / "failure.env"
    code = main(["renew", "--force", *node_args(tn), "--failure-hook", f"env | grep ^SESAM_TLS_ > {hook_out}"])
    assert code == 8
    err = capsys.readouterr().err
    assert "renewal failed" in err and f"127.0.0.1:{ca.port}" in err
    assert verified_handshake(tn.https_port, NAME, root).serial_number == served.serial_number
    meta = load_metadata(tn.node.metadata_path)
    assert meta["renewal"]["failures"] == 1 and meta["renewal"]["last_result"].startswith("failed:")
    env = dict(line.split("=", 1) for line in hook_out.read_text().splitlines())
    assert env["SESAM_TLS_EVENT"] == "failed" and f"127.0.0.1:{ca.port}" in env["SESAM_TLS_ERROR"]

    # right after: backing off, attention, no attempt
    assert main(["renew", *node_args(tn)]) == 10
    assert "next try after" in capsys.readouterr().err


def test_dry_run_gets_a_certificate_from_the_ca_and_deploys_nothing(pebble, node_factory, capsys):
    tn = node_factory(container=True)
    assert issue(pebble, tn) == 0
    served = verified_handshake(tn.https_port, NAME, pebble.root_pem())
    before = tn.node.metadata_path.read_bytes(), tn.node.agent_config.read_bytes()
    capsys.readouterr()

    assert main(["renew", "--dry-run", "--force", "--json", *node_args(tn)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["result"] == "dry-run" and NAME in out["message"]
    assert verified_handshake(tn.https_port, NAME, pebble.root_pem()).serial_number == served.serial_number
    assert (tn.node.metadata_path.read_bytes(), tn.node.agent_config.read_bytes()) == before


def test_dry_run_of_a_lets_encrypt_certificate_goes_to_staging(tmp_path):
    from sesam_tls import Node
    from sesam_tls.providers.acme_net import LETSENCRYPT, LETSENCRYPT_STAGING
    from sesam_tls.renew import provider_from_metadata
    from sesam_tls.state import NodeRecord

    node = Node.from_settings(root=str(tmp_path), env={})
    meta = {"schema": 2, "provider": "acme", "provider_settings": {"directory": LETSENCRYPT, "http01": "auto"},
            "certificate": {"ari_cert_id": "aki.serial"}}
    record = NodeRecord.from_json(meta)
    real, dry = provider_from_metadata(record, node, False), provider_from_metadata(record, node, True)
    assert (real.directory, real.replaces) == (LETSENCRYPT, "aki.serial")
    assert (dry.directory, dry.replaces) == (LETSENCRYPT_STAGING, None)
    private = NodeRecord.from_json({**meta, "provider_settings": {"directory": "https://ca.internal/dir"}})
    assert provider_from_metadata(private, node, True).directory == "https://ca.internal/dir"
