"""Port 80 never silent: when the managed nginx container already serves
/.well-known/acme-challenge/ from a folder mounted from this host (as an nginx
set up for certbot does), `--http01 auto` finds that folder from the
container's mounts, proves it with a probe file, and answers there: the
container is never stopped. Real Pebble, a real nginx container, real HTTP."""

from __future__ import annotations

import json
import logging

import pytest
import requests

from sesam_tls import CertRequest, issue
from sesam_tls.http01 import Http01Options, mounted_webroot, plan
from sesam_tls.nginx import NginxContainer

from .acme_fixtures import NAME, acme_for, node_factory, verified_handshake  # noqa: F401 - a fixture
from .testbed import free_port

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("layout", ["root", "alias"])
def test_auto_answers_through_the_containers_webroot_without_stopping_it(pebble, node_factory, tmp_path, caplog,
                                                                         layout):
    webroot = tmp_path / "acme"
    webroot.mkdir()
    t = node_factory(container=True, http_port=pebble.http_port, acme_webroot=webroot, acme=layout)
    # the agent config already names the pair, so the deployment reloads: the container runs all along
    config = json.loads(t.node.agent_config.read_text())
    config["nginx"].update(ssl_cert=t.node.container_cert_path, ssl_key=t.node.container_key_path)
    t.node.agent_config.write_text(json.dumps(config, indent=2))
    nginx = NginxContainer(t.node.container, t.node.docker_host)
    started = nginx._container().attrs["State"]["StartedAt"]
    provider = acme_for(pebble, t.node, strategy="auto", nginx=nginx)
    with caplog.at_level(logging.INFO, logger="sesam_tls"):
        outcome = issue(CertRequest.build([NAME]), provider, node=t.node)
    assert f"which serves /.well-known/acme-challenge/ from {webroot}" in caplog.text
    assert "stopping container" not in caplog.text and "was away for" not in caplog.text
    # the container ran all along, validation and deployment (a reload keeps StartedAt; a stop would not)
    assert "reloaded nginx" in caplog.text
    assert nginx._container().attrs["State"]["StartedAt"] == started
    assert verified_handshake(t.https_port, NAME, pebble.root_pem()).serial_number == outcome.bundle.leaf.serial_number
    # nothing of ours is left in the operator's folder
    assert list(webroot.rglob("*")) == []
    assert requests.get(f"http://127.0.0.1:{pebble.http_port}/", timeout=5).text == "sesam node (http)\n"


def test_a_container_without_such_a_folder_is_still_stopped_for_the_moment(pebble, node_factory, tmp_path):
    """A writable mount nginx does not serve challenges from is probed, cleaned, and not used."""
    elsewhere = tmp_path / "not-served"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("the operator's")
    port = free_port()
    t = node_factory(container=True, http_port=port)
    nginx = NginxContainer(t.node.container, t.node.docker_host)
    assert mounted_webroot(nginx, port) is None
    options = Http01Options(strategy="auto", port=port, listen=("127.0.0.1",))
    assert "it is stopped while the CA validates" in plan(options, nginx)


def test_check_says_the_challenge_is_answered_in_the_containers_webroot(pebble, node_factory, tmp_path):
    webroot = tmp_path / "acme"
    webroot.mkdir()
    port = free_port()
    t = node_factory(container=True, http_port=port, acme_webroot=webroot)
    nginx = NginxContainer(t.node.container, t.node.docker_host)
    said = plan(Http01Options(strategy="auto", port=port, listen=("127.0.0.1",)), nginx)
    assert said.endswith(f"serves /.well-known/acme-challenge/ from {webroot / '.well-known/acme-challenge'}: "
                         "answered there, nothing is stopped")
    assert list(webroot.rglob("*")) == []
