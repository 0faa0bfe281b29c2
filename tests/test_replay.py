"""Replayed settings: what the watched run was told, the unattended run does (real Pebble, nginx, handshakes)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess

import pytest

from sesam_tls.cli import main
from sesam_tls.state import load_record

from .acme_fixtures import NAME, node_factory, verified_handshake  # noqa: F401 - fixture

pytestmark = pytest.mark.integration

PROXY = "http://127.0.0.1:9"  # the watched shell's proxy; loopback is in NO_PROXY, so it is never dialled
NO_PROXY = "127.0.0.1,localhost,::1"


def acme_issue(pebble, tn, *extra: str) -> list[str]:
    return ["issue", "-d", NAME, "--server", pebble.directory, "--ca-bundle", pebble.ca_bundle, "--agree-tos",
            "--http01", "standalone", "--http-port", str(pebble.http_port), "--http-address", "127.0.0.1",
            "--root", str(tn.node.root), *extra]


def exec_start(service_text: str) -> list[str]:
    """The unit's ExecStart, as systemd would run it (our words need no more than shlex's quoting)."""
    line = next(x for x in service_text.splitlines() if x.startswith("ExecStart="))
    return [w.replace("$$", "$").replace("%%", "%") for w in shlex.split(line[len("ExecStart="):])]


def test_the_timer_unit_run_under_env_i_verifies_and_rewrites_the_metrics(pebble, node_factory, tmp_path, capsys,
                                                                          monkeypatch):
    tn = node_factory(container=True)
    metrics = tmp_path / "textfile" / "sesam_tls.prom"
    metrics.parent.mkdir()
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    monkeypatch.setenv("NO_PROXY", NO_PROXY)
    argv = acme_issue(pebble, tn, "--container", tn.node.container, "--docker-host", tn.node.docker_host,
                      "--verify", f"127.0.0.1:{tn.https_port}", "--verify-name", NAME,
                      "--metrics-file", str(metrics), "--reload-mode", "reload")
    assert main(argv) == 0, capsys.readouterr().err
    first = verified_handshake(tn.https_port, NAME, pebble.root_pem())
    first_metrics = metrics.read_text()
    assert f"{first.not_valid_after_utc.timestamp():.0f}" in first_metrics

    # the timer, installed with no flags but the root; the environment gone
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    capsys.readouterr()
    assert main(["timer", "install", "--root", str(tn.node.root)]) == 0
    service = (tn.node.root / "etc/systemd/system/sesam-tls-renew.service").read_text()
    assert f'Environment="HTTPS_PROXY={PROXY}"' in service
    assert f'Environment="NO_PROXY={NO_PROXY}"' in service
    command = exec_start(service)
    assert not {"--verify", "--metrics-file", "--container", "--docker-host", "--reload-mode"} & set(command)

    done = subprocess.run(["env", "-i", f"PATH={os.environ['PATH']}", *command, "--force"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"verified: 127.0.0.1:{tn.https_port} serves the new certificate" in done.stderr
    assert f"reloaded nginx in container {tn.node.container}" in done.stderr
    second = verified_handshake(tn.https_port, NAME, pebble.root_pem())
    assert second.serial_number != first.serial_number
    record = load_record(tn.node.metadata_path)
    assert record.deployment.verified and record.deployment.action == "reload"
    assert record.certificate.serial == format(second.serial_number, "x")
    text = metrics.read_text()
    assert text != first_metrics and f'{second.not_valid_after_utc.timestamp():.0f}' in text

    # status shows what the timer will replay
    capsys.readouterr()
    assert main(["status", "--root", str(tn.node.root), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["settings"]
    assert shown["verify"] == f"127.0.0.1:{tn.https_port}" and shown["metrics_file"] == str(metrics)
    assert shown["reload_mode"] == "reload" and shown["proxy"]["https_proxy"] == PROXY
    assert main(["status", "--root", str(tn.node.root)]) == 0
    out = capsys.readouterr().out
    assert f"verify:         127.0.0.1:{tn.https_port}" in out and f"proxy:          HTTPS_PROXY={PROXY}" in out


def test_configure_changes_what_renew_verifies(node_factory, tmp_path, capsys, monkeypatch):
    tn = node_factory(container=True)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    where = ["--root", str(tn.node.root)]
    assert main(["issue", "--self-signed", "-d", NAME, *where, "--container", tn.node.container,
                 "--docker-host", tn.node.docker_host]) == 0, capsys.readouterr().err
    before = load_record(tn.node.metadata_path)
    assert before.deployment.verified is False

    # nothing listens there: the renewal's handshake fails, the old pair stays
    from .testbed import free_port

    dead = f"127.0.0.1:{free_port()}"
    assert main(["configure", *where, "--verify", dead, "--timeout", "3"]) == 0
    assert load_record(tn.node.metadata_path).certificate == before.certificate  # no new certificate
    capsys.readouterr()
    code = main(["renew", "--force", *where])
    assert code != 0
    assert dead in capsys.readouterr().err
    assert load_record(tn.node.metadata_path).certificate.serial == before.certificate.serial

    assert main(["configure", *where, "--verify", f"127.0.0.1:{tn.https_port}", "--verify-name", NAME]) == 0
    capsys.readouterr()
    assert main(["renew", "--force", *where]) == 0, capsys.readouterr().err
    after = load_record(tn.node.metadata_path)
    assert after.deployment.verified is True and after.certificate.serial != before.certificate.serial
    assert after.settings.verify == f"127.0.0.1:{tn.https_port}"

    # a flag given to renew wins for that run and is not recorded
    capsys.readouterr()
    assert main(["renew", "--force", *where, "--verify", dead]) != 0
    assert load_record(tn.node.metadata_path).settings.verify == f"127.0.0.1:{tn.https_port}"


def test_a_secret_from_the_environment_is_reported_missing_for_the_timer(pebble_eab, node_factory, tmp_path, capsys,
                                                                        monkeypatch):
    tn = node_factory()
    kid, hmac = min(pebble_eab.eab_keys.items())
    monkeypatch.setenv("SESAM_TEST_EAB", hmac)
    assert main([*acme_issue(pebble_eab, tn, "--no-restart"), "--eab-kid", kid,
                 "--eab-hmac-env", "SESAM_TEST_EAB"]) == 0, capsys.readouterr().err
    assert hmac not in tn.node.metadata_path.read_text()
    capsys.readouterr()
    assert main(["timer", "install", "--root", str(tn.node.root)]) == 0
    out, err = capsys.readouterr()
    said = [line for line in (out + err).splitlines() if "SESAM_TEST_EAB" in line]
    assert len(said) == 1 and "the unattended run will not have it" in said[0]
    assert hmac not in out + err
    assert main(["renew", "--root", str(tn.node.root), "--no-restart"]) == 0
    err = capsys.readouterr().err
    assert sum("SESAM_TEST_EAB" in line and "will not have it" in line for line in err.splitlines()) == 1

    # from a file: recorded by its path, and the unit loads it as a credential
    other = node_factory()
    secret = tmp_path / "eab.key"
    secret.write_text(hmac + "\n")
    secret.chmod(0o600)
    assert main([*acme_issue(pebble_eab, other, "--no-restart"), "--eab-kid", kid,
                 "--eab-hmac-file", str(secret)]) == 0, capsys.readouterr().err
    record = load_record(other.node.metadata_path)
    assert (record.provider_settings.eab_key_from.kind, record.provider_settings.eab_key_from.name) == ("file", str(secret))
    assert hmac not in other.node.metadata_path.read_text()
    capsys.readouterr()
    assert main(["timer", "install", "--root", str(other.node.root)]) == 0
    service = (other.node.root / "etc/systemd/system/sesam-tls-renew.service").read_text()
    assert f"LoadCredential=eab-hmac:{secret}" in service
    assert "will not have it" not in capsys.readouterr().out


def test_a_proxy_password_is_not_recorded(tmp_path, capsys, monkeypatch):
    from .helpers import make_root

    root = make_root(tmp_path)
    monkeypatch.setenv("HTTPS_PROXY", "http://user:s3cret@proxy.example.test:3128")
    assert main(["issue", "--self-signed", "-d", NAME, "--root", str(root), "--no-restart"]) == 0
    err = capsys.readouterr().err
    assert "s3cret" not in err and "HTTPS_PROXY" in err and "will not have it" in err
    text = (root / "var/lib/sesam-tls/certificate.json").read_text()
    assert "s3cret" not in text
    assert load_record(root / "var/lib/sesam-tls/certificate.json").settings.proxy.https_proxy is None


class ConnectProxy:
    """An HTTP CONNECT proxy on loopback that counts the tunnels it opens (the operator's outbound proxy)."""

    def __init__(self) -> None:
        import socketserver
        import threading

        proxy = self
        self.tunnels: list[str] = []

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                import select
                import socket

                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = self.request.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                method, target = head.split(b" ", 2)[:2]
                if method != b"CONNECT":
                    self.request.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                    return
                host, _, port = target.decode().rpartition(":")
                proxy.tunnels.append(target.decode())
                with socket.create_connection((host.strip("[]"), int(port)), timeout=30) as upstream:
                    self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    ends = [self.request, upstream]
                    while True:
                        ready, _, _ = select.select(ends, [], [], 30)
                        if not ready:
                            return
                        for end in ready:
                            data = end.recv(65536)
                            if not data:
                                return
                            (upstream if end is self.request else self.request).sendall(data)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def connect_proxy():
    proxy = ConnectProxy()
    yield proxy
    proxy.close()


def test_the_unit_run_under_env_i_goes_through_the_recorded_proxy_with_the_credential(
        pebble_eab, node_factory, tmp_path, capsys, monkeypatch, connect_proxy):
    """The watched run used a proxy and an EAB key file; the unit's run, with an empty environment,
    uses the same proxy, and registers a new account (the old one lost) with the key from its credential."""
    tn = node_factory()
    kid, hmac = min(pebble_eab.eab_keys.items())
    secret = tmp_path / "eab.key"
    secret.write_text(hmac + "\n")
    secret.chmod(0o600)
    monkeypatch.setenv("HTTPS_PROXY", connect_proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert main([*acme_issue(pebble_eab, tn, "--no-restart"), "--eab-kid", kid,
                 "--eab-hmac-file", str(secret)]) == 0, capsys.readouterr().err
    watched = len(connect_proxy.tunnels)
    assert watched > 0, "the watched run did not use its proxy"
    first = load_record(tn.node.metadata_path).certificate.serial

    assert main(["timer", "install", "--root", str(tn.node.root)]) == 0
    service = (tn.node.root / "etc/systemd/system/sesam-tls-renew.service").read_text()
    assert f'Environment="HTTPS_PROXY={connect_proxy.url}"' in service
    assert f"LoadCredential=eab-hmac:{secret}" in service

    # what systemd would do: the credential in its own folder; the operator's file and the account gone
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "eab-hmac").write_text(secret.read_text())
    secret.unlink()
    import shutil

    shutil.rmtree(tn.node.state_dir / "accounts")
    done = subprocess.run(["env", "-i", f"PATH={os.environ['PATH']}", f"CREDENTIALS_DIRECTORY={credentials}",
                           *exec_start(service), "--force"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(connect_proxy.tunnels) > watched, "the timer's run did not use the recorded proxy"
    record = load_record(tn.node.metadata_path)
    assert record.certificate.serial != first
    assert record.provider_settings.account and (tn.node.state_dir / "accounts").is_dir()


def _self_signed_node(tmp_path, capsys, *extra: str):
    from .helpers import make_root

    root = make_root(tmp_path)
    assert main(["issue", "--self-signed", "-d", NAME, "--root", str(root), "--no-restart", *extra]) == 0
    capsys.readouterr()
    return root


def test_the_cron_entry_carries_the_recorded_proxy(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    monkeypatch.setenv("NO_PROXY", NO_PROXY)
    root = _self_signed_node(tmp_path, capsys)
    assert main(["timer", "install", "--cron", "--root", str(root)]) == 0
    lines = (root / "etc/cron.d/sesam-tls").read_text().splitlines()
    assert f"HTTPS_PROXY={PROXY}" in lines and f"NO_PROXY={NO_PROXY}" in lines
    assert lines.index(f"HTTPS_PROXY={PROXY}") < next(i for i, x in enumerate(lines) if " root " in x)
    capsys.readouterr()
    assert main(["timer", "status", "--root", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cron"]["current"] is True


def test_configure_records_shows_and_forgets_settings(tmp_path, capsys):
    root = _self_signed_node(tmp_path, capsys)
    where = ["--root", str(root)]
    metadata = root / "var/lib/sesam-tls/certificate.json"
    before = load_record(metadata)
    metrics = tmp_path / "m.prom"
    assert main(["configure", *where, "--metrics-file", str(metrics), "--reload-mode", "restart", "--restart"]) == 0
    assert "renew and the timer use them" in capsys.readouterr().out
    record = load_record(metadata)
    assert record.certificate == before.certificate and record.deployment == before.deployment
    assert (record.settings.metrics_file, record.settings.reload_mode, record.settings.restart) == (
        str(metrics), "restart", True)
    assert main(["status", *where]) == 0
    out = capsys.readouterr().out
    assert f"metrics file:   {metrics}" in out and "reload mode:    restart" in out

    # plain renew writes the recorded metrics file, even when nothing is due
    assert main(["renew", *where, "--no-restart"]) == 0
    assert "sesam_tls_certificate_not_after_timestamp_seconds" in metrics.read_text()

    assert main(["configure", *where, "--unset", "metrics_file", "--unset", "restart"]) == 0
    record = load_record(metadata)
    assert record.settings.metrics_file is None and record.settings.restart is None
    assert record.settings.reload_mode == "restart"


@pytest.mark.parametrize("argv, words", [
    (["--verify", "127.0.0.1:99999"], "invalid address '127.0.0.1:99999'"),
    (["--timeout", "0"], "--timeout 0"),
    (["--reload-mode", "sometimes"], "--reload-mode: invalid choice: 'sometimes'"),
])
def test_configure_refuses_bad_values_and_changes_nothing(tmp_path, capsys, argv, words):
    root = _self_signed_node(tmp_path, capsys)
    metadata = root / "var/lib/sesam-tls/certificate.json"
    before = metadata.read_bytes()
    assert main(["configure", "--root", str(root), *argv]) == 2
    err = capsys.readouterr().err
    assert words in err.strip().splitlines()[-1]
    assert metadata.read_bytes() == before


def test_configure_without_a_managed_certificate_says_so(tmp_path, capsys):
    from .helpers import make_root

    root = make_root(tmp_path)
    assert main(["configure", "--root", str(root), "--metrics-file", str(tmp_path / "m.prom")]) == 2
    assert "no managed certificate" in capsys.readouterr().err
    assert not (root / "var/lib/sesam-tls/certificate.json").exists()


def test_the_latest_issue_replaces_the_recorded_settings(tmp_path, capsys, monkeypatch):
    """As certbot keeps its latest run's options: a new issue without --metrics-file records none."""
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    metrics = tmp_path / "m.prom"
    root = _self_signed_node(tmp_path, capsys, "--metrics-file", str(metrics), "--verify-name", NAME)
    metadata = root / "var/lib/sesam-tls/certificate.json"
    assert load_record(metadata).settings.metrics_file == str(metrics)
    assert "sesam_tls_certificate_not_after_timestamp_seconds" in metrics.read_text()  # issue writes it too
    assert main(["issue", "--self-signed", "-d", NAME, "--root", str(root), "--no-restart"]) == 0
    settings = load_record(metadata).settings
    assert settings.metrics_file is None and settings.verify_name is None and settings.restart is False
