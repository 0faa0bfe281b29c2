"""DNS-01 end to end: a real knotd (RFC 2136 + TSIG), a real Pebble whose VA resolves through it, real nginx.

Every test uses names of its own under example.test, so they share the session's knot and Pebble.
Nothing here asks any DNS server but the testbed's on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from sesam_tls.cli import main
from sesam_tls.state import load_metadata

from .acme_fixtures import acme_front, node_factory, verified_handshake  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration


def ca(pebble) -> list[str]:
    return ["--server", pebble.directory, "--ca-bundle", pebble.ca_bundle]


def where(node) -> list[str]:
    args = ["--root", str(node.root)]
    if node.docker_host:
        args += ["--container", node.container, "--docker-host", node.docker_host]
    else:
        args += ["--no-restart"]
    return args


def rfc2136(knot, secret_file=None) -> list[str]:
    return ["--dns-server", knot.address, "--dns-tsig-name", knot.key_name,
            "--dns-tsig-file", str(secret_file or knot.secret_file)]


def issue(pebble, node, names, *extra: str) -> list[str]:
    domains = [a for n in names for a in ("-d", n)]
    return ["issue", *domains, *ca(pebble), "--agree-tos", "--challenge", "dns-01", *where(node), *extra]


def run(argv, capsys) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def ssl_files(node) -> tuple[bytes, bytes]:
    return (node.ssl_dir / "fullchain.pem").read_bytes(), (node.ssl_dir / "privkey.pem").read_bytes()


def sans(node) -> list[str]:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((node.ssl_dir / "fullchain.pem").read_bytes())
    return sorted(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName))


# --- RFC 2136 ------------------------------------------------------------------------------------


def test_rfc2136_one_name_is_issued_deployed_and_its_record_removed(pebble_dns, knot, node_factory, capsys):
    t = node_factory(container=True)
    name = "one.example.test"
    code, out, err = run(issue(pebble_dns, t.node, [name], *rfc2136(knot),
                               "--verify", f"127.0.0.1:{t.https_port}"), capsys)
    assert code == 0, err
    served = verified_handshake(t.https_port, name, pebble_dns.root_pem())
    assert served.subject.rfc4514_string() == f"CN={name}"
    assert knot.txt(f"_acme-challenge.{name}") == []
    assert f"_acme-challenge.{name}" in err  # the progress line of the propagation check
    assert knot.secret not in out + err


def test_a_wildcard_and_its_base_name_in_one_certificate(pebble_dns, knot, node_factory, capsys):
    t = node_factory()
    code, _, err = run(issue(pebble_dns, t.node, ["*.wild.example.test", "wild.example.test"], *rfc2136(knot)), capsys)
    assert code == 0, err
    assert sans(t.node) == ["*.wild.example.test", "wild.example.test"]
    assert knot.txt("_acme-challenge.wild.example.test") == []


def test_a_cname_on_acme_challenge_is_followed_to_the_validation_zone(pebble_dns, knot, node_factory, capsys):
    t = node_factory()
    code, _, err = run(issue(pebble_dns, t.node, ["alias.example.test"], *rfc2136(knot)), capsys)
    assert code == 0, err
    assert "alias.validation.example.test" in err
    assert knot.txt("alias.validation.example.test") == []
    assert knot.txt("_acme-challenge.alias.example.test") == []


def test_a_txt_value_already_at_the_name_survives_the_cleanup(pebble_dns, knot, node_factory, capsys):
    t = node_factory()
    knot.update('add _acme-challenge.keep.example.test. 5 TXT "a-parallel-run"')
    try:
        code, _, err = run(issue(pebble_dns, t.node, ["keep.example.test"], *rfc2136(knot)), capsys)
        assert code == 0, err
        assert knot.txt("_acme-challenge.keep.example.test") == ["a-parallel-run"]
    finally:
        knot.update('delete _acme-challenge.keep.example.test. TXT "a-parallel-run"')


def test_http01_refuses_a_wildcard_and_says_why(tmp_path, capsys):
    code, _, err = run(["issue", "-d", "*.example.test", "--root", str(tmp_path), "--no-restart"], capsys)
    assert code == 2
    assert "*.example.test" in err and "HTTP-01" in err and "--challenge dns-01" in err


def test_a_wrong_tsig_secret_is_one_clear_error_nothing_deployed_no_record(pebble_dns, knot, node_factory, capsys,
                                                                             tmp_path):
    t = node_factory()
    before = ssl_files(t.node)
    wrong = tmp_path / "wrong.secret"
    wrong.write_text("c2VzYW0tdGxzLXdyb25nLXNlY3JldC0wMTIzNDU2Nzg5YWI=\n")
    wrong.chmod(0o600)
    code, out, err = run(issue(pebble_dns, t.node, ["badkey.example.test"], *rfc2136(knot, wrong)), capsys)
    assert code == 8
    lines = [line for line in err.splitlines() if line.startswith("sesam-tls: error:")]
    assert len(lines) == 1, err
    assert "TSIG" in lines[0] and knot.address in lines[0] and knot.key_name in lines[0]
    assert "c2VzYW0t" not in out + err
    assert ssl_files(t.node) == before
    assert knot.txt("_acme-challenge.badkey.example.test") == []


def test_the_secret_never_comes_from_argv(tmp_path, capsys):
    code, _, err = run(["issue", "-d", "x.example.test", "--challenge", "dns-01", "--dns-server", "127.0.0.1:1",
                        "--dns-tsig-name", "k", "--dns-tsig-secret", "c2VjcmV0", "--root", str(tmp_path)], capsys)
    assert code == 2 and "unrecognized arguments: --dns-tsig-secret" in err


# --- propagation ---------------------------------------------------------------------------------


def test_a_server_that_never_gets_the_update_is_named_and_dropping_it_passes(pebble_dns, knot, knot_lagging,
                                                                            node_factory, capsys):
    t = node_factory()
    before = ssl_files(t.node)
    started = time.monotonic()
    code, _, err = run(issue(pebble_dns, t.node, ["lag.example.test"], *rfc2136(knot), "--dns-resolvers",
                             knot.address, knot_lagging.address, "--dns-propagation-timeout", "3"), capsys)
    assert time.monotonic() - started < 30
    assert code == 8
    line = [x for x in err.splitlines() if x.startswith("sesam-tls: error:")][0]
    assert "_acme-challenge.lag.example.test" in line and "after 3 s" in line
    lagging = line.split("but not by", 1)[1].split("(", 1)[0]
    assert knot_lagging.address in lagging and knot.address not in lagging
    assert ssl_files(t.node) == before
    assert knot.txt("_acme-challenge.lag.example.test") == []

    code, _, err = run(issue(pebble_dns, t.node, ["lag.example.test"], *rfc2136(knot), "--dns-resolvers",
                             knot.address, "--dns-propagation-timeout", "3"), capsys)
    assert code == 0, err


def test_a_fixed_wait_replaces_the_check(pebble_dns, knot, node_factory, capsys):
    t = node_factory()
    code, _, err = run(issue(pebble_dns, t.node, ["waited.example.test"], *rfc2136(knot),
                             "--dns-propagation-wait", "0.2"), capsys)
    assert code == 0, err
    assert "waiting 0.2 s" in err


def test_cleanup_is_structural_on_ctrl_c(knot):
    from sesam_tls.dns01 import Dns01Options, open_dns01

    options = Dns01Options.build(server=knot.address, tsig_name=knot.key_name, tsig_file=knot.secret_file)
    with pytest.raises(KeyboardInterrupt):
        with open_dns01(options, ["ctrlc.example.test"]) as responder:
            responder.present("ctrlc.example.test", "value-one")
            responder.present("ctrlc.example.test", "value-two")
            assert knot.txt("_acme-challenge.ctrlc.example.test") == ["value-one", "value-two"]
            raise KeyboardInterrupt
    assert knot.txt("_acme-challenge.ctrlc.example.test") == []


# --- renewal -------------------------------------------------------------------------------------


def test_renewal_replays_dns01_with_the_recorded_settings_and_no_secret(pebble_dns, knot, node_factory, capsys):
    t = node_factory()
    code, _, err = run(issue(pebble_dns, t.node, ["renewme.example.test"], *rfc2136(knot)), capsys)
    assert code == 0, err
    raw = t.node.metadata_path.read_text()
    assert knot.secret not in raw
    settings = load_metadata(t.node.metadata_path)["provider_settings"]
    assert settings["challenge"] == "dns-01"
    dns = settings["dns01"]
    assert dns["server"] == knot.address and dns["tsig_name"] == knot.key_name
    assert dns["tsig_file"] == str(Path(knot.secret_file).absolute())
    code, out, _ = run(["check", *where(t.node)], capsys)  # what the next renew will use
    line = [x for x in out.splitlines() if "challenge:" in x][0]
    assert code == 0 and "RFC 2136 updates to " + knot.address in line and "accepted" in line, out
    first = ssl_files(t.node)
    code, out, err = run(["renew", "--force", *where(t.node)], capsys)
    assert code == 0, err
    assert out.startswith("renewed renewme.example.test")
    assert ssl_files(t.node) != first
    assert "_acme-challenge.renewme.example.test" in err
    assert knot.txt("_acme-challenge.renewme.example.test") == []


def test_a_secret_from_the_environment_is_for_that_run_only(pebble_dns, knot, node_factory, capsys, monkeypatch):
    t = node_factory()
    monkeypatch.setenv("SESAM_TEST_TSIG", knot.secret)
    code, _, err = run(issue(pebble_dns, t.node, ["envkey.example.test"], "--dns-server", knot.address,
                             "--dns-tsig-name", knot.key_name, "--dns-tsig-env", "SESAM_TEST_TSIG"), capsys)
    assert code == 0, err
    assert "SESAM_TEST_TSIG" not in t.node.metadata_path.read_text()
    assert knot.secret not in t.node.metadata_path.read_text()
    code, _, err = run(["renew", "--force", *where(t.node)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert "TSIG secret" in lines[-1] and "--dns-tsig-file" in lines[-1]


# --- hooks ---------------------------------------------------------------------------------------

HOOK = """#!{python}
import json, os, subprocess, sys, time
log = os.environ["HOOK_LOG"]
with open(log, "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "env": dict(os.environ)}}) + "\\n")
mode = os.environ.get("HOOK_MODE", "")
verb = sys.argv[1] if len(sys.argv) > 1 else ("present" if "CERTBOT_AUTH_OUTPUT" not in os.environ else "cleanup")
if verb == "present" and mode == "fail":
    print("the provider said no", file=sys.stderr)
    sys.exit(3)
if verb == "present" and mode == "hang":
    child = subprocess.Popen(["sleep", "300"])
    open(os.environ["HOOK_LOG"] + ".child", "w").write(str(child.pid))
    time.sleep(300)
if len(sys.argv) > 1:
    fqdn, value = sys.argv[2], sys.argv[3]
else:
    fqdn, value = "_acme-challenge." + os.environ["CERTBOT_DOMAIN"] + ".", os.environ["CERTBOT_VALIDATION"]
if mode == "wrong-value" and verb == "present":
    value = "not-the-right-value"
op = "add " + fqdn + " 5 TXT " + json.dumps(value) if verb == "present" else "delete " + fqdn + " TXT " + json.dumps(value)
script = "server 127.0.0.1 %s\\nzone example.test.\\nupdate %s\\nsend\\n" % (os.environ["KNOT_PORT"], op)
secret = open(os.environ["KNOT_SECRET_FILE"]).read().strip()
subprocess.run(["knsupdate", "-y", "hmac-sha256:test-key:" + secret], input=script, text=True, check=True)
print("hook did " + verb)
"""


@pytest.fixture
def hook(tmp_path, knot, monkeypatch):
    script = tmp_path / "dns-hook"
    script.write_text(HOOK.format(python=sys.executable))
    script.chmod(0o755)
    log = tmp_path / "hook.log"
    monkeypatch.setenv("HOOK_LOG", str(log))
    monkeypatch.setenv("KNOT_PORT", str(knot.port))
    monkeypatch.setenv("KNOT_SECRET_FILE", knot.secret_file)
    monkeypatch.setenv("SESAM_NOT_FOR_HOOKS", "do-not-pass")
    allow = ["--dns-hook-env", "HOOK_LOG", "--dns-hook-env", "KNOT_PORT", "--dns-hook-env", "KNOT_SECRET_FILE",
             "--dns-hook-env", "HOOK_MODE"]

    def calls() -> list[dict]:
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return script, allow, calls


def test_issuance_through_the_exec_hook(pebble_dns, knot, node_factory, capsys, hook):
    script, allow, calls = hook
    t = node_factory()
    code, _, err = run(issue(pebble_dns, t.node, ["exec.example.test"], "--dns-exec-hook", str(script), *allow,
                             "--dns-resolvers", knot.address), capsys)
    assert code == 0, err
    seen = calls()
    assert [c["argv"][:2] for c in seen] == [["present", "_acme-challenge.exec.example.test."],
                                             ["cleanup", "_acme-challenge.exec.example.test."]]
    assert seen[0]["argv"][2] == seen[1]["argv"][2]
    assert "SESAM_NOT_FOR_HOOKS" not in seen[0]["env"] and "KNOT_PORT" in seen[0]["env"]
    assert knot.txt("_acme-challenge.exec.example.test") == []
    settings = load_metadata(t.node.metadata_path)["provider_settings"]["dns01"]
    assert settings["exec_hook"] == str(script) and "KNOT_PORT" in settings["hook_env"]


def test_issuance_through_certbot_style_hooks(pebble_dns, knot, node_factory, capsys, hook):
    script, allow, calls = hook
    t = node_factory()
    code, _, err = run(issue(pebble_dns, t.node, ["cb.example.test", "cb2.example.test"],
                             "--dns-auth-hook", str(script), "--dns-cleanup-hook", str(script), *allow,
                             "--dns-resolvers", knot.address), capsys)
    assert code == 0, err
    seen = calls()
    auth = [c["env"] for c in seen if "CERTBOT_AUTH_OUTPUT" not in c["env"]]
    cleanup = [c["env"] for c in seen if "CERTBOT_AUTH_OUTPUT" in c["env"]]
    assert sorted(e["CERTBOT_DOMAIN"] for e in auth) == ["cb.example.test", "cb2.example.test"]
    assert sorted(e["CERTBOT_REMAINING_CHALLENGES"] for e in auth) == ["0", "1"]
    assert all(e["CERTBOT_ALL_DOMAINS"] == "cb.example.test,cb2.example.test" for e in auth)
    assert len(cleanup) == 2 and all(e["CERTBOT_AUTH_OUTPUT"] == "hook did present" for e in cleanup)
    assert knot.txt("_acme-challenge.cb.example.test") == knot.txt("_acme-challenge.cb2.example.test") == []


def test_a_hook_that_fails_on_present_is_cleaned_up_and_the_old_certificate_stays(
        pebble_dns, knot, node_factory, capsys, hook, monkeypatch):
    script, allow, calls = hook
    monkeypatch.setenv("HOOK_MODE", "fail")
    t = node_factory(container=True)
    code, _, err = run(issue(pebble_dns, t.node, ["fail.example.test"], "--dns-exec-hook", str(script), *allow,
                             "--dns-resolvers", knot.address), capsys)
    assert code == 8
    assert "exited with code 3" in err and "the provider said no" in err
    assert [c["argv"][0] for c in calls()] == ["present", "cleanup"]
    served = verified_handshake(t.https_port, "node.example.test", t.own.fullchain_pem().decode())
    assert served.serial_number == t.own.leaf.serial_number


def test_a_hook_that_hangs_is_stopped_with_its_children_and_cleaned_up(pebble_dns, knot, node_factory, capsys, hook,
                                                                      monkeypatch, tmp_path):
    script, allow, calls = hook
    monkeypatch.setenv("HOOK_MODE", "hang")
    t = node_factory()
    before = ssl_files(t.node)
    started = time.monotonic()
    code, _, err = run(issue(pebble_dns, t.node, ["hang.example.test"], "--dns-exec-hook", str(script), *allow,
                             "--dns-resolvers", knot.address, "--dns-hook-timeout", "2"), capsys)
    assert time.monotonic() - started < 30
    assert code == 8 and "2 s" in err
    assert [c["argv"][0] for c in calls()] == ["present", "cleanup"]
    child = int((tmp_path / "hook.log.child").read_text())
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{child}") and "State:\tZ" not in open(f"/proc/{child}/status").read() \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{child}") or "State:\tZ" in open(f"/proc/{child}/status").read()
    assert ssl_files(t.node) == before


def test_the_ca_seeing_another_value_is_said_and_cleaned_up(pebble_dns, knot, node_factory, capsys, hook,
                                                            monkeypatch):
    script, allow, calls = hook
    monkeypatch.setenv("HOOK_MODE", "wrong-value")
    t = node_factory()
    code, _, err = run(issue(pebble_dns, t.node, ["wrongval.example.test"], "--dns-exec-hook", str(script), *allow,
                             "--dns-resolvers", knot.address, "--dns-propagation-wait", "0"), capsys)
    assert code == 8
    line = [x for x in err.splitlines() if x.startswith("sesam-tls: error:")][0]
    assert "_acme-challenge.wrongval.example.test" in line and "another value" in line
    assert [c["argv"][0] for c in calls()] == ["present", "cleanup"]


def test_secret_file_is_checked_before_any_network_call(tmp_path, capsys):
    secret = tmp_path / "s"
    secret.write_text("")
    secret.chmod(0o600)
    code, _, err = run(["issue", "-d", "x.example.test", "--challenge", "dns-01", "--dns-server", "127.0.0.1:1",
                        "--dns-tsig-name", "k", "--dns-tsig-file", str(secret), "--root", str(tmp_path),
                        "--no-restart"], capsys)
    assert code == 2 and str(secret) in err and "empty" in err
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


# --- problems in the node's terms, and check ----------------------------------------------------


def test_an_unknown_key_name_is_said_as_such(pebble_dns, knot, node_factory, capsys):
    t = node_factory()
    argv = issue(pebble_dns, t.node, ["nokey.example.test"], "--dns-server", knot.address, "--dns-tsig-name",
                 "no-such-key", "--dns-tsig-file", knot.secret_file)
    code, _, err = run(argv, capsys)
    assert code == 8
    line = [x for x in err.splitlines() if x.startswith("sesam-tls: error:")][0]
    assert "BADKEY" in line and "'no-such-key'" in line and knot.address in line


def test_a_zone_the_server_does_not_serve_is_not_found(pebble_dns, knot, node_factory, capsys):
    t = node_factory()
    code, _, err = run(issue(pebble_dns, t.node, ["node.elsewhere.test"], *rfc2136(knot)), capsys)
    assert code == 8
    line = [x for x in err.splitlines() if x.startswith("sesam-tls: error:")][0]
    assert line.startswith("sesam-tls: error: zone not found") and knot.address in line
    assert "_acme-challenge.node.elsewhere.test" in line


def test_check_for_dns01_finds_the_zone_tries_the_key_and_asks_the_servers(pebble_dns, knot, node_factory, capsys,
                                                                            tmp_path):
    t = node_factory()
    argv = ["check", "-d", "*.chk.example.test", "-d", "alias.example.test", *ca(pebble_dns), "--agree-tos",
            "--challenge", "dns-01", *rfc2136(knot), *where(t.node)]
    code, out, err = run(argv, capsys)
    line = [x for x in out.splitlines() if "challenge:" in x][0]
    assert line.startswith("ok "), out
    assert "zone example.test." in line and "alias.validation.example.test." in line
    assert "accepted" in line and knot.address in line
    assert knot.txt("_acme-challenge.chk.example.test") == []

    wrong = tmp_path / "wrong.secret"
    wrong.write_text("c2VzYW0tdGxzLXdyb25nLXNlY3JldC0wMTIzNDU2Nzg5YWI=\n")
    code, out, err = run([*argv[:-len(where(t.node))][:-len(rfc2136(knot))], *rfc2136(knot, wrong), *where(t.node)],
                         capsys)
    assert code == 8
    line = [x for x in out.splitlines() if "challenge:" in x][0]
    assert line.startswith("FAIL") and "BADSIG" in line


def _with_caa_identity(body: bytes, data: bytes) -> bytes:
    if b'"newOrder"' not in data:
        return data
    directory = json.loads(data)
    directory.setdefault("meta", {})["caaIdentities"] = ["pebble.test"]
    return json.dumps(directory).encode()


def test_check_names_the_caa_records_that_forbid_the_ca_and_the_method(knot, acme_front, node_factory, capsys):
    front = acme_front()
    front.rewrite = _with_caa_identity
    t = node_factory()
    records = ['caa-ca.example.test. 5 CAA 0 issue "other-ca.example"',
               'caa-method.example.test. 5 CAA 0 issue "pebble.test; validationmethods=http-01"',
               'caa-ok.example.test. 5 CAA 0 issue "pebble.test; validationmethods=dns-01"']
    knot.update(*(f"add {r}" for r in records))
    try:
        argv = ["check", "-d", "caa-ca.example.test", "-d", "www.caa-method.example.test", "-d", "caa-ok.example.test",
                "--server", front.directory, "--ca-bundle", front.ca_bundle, "--agree-tos", "--challenge", "dns-01",
                *rfc2136(knot), *where(t.node)]
        code, out, _ = run(argv, capsys)
    finally:
        knot.update(*(f"delete {r.replace(' 5 CAA', ' CAA')}" for r in records))
    line = [x for x in out.splitlines() if "CAA:" in x][0]
    assert code == 8 and line.startswith("FAIL"), out
    assert "caa-ca.example.test: CAA at caa-ca.example.test allows only other-ca.example, not this CA" in line
    assert "www.caa-method.example.test: CAA at caa-method.example.test" in line
    assert "allows only http-01, not dns-01" in line
    assert "caa-ok" not in line


@pytest.mark.parametrize(("extra", "message"), [
    (["-d", "x.example.test", "--dns-server", "127.0.0.1:1"], "--dns-server is a DNS-01 option: add --challenge dns-01"),
    (["-d", "x.example.test", "--challenge", "dns-01"], "needs a way to publish the TXT record"),
    (["-d", "x.example.test", "--challenge", "dns-01", "--dns-server", "127.0.0.1:1"], "add --dns-tsig-name"),
    (["-d", "x.example.test", "--challenge", "dns-01", "--dns-exec-hook", "/bin/true", "--dns-auth-hook", "/bin/true"],
     "two contracts"),
    (["-d", "x.example.test", "--challenge", "dns-01", "--dns-exec-hook", "/bin/true", "--dns-hook-env", "A-B"],
     "--dns-hook-env A-B: not an environment variable name"),
    (["-d", "x.example.test", "--challenge", "dns-01", "--dns-exec-hook", "/bin/true", "--dns-resolvers", "h:0"],
     "--dns-resolvers h:0: the port must be"),
    (["-d", "x.example.test", "--self-signed", "--challenge", "dns-01"], "--challenge is an ACME option"),
    (["-d", "x.example.test", "--challenge", "dns-01", "--dns-exec-hook", "/bin/true", "--eab-kid", "k",
      "--eab-hmac-env", "EAB", "--dns-hook-env", "EAB"], "--dns-hook-env EAB: that variable holds a secret"),
])
def test_bad_dns01_options_exit_2_before_any_network_call(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.setenv("EAB", "c2VjcmV0")
    code, _, err = run(["issue", *extra, "--root", str(tmp_path), "--no-restart"], capsys)
    assert code == 2 and message in err, err


def test_an_ip_address_cannot_be_validated_over_dns01(node_factory, capsys, knot):
    t = node_factory()
    code, _, err = run(["issue", "--ip", "127.0.0.1", "--server", "https://127.0.0.1:1/dir", "--agree-tos",
                        "--challenge", "dns-01", *rfc2136(knot), *where(t.node)], capsys)
    assert code == 2 and "cannot be validated over DNS-01" in err, err
