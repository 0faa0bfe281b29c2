"""The ACME verbs through the CLI, in process (``main(argv)``) and once as a real process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from sesam_tls.cli import main
from sesam_tls.providers.acme_account import AccountStore
from sesam_tls.state import load_metadata

from .acme_fixtures import LOOPBACK, NAME, node_factory, verified_handshake  # noqa: F401 - a fixture
from .testbed import free_port

pytestmark = pytest.mark.integration

SRC = Path(__file__).resolve().parents[1] / "src"


def ca(pebble) -> list[str]:
    return ["--server", pebble.directory, "--ca-bundle", pebble.ca_bundle]


def where(node) -> list[str]:
    args = ["--root", str(node.root)]
    if node.docker_host:
        args += ["--container", node.container, "--docker-host", node.docker_host]
    return args


def issue_args(pebble, node, *extra: str, http_port=None) -> list[str]:
    return [
        "issue", "-d", NAME, *ca(pebble), "--agree-tos", "--http-port", str(http_port or pebble.http_port),
        "--http-address", LOOPBACK[0], *where(node), *extra,
    ]


def run_json(argv: list[str], capsys) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def cert_status(pebble, serial: str) -> str:
    r = requests.get(f"{pebble.mgmt_url}/cert-status-by-serial/{serial}", verify=pebble.ca_bundle, timeout=5)
    r.raise_for_status()
    return r.json()["Status"]


def test_issue_deploys_into_nginx_and_verifies(pebble, node_factory, capsys):
    t = node_factory(container=True)
    code, out = run_json(issue_args(pebble, t.node, "--verify", f"127.0.0.1:{t.https_port}"), capsys)
    assert code == 0
    assert out["provider"] == "acme" and out["names"] == [NAME]
    served = verified_handshake(t.https_port, NAME, pebble.root_pem())
    assert format(served.serial_number, "x") == out["serial"]


def test_issue_as_a_real_process_logs_one_line_per_step(pebble, node_factory):
    t = node_factory()
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run(
        [sys.executable, "-m", "sesam_tls", *issue_args(pebble, t.node, "--no-restart")],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    steps = [
        "fetching the ACME directory", "registering an ACME account", "ordering a certificate for",
        "serving HTTP-01 challenges", "self-check passed", "asked the CA to validate", "the CA validated",
        "finalizing the order", "got certificate serial",
    ]
    lines = proc.stderr.splitlines()
    positions = [next(i for i, line in enumerate(lines) if step in line) for step in steps]
    assert positions == sorted(positions)
    assert all(line.startswith("sesam-tls: ") for line in lines)
    assert proc.stdout.startswith(f"deployed acme certificate for {NAME}")


def test_eab_from_the_environment_never_from_argv(pebble_eab, node_factory, capsys, monkeypatch):
    t = node_factory()
    kid, hmac = min(pebble_eab.eab_keys.items())
    monkeypatch.setenv("SESAM_TEST_EAB", hmac)
    base = issue_args(pebble_eab, t.node, "--no-restart")
    assert main([*base, "--eab-hmac-key", hmac]) == 2  # there is no such option
    assert "unrecognized arguments" in capsys.readouterr().err
    assert main([*base, "--eab-kid", kid]) == 2
    assert "--eab-hmac-file FILE or --eab-hmac-env VAR" in capsys.readouterr().err
    assert run_json([*base, "--eab-kid", kid, "--eab-hmac-env", "SESAM_TEST_EAB"], capsys)[0] == 0
    assert load_metadata(t.node.metadata_path)["provider_settings"]["external_account_binding"] is True

    other = node_factory()
    secret = other.node.root / "eab.key"
    secret.write_text(hmac + "\n")
    code, _ = run_json([*issue_args(pebble_eab, other.node, "--no-restart"), "--eab-kid", kid,
                        "--eab-hmac-file", str(secret)], capsys)
    assert code == 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["-d", "*.example.test"], "wildcards cannot be validated over HTTP-01"),
        (["--days", "30"], "--days is for --self-signed"),
        (["--http01", "webroot"], "needs --webroot DIR"),
        (["--http01", "stop-nginx", "--no-restart"], "--no-restart asks to leave it alone"),
        (["--http-port", "0"], "invalid --http-port 0"),
    ],
)
def test_bad_acme_options_exit_2_before_any_network_call(tmp_path, capsys, extra, message):
    argv = ["issue", "-d", NAME, "--server", f"https://127.0.0.1:{free_port()}/dir", "--root", str(tmp_path), *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_acme_options_are_refused_with_self_signed(tmp_path, capsys):
    assert main(["issue", "--self-signed", "-d", NAME, "--email", "a@example.test", "--root", str(tmp_path)]) == 2
    assert "--email is an ACME option" in capsys.readouterr().err


def test_check_passes_on_a_ready_node(pebble, node_factory, capsys):
    t = node_factory(container=True)
    port = free_port()
    code = main(["check", "-d", "localhost", "--ip", "127.0.0.1", *ca(pebble), "--agree-tos",
                 "--http-port", str(port), "--http-address", "127.0.0.1", *where(t.node)])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "ok    names", "ok    ACME server", "ok    docker", "ok    challenge", "ok    CAA", "ok    agent config",
        "ok    ssl folder", "ok    state folder",
    ]
    assert "localhost -> 127.0.0.1 (this host)" in lines[0]
    assert f"port {port} is free" in out and f"container {t.node.container} is running" in out


def test_check_sees_the_managed_container_holding_the_port(pebble, node_factory, capsys):
    port = free_port()
    t = node_factory(container=True, http_port=port)
    code, out = run_json(["check", "-d", "localhost", *ca(pebble), "--agree-tos", "--http-port", str(port),
                          "--http-address", "127.0.0.1", *where(t.node)], capsys)
    assert code == 0
    challenge = next(c for c in out["checks"] if c["check"] == "challenge")
    assert f"held by the managed container {t.node.container}" in challenge["detail"]


def test_check_names_the_process_holding_the_port_and_fails(pebble, node_factory, capsys):
    t = node_factory()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code = main(["check", "-d", "localhost", *ca(pebble), "--agree-tos", "--http-port", str(port),
                     "--http-address", "127.0.0.1", "--no-restart", *where(t.node)])
    out = capsys.readouterr().out
    assert code == 8
    assert f"FAIL  challenge: port {port} is held by pid {os.getpid()} (" in out


def test_check_reports_an_unreachable_ca_and_a_missing_agreement(pebble, node_factory, capsys):
    t = node_factory()
    code = main(["check", "-d", "localhost", "--server", f"https://127.0.0.1:{free_port()}/dir",
                 "--http-port", str(free_port()), "--http-address", "127.0.0.1", "--no-restart", *where(t.node)])
    out = capsys.readouterr().out
    assert code == 8 and "FAIL  ACME server: fetching the ACME directory: cannot reach" in out
    code = main(["check", "-d", "localhost", *ca(pebble), "--http-port", str(free_port()),
                 "--http-address", "127.0.0.1", "--no-restart", *where(t.node)])
    assert code == 2 and "needs --agree-tos" in capsys.readouterr().out


def test_revoke_with_the_account_and_with_the_certificate_key(pebble, node_factory, capsys):
    t = node_factory()
    code, first = run_json(issue_args(pebble, t.node, "--no-restart"), capsys)
    assert code == 0
    code, out = run_json(["revoke", "--reason", "superseded", *where(t.node)], capsys)
    assert code == 0 and out["serial"] == first["serial"]
    assert "sesam-tls issue -d node.example.test" in out["next"]
    assert cert_status(pebble, first["serial"]) == "Revoked"
    assert load_metadata(t.node.metadata_path)["revoked"]["reason"] == "superseded"
    assert main(["revoke", *where(t.node)]) == 8  # already revoked: the CA says so
    assert "the CA refused" in capsys.readouterr().err

    code, second = run_json(issue_args(pebble, t.node, "--no-restart"), capsys)
    assert code == 0
    assert main(["revoke", "--reason", "keyCompromise", *where(t.node)]) == 0
    assert "get a new one" in capsys.readouterr().out
    assert cert_status(pebble, second["serial"]) == "Revoked"


def test_revoke_refuses_a_certificate_not_from_acme(node_factory, capsys):
    t = node_factory()
    assert main(["issue", "--self-signed", "-d", NAME, "--no-restart", *where(t.node)]) == 0
    capsys.readouterr()
    assert main(["revoke", *where(t.node)]) == 2
    assert "was not issued by an ACME CA" in capsys.readouterr().err


def test_account_show_rollover_deactivate(pebble, node_factory, capsys):
    t = node_factory()
    assert run_json(issue_args(pebble, t.node, "--no-restart", "--email", "ops@example.test"), capsys)[0] == 0
    store = AccountStore(t.node.state_dir, pebble.directory)
    code, shown = run_json(["account", "show", *where(t.node)], capsys)  # the CA is remembered
    assert code == 0
    assert shown["status"] == "valid" and shown["contact"] == ["mailto:ops@example.test"]
    old_key = store.key_path.read_bytes()

    code, rolled = run_json(["account", "rollover", *where(t.node)], capsys)
    assert code == 0 and rolled["key_thumbprint"] != shown["key_thumbprint"]
    assert store.key_path.read_bytes() != old_key
    assert oct(store.key_path.stat().st_mode & 0o777) == "0o600"
    assert not (store.folder / "key.next.pem").exists()
    code, again = run_json(["account", "show", *where(t.node)], capsys)
    assert again["uri"] == shown["uri"] and again["key_thumbprint"] == rolled["key_thumbprint"]
    assert run_json(issue_args(pebble, t.node, "--no-restart"), capsys)[0] == 0  # the new key signs orders

    assert main(["account", "deactivate", *where(t.node)]) == 2
    assert "cannot be undone: add --yes" in capsys.readouterr().err
    code, out = run_json(["account", "deactivate", "--yes", *where(t.node)], capsys)
    assert code == 0 and Path(out["moved_to"]).name.startswith(store.folder.name + ".deactivated-")
    assert main(["account", "show", *where(t.node)]) == 2
    capsys.readouterr()
    code, _ = run_json(issue_args(pebble, t.node, "--no-restart"), capsys)
    assert code == 0
    assert json.loads(store.meta_path.read_text())["uri"] != shown["uri"]  # a new account
