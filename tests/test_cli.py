"""The CLI in-process (and once as a real process), on a scratch --root, no Docker needed."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from sesam_tls.bundle import Bundle
from sesam_tls.cli import main

from .helpers import EXAMPLE_CONFIG, make_root, read_only_mount, tree_digest


def issue(root, *extra):
    return main(["issue", "--self-signed", "--domain", "node.example.test", "--root", str(root), "--no-restart", *extra])


def test_self_signed_issue_into_scratch_root(tmp_path, capsys):
    root = make_root(tmp_path)
    assert issue(root, "--ip", "127.0.0.1") == 0
    ssl = root / "sesam/nginx/conf/ssl"
    cert_pem, key_pem = (ssl / "fullchain.pem").read_bytes(), (ssl / "privkey.pem").read_bytes()
    bundle = Bundle.from_pem(cert_pem, key_pem)  # raises unless they match
    assert stat.S_IMODE(os.stat(ssl / "privkey.pem").st_mode) == 0o600
    assert bundle.dns_names == ["node.example.test"] and bundle.ip_addresses == ["127.0.0.1"]
    assert bundle.leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    eku = bundle.leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert bundle.key_type == "ecdsa-p256"

    config = json.loads((root / "etc/sesam-agent/config.json").read_text())
    example = json.loads(EXAMPLE_CONFIG.read_text())
    assert config["nginx"]["ssl_cert"] == "/etc/nginx/includes.d/ssl/fullchain.pem"
    assert config["nginx"]["ssl_key"] == "/etc/nginx/includes.d/ssl/privkey.pem"
    assert config["docker_username"] == example["docker_username"]
    assert config["docker_password"] == example["docker_password"]
    assert config["sesam-node"] == example["sesam-node"]
    assert list(config) == list(example)
    out, err = capsys.readouterr()
    assert "deployed selfsigned certificate for node.example.test" in out
    assert example["docker_password"] not in out + err

    meta = json.loads((root / "var/lib/sesam-tls/certificate.json").read_text())
    assert meta["schema"] == 2 and meta["provider"] == "selfsigned"
    assert meta["certificate"]["fingerprint_sha256"] == bundle.fingerprint


def test_second_issue_rotates_and_leaves_config_alone(tmp_path, capsys):
    root = make_root(tmp_path)
    assert issue(root) == 0
    config_path = root / "etc/sesam-agent/config.json"
    before = config_path.stat().st_mtime_ns, config_path.read_bytes()
    first = (root / "sesam/nginx/conf/ssl/fullchain.pem").read_bytes()
    assert issue(root, "--key-type", "rsa-2048") == 0
    assert (config_path.stat().st_mtime_ns, config_path.read_bytes()) == before
    second = (root / "sesam/nginx/conf/ssl/fullchain.pem").read_bytes()
    assert second != first
    meta = json.loads((root / "var/lib/sesam-tls/certificate.json").read_text())
    assert meta["certificate"]["key_type"] == "rsa-2048"
    assert len(meta["history"]) == 1


def test_json_output(tmp_path, capsys):
    root = make_root(tmp_path)
    assert issue(root, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["result"] == "deployed" and result["names"] == ["node.example.test"]
    assert main(["status", "--root", str(root), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["managed"] and info["agent_config_points_here"] is True
    assert info["deployed"]["fingerprint_sha256"] == result["fingerprint_sha256"]


def bad_config(root):
    (root / "etc/sesam-agent/config.json").write_text('{"docker_password": "s3cret", ')


@pytest.mark.parametrize(
    "prepare, extra, code, words",
    [
        (bad_config, [], 4, ["config.json", "not valid JSON"]),
        (None, ["--key-type", "dsa-1024"], 2, ["unknown key type 'dsa-1024'"]),
        (None, ["--domain", "bad_name.example"], 2, ["invalid domain name 'bad_name.example'"]),
        (None, ["--reload-mode", "sometimes"], 2, ["invalid choice"]),
        (None, ["--days", "0"], 2, ["--days 0"]),
    ],
)
def test_bad_input_one_line_nonzero_and_no_change(tmp_path, capsys, prepare, extra, code, words):
    root = make_root(tmp_path)
    if prepare:
        prepare(root)
    before = tree_digest(root)
    assert issue(root, *extra) == code
    err = capsys.readouterr().err
    for word in words:
        assert word in err
    assert "s3cret" not in err and "Traceback" not in err
    assert tree_digest(root) == before


def test_docker_host_that_does_not_answer(tmp_path, capsys):
    root = make_root(tmp_path)
    before = tree_digest(root)
    sock = tmp_path / "nobody-listens.sock"
    code = main(["issue", "--self-signed", "-d", "node.example.test", "--root", str(root), "--docker-host", f"unix://{sock}"])
    assert code == 6
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("sesam-tls: error: cannot reach the Docker engine at unix://")
    assert str(sock) in err[-1]
    assert tree_digest(root) == before


def test_read_only_ssl_folder(tmp_path, capsys):
    root = make_root(tmp_path)
    with read_only_mount(root / "sesam/nginx/conf/ssl"):
        before = tree_digest(root)
        assert issue(root) == 5
        err = capsys.readouterr().err
        assert "ssl folder" in err and "read-only file system" in err
        assert tree_digest(root) == before


def test_help_and_version_as_a_real_process():
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    out = subprocess.run([sys.executable, "-m", "sesam_tls", "--help"], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and "issue" in out.stdout and "exit codes" in out.stdout
    out = subprocess.run([sys.executable, "-m", "sesam_tls", "--version"], capture_output=True, text=True, env=env)
    assert out.stdout.startswith("sesam-tls ")
    out = subprocess.run([sys.executable, "-m", "sesam_tls", "nope"], capture_output=True, text=True, env=env)
    assert out.returncode == 2
