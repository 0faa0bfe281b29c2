"""The ACME provider end to end against a real Pebble, deployed into a real nginx container."""

from __future__ import annotations

import json
import logging
import stat

import pytest
import requests

from sesam_tls import DeployOptions, issue
from sesam_tls.bundle import Bundle
from sesam_tls.errors import IssuanceError, UsageError
from sesam_tls.http01 import Http01Options
from sesam_tls.nginx import NginxContainer
from sesam_tls.providers.acme import Acme, Eab
from sesam_tls.providers.acme_account import AccountStore
from sesam_tls.providers.base import CertRequest
from sesam_tls.state import load_metadata
from sesam_tls.store import SslFolder

from .acme_fixtures import (  # noqa: F401 - node_factory and pebble_nonce_reject are fixtures
    LOOPBACK,
    NAME,
    acme_for,
    node_factory,
    pebble_nonce_reject,
    verified_handshake,
)
from .testbed import free_port

pytestmark = pytest.mark.integration

FILES_ONLY = DeployOptions(restart=False)


def deployed(node) -> Bundle:
    pair = SslFolder(node.ssl_dir).read_pair()
    assert pair is not None
    return Bundle.from_pem(*pair)


def test_issue_end_to_end_into_nginx_served_chain_verifies_against_pebble_root(pebble, node_factory):
    t = node_factory(container=True)
    provider = acme_for(pebble, t.node, nginx=NginxContainer(t.node.container, t.node.docker_host))
    outcome = issue(CertRequest.build([NAME]), provider, node=t.node,
                    options=DeployOptions(verify=f"127.0.0.1:{t.https_port}"))

    assert outcome.deployment.verified
    served = verified_handshake(t.https_port, NAME, pebble.root_pem())  # chain + name, by a real handshake
    assert served.serial_number == outcome.bundle.leaf.serial_number
    assert outcome.bundle.chain, "the intermediate is deployed with the leaf"

    meta = load_metadata(t.node.metadata_path)
    settings = meta["provider_settings"]
    assert meta["provider"] == "acme"
    assert settings["directory"] == pebble.directory
    assert settings["account"].startswith(pebble.directory.rsplit("/", 1)[0])
    assert settings["http01"] == "standalone" and settings["http_port"] == pebble.http_port
    assert settings["key_type"] == "ecdsa-p256"
    text = t.node.metadata_path.read_text()
    assert "PRIVATE KEY" not in text and "hmac" not in text.lower()

    store = AccountStore(t.node.state_dir, pebble.directory)
    assert stat.S_IMODE(store.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.folder.parent.stat().st_mode) == 0o700


def test_several_names_and_an_ip_on_one_certificate(pebble, node_factory):
    t = node_factory()
    names = [NAME, "www.example.test", "api.example.test", "xn--bcher-kva.example.test"]
    request = CertRequest.build([*names[:3], "bücher.example.test"], ["127.0.0.1"])
    outcome = issue(request, acme_for(pebble, t.node), node=t.node, options=FILES_ONLY)
    assert sorted(outcome.bundle.dns_names) == sorted(names)
    assert outcome.bundle.ip_addresses == ["127.0.0.1"]
    assert deployed(t.node).fingerprint == outcome.bundle.fingerprint


def test_ip_identifiers_validated_over_ipv4_and_ipv6(pebble, node_factory, caplog):
    """RFC 8738: Pebble validates an IP identifier at the address itself, so ::1 arrives over IPv6."""
    t = node_factory()
    http01 = Http01Options(strategy="standalone", port=pebble.http_port, listen=("127.0.0.1", "::1"))
    with caplog.at_level(logging.DEBUG, logger="sesam_tls"):
        outcome = issue(CertRequest.build([], ["::1", "127.0.0.1"]), acme_for(pebble, t.node, http01=http01),
                        node=t.node, options=FILES_ONLY)
    assert sorted(outcome.bundle.ip_addresses) == ["127.0.0.1", "::1"]
    assert "http01: ::1 asked for /.well-known/acme-challenge/" in caplog.text


@pytest.mark.parametrize("key_type", ["rsa-2048", "ecdsa-p384"])
def test_forty_names_and_other_key_types(pebble, node_factory, key_type):
    t = node_factory()
    names = [f"n{i}.example.test" for i in range(40)]
    request = CertRequest.build(names, key_type=key_type)
    outcome = issue(request, acme_for(pebble, t.node), node=t.node, options=FILES_ONLY)
    assert sorted(outcome.bundle.dns_names) == sorted(names)
    assert outcome.bundle.key_type == key_type


def test_account_is_created_once_and_reused(pebble, node_factory, caplog):
    t = node_factory()
    store = AccountStore(t.node.state_dir, pebble.directory)
    first = acme_for(pebble, t.node)
    one = issue(CertRequest.build([NAME]), first, node=t.node, options=FILES_ONLY)
    key_pem = store.key_path.read_bytes()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sesam_tls"):
        second = acme_for(pebble, t.node, agree_tos=False)  # no agreement needed for a known account
        two = issue(CertRequest.build([NAME]), second, node=t.node, options=FILES_ONLY)
    assert second.account_uri == first.account_uri
    assert store.key_path.read_bytes() == key_pem
    assert "registering" not in caplog.text and f"using ACME account {first.account_uri}" in caplog.text
    assert two.bundle.key_pem() != one.bundle.key_pem()  # a new key for every certificate
    assert [p.name for p in (t.node.state_dir / "accounts").iterdir()] == [store.folder.name]


def test_a_lost_account_is_registered_again_with_a_warning(pebble, node_factory, caplog):
    t = node_factory()
    store = AccountStore(t.node.state_dir, pebble.directory)
    issue(CertRequest.build([NAME]), acme_for(pebble, t.node), node=t.node, options=FILES_ONLY)
    meta = json.loads(store.meta_path.read_text())
    lost = meta["uri"].rsplit("/", 1)[0] + "/0000000000000000"  # as after the CA lost its data
    store.save_meta({**meta, "uri": lost})
    with caplog.at_level(logging.WARNING, logger="sesam_tls"):
        provider = acme_for(pebble, t.node, agree_tos=False)  # the agreement is remembered
        issue(CertRequest.build([NAME]), provider, node=t.node, options=FILES_ONLY)
    assert provider.account_uri not in (lost, meta["uri"])
    assert f"the CA does not accept ACME account {lost}" in caplog.text
    assert len(list((t.node.state_dir / "accounts").iterdir())) == 2  # the old one set aside, not deleted


def test_an_account_deactivated_elsewhere_is_replaced(pebble, node_factory, caplog):
    """Deactivated with the same key by another copy of the state folder (a restored backup, say)."""
    import shutil

    from sesam_tls.providers.acme_account import deactivate
    from sesam_tls.providers.acme_net import Connection

    t = node_factory()
    store = AccountStore(t.node.state_dir, pebble.directory)
    first = acme_for(pebble, t.node)
    issue(CertRequest.build([NAME]), first, node=t.node, options=FILES_ONLY)
    backup = t.node.state_dir / "backup"
    shutil.copytree(store.folder, backup)
    deactivate(Connection(pebble.directory, ca_bundle=pebble.ca_bundle), store)
    shutil.copytree(backup, store.folder)
    with caplog.at_level(logging.WARNING, logger="sesam_tls"):
        second = acme_for(pebble, t.node, agree_tos=False)
        issue(CertRequest.build([NAME]), second, node=t.node, options=FILES_ONLY)
    assert second.account_uri != first.account_uri
    assert "deactivated" in caplog.text and "registering a new one" in caplog.text


def test_external_account_binding(pebble_eab, node_factory):
    t = node_factory()
    with pytest.raises(UsageError, match="requires External Account Binding: add `eab_kid`"):
        issue(CertRequest.build([NAME]), acme_for(pebble_eab, t.node), node=t.node, options=FILES_ONLY)
    kid, hmac = min(pebble_eab.eab_keys.items())
    provider = acme_for(pebble_eab, t.node, eab=Eab(kid=kid, hmac_key=hmac))
    outcome = issue(CertRequest.build([NAME]), provider, node=t.node, options=FILES_ONLY)
    assert outcome.bundle.covers(NAME)
    assert provider.settings()["external_account_binding"] is True
    for path in [t.node.metadata_path, *(t.node.state_dir / "accounts").rglob("*.json")]:
        assert hmac not in path.read_text()
    assert hmac not in repr(provider.eab)


def test_a_wrong_eab_key_is_refused_by_the_ca(pebble_eab, node_factory):
    t = node_factory()
    kid = min(pebble_eab.eab_keys)
    provider = acme_for(pebble_eab, t.node, eab=Eab(kid=kid, hmac_key="c2VjcmV0LWJ1dC13cm9uZy1zZWNyZXQtYnV0LXdyb25n"))
    with pytest.raises(IssuanceError, match="registering the ACME account: the CA refused"):
        issue(CertRequest.build([NAME]), provider, node=t.node, options=FILES_ONLY)


def test_half_the_nonces_rejected_still_succeeds(pebble_nonce_reject, node_factory):
    t = node_factory()
    for _ in range(2):  # a new account, then a known one: a few dozen signed requests in all
        request = CertRequest.build([NAME, "www.example.test", "api.example.test"])
        outcome = issue(request, acme_for(pebble_nonce_reject, t.node), node=t.node, options=FILES_ONLY)
        assert outcome.bundle.covers("api.example.test")


def test_port_held_by_the_nginx_container_is_freed_by_auto(pebble, node_factory, caplog):
    t = node_factory(container=True, http_port=pebble.http_port)  # nginx holds the HTTP-01 port
    nginx = NginxContainer(t.node.container, t.node.docker_host)
    provider = acme_for(pebble, t.node, strategy="auto", nginx=nginx)
    with caplog.at_level(logging.INFO, logger="sesam_tls"):
        outcome = issue(CertRequest.build([NAME]), provider, node=t.node)
    assert "held by the managed container" in caplog.text
    assert f"port {pebble.http_port} was away for" in caplog.text
    assert nginx.is_running()
    assert verified_handshake(t.https_port, NAME, pebble.root_pem()).serial_number == outcome.bundle.leaf.serial_number
    # and nginx holds its port again
    assert requests.get(f"http://127.0.0.1:{pebble.http_port}/", timeout=5).text == "sesam node (http)\n"


def test_failed_validation_explains_and_keeps_the_old_certificate(pebble, node_factory):
    """The token is served (self-check passes), but not where the CA looks: as when port 80 is firewalled."""
    t = node_factory(container=True)
    before = SslFolder(t.node.ssl_dir).read_pair()
    provider = acme_for(pebble, t.node, http_port=free_port())  # Pebble still connects to its own port
    with pytest.raises(IssuanceError) as failure:
        issue(CertRequest.build([NAME]), provider, node=t.node, options=DeployOptions(verify=f"127.0.0.1:{t.https_port}"))
    text = str(failure.value)
    assert f"the CA could not validate {NAME}" in text
    assert "80/HTTP from ANY" in text and f"the DNS of {NAME} does not point at this node" in text
    assert "\n" not in text
    assert SslFolder(t.node.ssl_dir).read_pair() == before
    assert load_metadata(t.node.metadata_path) is None
    assert verified_fingerprint(t) == t.own.fingerprint


def test_stop_nginx_starts_the_container_again_when_validation_fails(pebble, node_factory):
    port = free_port()
    t = node_factory(container=True, http_port=port)  # nginx holds a port; Pebble validates elsewhere
    nginx = NginxContainer(t.node.container, t.node.docker_host)
    provider = acme_for(pebble, t.node, strategy="auto", http_port=port, nginx=nginx)
    with pytest.raises(IssuanceError, match="could not validate"):
        issue(CertRequest.build([NAME]), provider, node=t.node)
    assert nginx.is_running()
    assert verified_fingerprint(t) == t.own.fingerprint


def test_self_check_failure_never_asks_the_ca(pebble, node_factory, tmp_path, caplog):
    t = node_factory()
    webroot = tmp_path / "www"  # no web server serves it
    webroot.mkdir()
    provider = acme_for(pebble, t.node, http01=Http01Options(strategy="webroot", webroot=webroot, port=free_port()))
    with caplog.at_level(logging.INFO, logger="sesam_tls"), pytest.raises(IssuanceError) as failure:
        issue(CertRequest.build([NAME]), provider, node=t.node, options=FILES_ONLY)
    assert str(failure.value).startswith(f"self-check failed for {NAME}: nothing answers")
    assert "asked the CA to validate" not in caplog.text
    assert not (webroot / ".well-known").exists()
    assert deployed(t.node).fingerprint == t.own.fingerprint


def test_webroot_served_by_an_existing_web_server(pebble, node_factory, tmp_path):
    from .helpers import serve_folder

    webroot = tmp_path / "www"
    webroot.mkdir()
    with serve_folder(webroot, pebble.http_port):
        t = node_factory()
        options = Http01Options(strategy="webroot", webroot=webroot, port=pebble.http_port)
        outcome = issue(CertRequest.build([NAME]), acme_for(pebble, t.node, http01=options), node=t.node,
                        options=FILES_ONLY)
    assert outcome.bundle.covers(NAME)
    assert not (webroot / ".well-known").exists()


@pytest.mark.parametrize("name", ["*.example.test", "bad_name.example.test", "a" * 64 + ".example.test"])
def test_names_that_cannot_be_valid_are_refused_before_any_network_call(tmp_path, name):
    provider = Acme(state_dir=tmp_path, directory="https://127.0.0.1:9/dir", agree_tos=True)  # nothing listens
    with pytest.raises(UsageError, match="invalid domain name"):
        provider.issue(CertRequest.build([name]))
    assert not (tmp_path / "accounts").exists()


def test_an_unreachable_ca_is_explained(tmp_path):
    provider = Acme(state_dir=tmp_path, directory=f"https://127.0.0.1:{free_port()}/dir", agree_tos=True)
    with pytest.raises(IssuanceError, match="cannot reach the ACME server .* outbound HTTPS"):
        provider.issue(CertRequest.build([NAME]))


def test_an_untrusted_ca_certificate_is_explained(pebble, tmp_path):
    provider = Acme(state_dir=tmp_path, directory=pebble.directory, agree_tos=True)  # no ca_bundle
    with pytest.raises(IssuanceError, match="not trusted .* `ca_bundle` PEM"):
        provider.issue(CertRequest.build([NAME]))


def test_terms_of_service_must_be_agreed_once(pebble, tmp_path):
    provider = Acme(state_dir=tmp_path, directory=pebble.directory, ca_bundle=pebble.ca_bundle)
    with pytest.raises(UsageError, match=r"terms of service \(data:text/plain.*\): add `agree_tos`"):
        provider.issue(CertRequest.build([NAME]))


def verified_fingerprint(t) -> str:
    from cryptography import x509

    from sesam_tls.bundle import fingerprint

    from .testbed import served_cert_der

    return fingerprint(x509.load_der_x509_certificate(served_cert_der("127.0.0.1", t.https_port, NAME)))
