"""Proof that the testbed fixtures do what the integration tests rely on."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

import testbed
from testbed import free_port, served_cert_der, wait_served_cert


def write_self_signed(ssl_dir: Path, cn: str = "node.example.test", rsa_bits: int | None = None) -> bytes:
    """Write fullchain.pem/privkey.pem (self-signed) into ssl_dir; return the cert DER."""
    if rsa_bits:
        key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    ssl_dir.mkdir(parents=True, exist_ok=True)
    (ssl_dir / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (ssl_dir / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert.public_bytes(serialization.Encoding.DER)


# ---- no testbed needed ----------------------------------------------------------


def test_free_port_is_bindable_on_loopback():
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_sites_conf_listens_on_loopback_only():
    conf = testbed.sites_conf(8443, 8080)
    assert "listen 127.0.0.1:8443 ssl;" in conf
    assert "listen 127.0.0.1:8080;" in conf
    assert "/etc/nginx/includes.d/ssl/fullchain.pem" in conf
    assert "/etc/nginx/includes.d/ssl/privkey.pem" in conf


def test_missing_dockerd_fails_with_setup_hint(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(testbed.TestbedError, match="make testbed"):
        testbed.start_dockerd()


# ---- nginx container -------------------------------------------------------------


@pytest.mark.integration
def test_nginx_serves_mounted_cert_and_new_one_after_restart(nginx_container, tmp_path):
    ssl_dir = tmp_path / "ssl"
    first = write_self_signed(ssl_dir, "first.example.test")
    port, http_port = free_port(), free_port()
    name = nginx_container(ssl_dir, port, http_port=http_port)

    assert served_cert_der("127.0.0.1", port) == first
    assert served_cert_der("127.0.0.1", port, server_hostname="first.example.test") == first
    r = requests.get(f"http://127.0.0.1:{http_port}/", timeout=5)
    assert r.status_code == 200 and r.text == "sesam node (http)\n"

    second = write_self_signed(ssl_dir, "second.example.test")
    assert second != first
    nginx_container.container(name).restart(timeout=10)
    assert served_cert_der("127.0.0.1", port) == second
    assert nginx_container.status(name) == "running"


@pytest.mark.integration
def test_nginx_reload_swaps_cert(nginx_container, tmp_path):
    ssl_dir = tmp_path / "ssl"
    first = write_self_signed(ssl_dir)
    port = free_port()
    name = nginx_container(ssl_dir, port)
    assert served_cert_der("127.0.0.1", port) == first

    second = write_self_signed(ssl_dir)
    c = nginx_container.container(name)
    check = c.exec_run(["/usr/sbin/nginx", "-t"])
    assert check.exit_code == 0, check.output.decode()
    res = c.exec_run(["/usr/sbin/nginx", "-s", "reload"])
    assert res.exit_code == 0, res.output.decode()
    wait_served_cert("127.0.0.1", port, second)


@pytest.mark.integration
def test_rsa1024_leaf_makes_nginx_exit_at_restart(nginx_container, tmp_path):
    """The image's OpenSSL runs at SECLEVEL=2 like Debian's: an RSA-1024 leaf
    is refused at nginx start. Rollback tests rely on this."""
    ssl_dir = tmp_path / "ssl"
    good = write_self_signed(ssl_dir)
    port = free_port()
    name = nginx_container(ssl_dir, port)
    assert served_cert_der("127.0.0.1", port) == good

    write_self_signed(ssl_dir, rsa_bits=1024)
    c = nginx_container.container(name)
    check = c.exec_run(["/usr/sbin/nginx", "-t"])
    assert check.exit_code != 0
    assert b"key too small" in check.output

    c.restart(timeout=10)
    assert nginx_container.wait_exited(name, timeout=15) != 0
    assert nginx_container.status(name) == "exited"
    assert "key too small" in nginx_container.logs(name)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest.mark.integration
def test_nginx_without_cert_fails_to_start(nginx_container, tmp_path):
    ssl_dir = tmp_path / "empty"
    ssl_dir.mkdir()
    port = free_port()
    with pytest.raises(RuntimeError, match="fullchain.pem"):
        nginx_container(ssl_dir, port)


# ---- Pebble ------------------------------------------------------------------------


@pytest.mark.integration
def test_pebble_directory_over_verified_tls(pebble):
    r = requests.get(pebble.directory, verify=pebble.ca_bundle, timeout=10)
    r.raise_for_status()
    d = r.json()
    assert d["newOrder"].startswith("https://127.0.0.1:")
    assert not d.get("meta", {}).get("externalAccountRequired", False)
    root = x509.load_pem_x509_certificate(pebble.root_pem().encode())
    assert root.issuer == root.subject
    assert pebble.http_port not in (5002, 80)  # a free port of the session's own


@pytest.mark.integration
def test_pebble_eab_instance_requires_eab(pebble_eab):
    r = requests.get(pebble_eab.directory, verify=pebble_eab.ca_bundle, timeout=10)
    r.raise_for_status()
    assert r.json()["meta"]["externalAccountRequired"] is True
    assert pebble_eab.eab_required
    assert pebble_eab.eab_keys  # {kid: base64url HMAC key}
