"""``renew --dry-run`` and ``issue --dry-run`` rehearse for real (an order at Pebble, ``nginx -t`` on a
copy of the new pair in the real container) and change nothing: not the live pair, the agent config,
the record, nor the running nginx."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from sesam_tls.cli import main
from sesam_tls.state import load_metadata, load_record, save_record

from .acme_fixtures import NAME, acme_front, node_factory, verified_handshake  # noqa: F401 - fixtures
from .helpers import tree_digest
from .testbed import start_pebble, stop_pebble

pytestmark = pytest.mark.integration


def node_args(tn) -> list[str]:
    node = tn.node
    return ["--root", str(node.root), "--container", node.container, "--docker-host", node.docker_host,
            "--verify", f"127.0.0.1:{tn.https_port}", "--verify-name", NAME]


def ca_args(ca, pebble) -> list[str]:
    return ["--server", ca.directory, "--ca-bundle", ca.ca_bundle, "--agree-tos", "--http01", "standalone",
            "--http-port", str(pebble.http_port), "--http-address", "127.0.0.1"]


def snapshot(tn, containers) -> tuple:
    node = tn.node
    started = containers.container(node.container).attrs["State"]["StartedAt"]
    record = node.metadata_path.read_bytes() if node.metadata_path.exists() else None
    return tree_digest(node.ssl_dir), node.agent_config.read_bytes(), record, started


def test_renew_dry_run_with_nothing_due_orders_at_the_ca_and_changes_nothing(
    pebble, acme_front, node_factory, nginx_container, capsys
):
    front = acme_front()
    tn = node_factory(container=True)
    assert main(["issue", "-d", NAME, *ca_args(front, pebble), "-q", *node_args(tn)]) == 0
    served = verified_handshake(tn.https_port, NAME, pebble.root_pem())
    assert main(["renew", *node_args(tn)]) == 0
    assert "not due" in capsys.readouterr().out
    before, orders = snapshot(tn, nginx_container), len(front.orders)

    assert main(["renew", "--dry-run", *node_args(tn)]) == 0
    out = capsys.readouterr().out
    assert len(front.orders) == orders + 1  # a real order, due or not
    assert "not finalized" in out and "no certificate was issued" in out
    assert "nginx -t accepted" in out and "nothing was deployed or recorded" in out
    assert snapshot(tn, nginx_container) == before
    assert verified_handshake(tn.https_port, NAME, pebble.root_pem()).serial_number == served.serial_number


def test_renew_dry_run_with_the_ca_down_exits_non_zero_in_one_line(node_factory, nginx_container, capsys):
    ca = start_pebble(f"rehearse-down-{os.getpid()}")
    tn = node_factory(container=True)
    try:
        assert main(["issue", "-d", NAME, *ca_args(ca, ca), "-q", *node_args(tn)]) == 0
    finally:
        stop_pebble(ca.name)
    before = snapshot(tn, nginx_container)
    capsys.readouterr()
    code = main(["renew", "--dry-run", "-q", *node_args(tn)])
    assert code == 8
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sesam-tls: error:") and f"127.0.0.1:{ca.port}" in err[0]
    assert snapshot(tn, nginx_container) == before  # a failed rehearsal is not a failed renewal: not recorded


def test_a_stop_nginx_rehearsal_stops_before_the_challenge_and_leaves_nginx_running(
    pebble, acme_front, node_factory, nginx_container, capsys
):
    front = acme_front()
    tn = node_factory(container=True)
    assert main(["issue", "-d", NAME, *ca_args(front, pebble), "-q", *node_args(tn)]) == 0
    rec = load_record(tn.node.metadata_path)
    save_record(tn.node.metadata_path,
                rec.replace(provider_settings=dataclasses.replace(rec.provider_settings, http01="stop-nginx")))
    before, orders = snapshot(tn, nginx_container), len(front.orders)
    capsys.readouterr()

    assert main(["renew", "--dry-run", "--json", *node_args(tn)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["result"] == "dry-run" and len(front.orders) == orders + 1
    assert "stopped before answering the challenge" in out["message"]
    assert f"the real run stops container {tn.node.container}" in out["message"]
    assert snapshot(tn, nginx_container) == before
    assert nginx_container.status(tn.node.container) == "running"


def test_issue_dry_run_rehearses_a_first_issuance_and_changes_nothing(
    pebble, acme_front, node_factory, nginx_container, capsys
):
    front = acme_front()
    tn = node_factory(container=True)
    before = snapshot(tn, nginx_container)
    assert main(["issue", "--dry-run", "-d", NAME, *ca_args(front, pebble), *node_args(tn)]) == 0
    out = capsys.readouterr().out
    assert len(front.orders) == 1 and "not finalized" in out and "nginx -t accepted" in out
    assert snapshot(tn, nginx_container) == before
    assert not tn.node.metadata_path.exists()

    assert main(["issue", "--dry-run", "--self-signed", "-d", NAME, *node_args(tn)]) == 0
    assert "nginx -t accepted" in capsys.readouterr().out
    assert snapshot(tn, nginx_container) == before


def test_nginx_t_on_the_copy_can_refuse_and_leaves_the_folder_as_it_was(node_factory, nginx_container):
    from sesam_tls import DeployOptions
    from sesam_tls.bundle import Bundle
    from sesam_tls.errors import DeployError
    from sesam_tls.rehearse import nginx_test_copy

    from .test_rollback import weak_pair

    tn = node_factory(container=True)
    before = snapshot(tn, nginx_container)
    with pytest.raises(DeployError, match="nginx -t refused the new pair.*nothing was deployed"):
        nginx_test_copy(tn.node, Bundle.from_pem(*weak_pair()), DeployOptions())
    nginx_test_copy(tn.node, tn.own, DeployOptions())  # the same copy of a good pair passes
    assert snapshot(tn, nginx_container) == before


def test_an_auto_rehearsal_with_the_port_held_by_the_container_does_not_stop_it(
    pebble, acme_front, node_factory, nginx_container, capsys
):
    front = acme_front()
    tn = node_factory(container=True, http_port=pebble.http_port)  # nginx holds the HTTP-01 port
    args = ["--server", front.directory, "--ca-bundle", front.ca_bundle, "--agree-tos", "--http-port",
            str(pebble.http_port), "--http-address", "127.0.0.1", "-q", *node_args(tn)]
    assert main(["issue", "-d", NAME, "--http01", "auto", *args]) == 0  # the real run stops it, answers, starts it
    assert load_metadata(tn.node.metadata_path)["provider_settings"]["http01"] == "auto"
    before, orders = snapshot(tn, nginx_container), len(front.orders)
    capsys.readouterr()

    assert main(["renew", "--dry-run", *node_args(tn)]) == 0
    out = capsys.readouterr().out
    assert len(front.orders) == orders + 1 and "stopped before answering the challenge" in out
    assert f"port {pebble.http_port} is held by it" in out
    assert snapshot(tn, nginx_container) == before
