"""Prepare once, then apply (issue 13, item 3): one Docker client a run, an import validated once,
and ``issue`` as one library call. Counted with spies on the real classes (calling through)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
import traceback

import pytest

import sesam_tls
from sesam_tls.cli import main

from . import certgen as g
from .acme_fixtures import LOOPBACK, NAME, node_factory, verified_handshake  # noqa: F401 - node_factory is a fixture
from .helpers import input_writer, make_root, seed_own_pair

pytestmark = pytest.mark.integration


@pytest.fixture
def docker_clients(monkeypatch, docker_client):
    """Every ``docker.DockerClient`` made from now on (the real class, its ``__init__`` called through);
    the tests' own session client is made before."""
    import docker

    made: list[str] = []
    real = docker.DockerClient.__init__

    def counting(self, *args, **kwargs):
        made.append("".join(traceback.format_stack(limit=12)))  # where, said when a count is wrong
        real(self, *args, **kwargs)

    monkeypatch.setattr(docker.DockerClient, "__init__", counting)
    return made


def where(node) -> list[str]:
    return ["--root", str(node.root), "--container", node.container, "--docker-host", node.docker_host]


def test_an_acme_issue_with_stop_nginx_makes_one_docker_client(pebble, node_factory, docker_clients, capsys):
    t = node_factory(container=True, http_port=pebble.http_port)  # nginx holds the HTTP-01 port
    argv = ["issue", "-d", NAME, "--server", pebble.directory, "--ca-bundle", pebble.ca_bundle, "--agree-tos",
            "--http-port", str(pebble.http_port), "--http-address", LOOPBACK[0], "--http01", "stop-nginx",
            "--verify", f"127.0.0.1:{t.https_port}", *where(t.node), "--json"]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert result["deployment"]["verified"] is True
    assert f"port {pebble.http_port} was away for" in err  # nginx was stopped, then started again
    verified_handshake(t.https_port, NAME, pebble.root_pem())  # Pebble's certificate is served, its chain verifies
    assert len(docker_clients) == 1, "\n---\n".join(docker_clients)  # the check, stop-nginx and the deployment share it


def test_a_self_signed_issue_makes_one_docker_client(node_factory, docker_clients, capsys):
    t = node_factory(container=True)
    code = main(["issue", "--self-signed", "-d", NAME, "--verify", f"127.0.0.1:{t.https_port}", *where(t.node)])
    assert code == 0, capsys.readouterr().err
    assert len(docker_clients) == 1


def test_a_renewal_through_the_registry_makes_one_docker_client(node_factory, docker_clients):
    t = node_factory(container=True)
    options = sesam_tls.DeployOptions(verify=f"127.0.0.1:{t.https_port}")
    sesam_tls.issue_certificate([NAME], self_signed=True, node=t.node, options=options)
    docker_clients.clear()
    from sesam_tls.renew import renew  # not sesam_tls.renew: once the module is loaded, that name is the module

    result = renew(t.node, force=True, options=options)
    assert result.status is sesam_tls.RenewStatus.RENEWED and result.status == "renewed"
    assert len(docker_clients) == 1


def test_an_import_validates_its_input_once(tmp_path, monkeypatch, capsys):
    from sesam_tls import validate as validation
    from sesam_tls.providers import imported

    calls: list[object] = []
    real = validation.validate

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    # The function, wherever it is looked up: the gate calls it in its module, the provider by its own name.
    monkeypatch.setattr(validation, "validate", counting)
    monkeypatch.setattr(imported, "validate", counting)
    root = make_root(tmp_path)
    seed_own_pair(root, g.NAME)
    pki = g.pki(now=dt.datetime.now(dt.timezone.utc))
    write = input_writer(tmp_path / "in")
    cert = write("node.pem", g.pem(pki.leaf, pki.inter.cert))
    key = write("node.key", g.key_bytes(pki.key))
    code = main(["import", "--cert", cert, "--key", key, "--domain", g.NAME, "--root", str(root), "--no-restart"])
    assert code == 0, capsys.readouterr().err
    assert len(calls) == 1, "the import's own check is the gate: validated once"


def test_a_ca_bundle_is_gated_even_when_its_provider_offers_a_report(tmp_path):
    """Only a provider whose certificates do not come from a CA may hand the gate its own report."""
    from sesam_tls.api import gate_bundle

    pki = g.pki(now=dt.datetime.now(dt.timezone.utc))
    bundle = sesam_tls.Bundle(key=pki.key, leaf=pki.leaf, chain=(pki.inter.cert,))

    class Claims:
        name = "acme"
        origin = "https://ca.example.test/dir"

        def report_for(self, bundle, request):  # pragma: no cover - must never be asked
            raise AssertionError("a CA's bundle is always gated")

    request = sesam_tls.CertRequest.build([g.NAME])
    assert gate_bundle(Claims(), request, bundle).leaf == pki.leaf  # type: ignore[arg-type]


def test_renew_status_is_a_string_enum_exported_and_printed_as_before():
    status = sesam_tls.RenewStatus.NOT_DUE
    assert status == "not-due" and isinstance(status, str) and str(status) == "not-due"
    assert json.dumps({"result": status}) == '{"result": "not-due"}'
    assert {s.value for s in sesam_tls.RenewStatus} == {"not-due", "renewed", "dry-run", "attention", "failed"}


def test_an_issue_through_the_library_alone(tmp_path, nginx_container, docker_host):
    root = make_root(tmp_path)
    ssl, _ = seed_own_pair(root, NAME)
    from .testbed import free_port

    port = free_port()
    container = nginx_container(ssl, port)
    script = textwrap.dedent(f"""
        import sys
        import docker
        import sesam_tls

        made = []
        real = docker.DockerClient.__init__

        def counting(self, *a, **k):
            made.append(1)
            real(self, *a, **k)

        docker.DockerClient.__init__ = counting
        node = sesam_tls.Node.from_settings(root={str(root)!r}, container={container!r},
                                            docker_host={docker_host!r}, env={{}})
        options = sesam_tls.DeployOptions(verify="127.0.0.1:{port}")
        rehearsal = sesam_tls.rehearse_certificate(["{NAME}"], self_signed=True, node=node, options=options)
        assert rehearsal.message.startswith("dry run succeeded for {NAME}: "), rehearsal.message
        outcome = sesam_tls.issue_certificate(["{NAME}"], self_signed=True, key_policy="reuse", node=node,
                                              options=options)
        assert outcome.deployment.verified and outcome.record.provider == "selfsigned"
        assert made == [1, 1], made  # the rehearsal's client, then the issue's: one a run
        assert "sesam_tls.cli" not in sys.modules
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr


def test_issue_refusals_speak_of_parameters_in_the_library(tmp_path):
    node = sesam_tls.Node.from_settings(root=str(make_root(tmp_path)), env={})
    files_only = sesam_tls.DeployOptions(restart=False)
    with pytest.raises(sesam_tls.SesamTLSError, match="`days` is for `self_signed`"):
        sesam_tls.issue_certificate([NAME], days=30, node=node, options=files_only)
    stop = sesam_tls.AcmeSource(http01=sesam_tls.http01_options("stop-nginx"))
    with pytest.raises(sesam_tls.SesamTLSError, match="`http01` stop-nginx stops the nginx container"):
        sesam_tls.issue_certificate([NAME], acme=stop, node=node, options=files_only)
    with pytest.raises(sesam_tls.SesamTLSError, match="`eab_hmac_env` NOPE_UNSET: that environment variable"):
        sesam_tls.read_eab("kid", hmac_env="NOPE_UNSET")
