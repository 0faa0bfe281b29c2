"""Operators' habits (issue 13, item 2): certbot's and lego's spellings, subcommands with their
own help, JSON errors, a closed pipe, and a parser that builds only the chosen verb."""

from __future__ import annotations

import ast
import datetime as dt
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sesam_tls import cli
from sesam_tls.cli import VERBS, main

from . import certgen as g
from .acme_fixtures import node_factory  # noqa: F401 - a fixture
from .helpers import make_root, serve_folder, tree_digest

REPO = Path(__file__).resolve().parents[1]


def parsed(argv: list[str]) -> dict:
    """The namespace ``argv`` parses to, without running the verb (private names left out)."""
    parse = getattr(cli, "parse_args", None) or (lambda a: cli.build_parser().parse_args(a))
    return {k: v for k, v in vars(parse(argv)).items() if not k.startswith("_")}


# ---- every spelling, beside ours ------------------------------------------------------------

SPELLINGS = [
    # (theirs, ours)
    (["issue", "-m", "ops@example.test"], ["issue", "--email", "ops@example.test"]),
    (["issue", "--domains", "a.example.test"], ["issue", "--domain", "a.example.test"]),
    (["issue", "--domains", "a.example.test,b.example.test"], ["issue", "-d", "a.example.test", "-d", "b.example.test"]),
    (["issue", "-d", "a.example.test,b.example.test"], ["issue", "-d", "a.example.test", "-d", "b.example.test"]),
    (["issue", "-d", " a.example.test , b.example.test ", "-d", "c.example.test"],
     ["issue", "-d", "a.example.test", "-d", "b.example.test", "-d", "c.example.test"]),
    (["check", "-d", "a.example.test,b.example.test"], ["check", "-d", "a.example.test", "-d", "b.example.test"]),
    (["check", "--domains", "a.example.test"], ["check", "-d", "a.example.test"]),
    (["import", "--cert", "c.pem", "-d", "a.example.test,b.example.test"],
     ["import", "--cert", "c.pem", "-d", "a.example.test", "-d", "b.example.test"]),
    (["issue", "-n"], ["issue", "--non-interactive"]),
    (["import", "--cert", "c.pem", "-n"], ["import", "--cert", "c.pem", "--non-interactive"]),
    (["renew", "-n"], ["renew", "--non-interactive"]),
    (["status", "-v"], ["status", "--verbose"]),
    (["renew", "--force-renewal"], ["renew", "--force"]),
    (["issue", "--key-type", "ec256"], ["issue", "--key-type", "ecdsa-p256"]),
    (["issue", "--key-type", "ecdsa"], ["issue", "--key-type", "ecdsa-p256"]),
    (["issue", "--key-type", "EC256"], ["issue", "--key-type", "ecdsa-p256"]),
    (["issue", "--key-type", "ec384"], ["issue", "--key-type", "ecdsa-p384"]),
    (["issue", "--key-type", "rsa2048"], ["issue", "--key-type", "rsa-2048"]),
    (["issue", "--key-type", "rsa3072"], ["issue", "--key-type", "rsa-3072"]),
    (["issue", "--key-type", "rsa4096"], ["issue", "--key-type", "rsa-4096"]),
    (["issue", "--key-type", "RSA-4096"], ["issue", "--key-type", "rsa-4096"]),
    (["revoke", "--reason", "keycompromise"], ["revoke", "--reason", "keyCompromise"]),
    (["revoke", "--reason", "KEYCOMPROMISE"], ["revoke", "--reason", "keyCompromise"]),
    (["revoke", "--reason", "cessationofoperation"], ["revoke", "--reason", "cessationOfOperation"]),
    (["revoke", "--reason", "Superseded"], ["revoke", "--reason", "superseded"]),
    # before subcommands, options could come before the action: both orders still work
    (["timer", "--root", "/srv/node", "--cron", "install"], ["timer", "install", "--cron", "--root", "/srv/node"]),
    (["timer", "--json", "status", "--ssl-dir", "/srv/ssl"], ["timer", "status", "--ssl-dir", "/srv/ssl", "--json"]),
    (["account", "--yes", "--server", "https://ca.test/dir", "deactivate"],
     ["account", "deactivate", "--server", "https://ca.test/dir", "--yes"]),
    (["account", "--staging", "-q", "show"], ["account", "show", "--staging", "-q"]),
]


@pytest.mark.parametrize("theirs, ours", SPELLINGS, ids=[" ".join(t) for t, _ in SPELLINGS])
def test_their_spelling_means_ours(theirs, ours):
    assert parsed(theirs) == parsed(ours)


def test_our_spellings_still_parse_as_before():
    args = parsed(["issue", "-d", "a.example.test", "--key-type", "rsa-2048", "--email", "x@example.test"])
    assert args["domain"] == ["a.example.test"] and args["key_type"] == "rsa-2048"
    assert args["email"] == "x@example.test" and args["non_interactive"] is False
    assert parsed(["timer", "status"])["action"] == "status"
    assert parsed(["account", "show"])["action"] == "show"
    timer = parsed(["timer", "--root", "/srv/node", "install"])  # not overwritten by the subcommand's defaults
    assert timer["root"] == "/srv/node" and timer["cron"] is False and timer["json"] is False
    assert parsed(["account", "show"])["server"] is None and parsed(["account", "show"])["yes"] is False


def test_webroot_implies_the_webroot_strategy(tmp_path):
    from sesam_tls.cli.acme_args import http01_from_args

    def strategy(*argv):
        return http01_from_args(cli.parse_args(["issue", *argv]) if hasattr(cli, "parse_args")
                                else cli.build_parser().parse_args(["issue", *argv])).strategy

    assert strategy("--webroot", str(tmp_path)) == "webroot"
    assert strategy() == "auto"
    assert strategy("--http01", "standalone") == "standalone"
    from sesam_tls.errors import UsageError

    with pytest.raises(UsageError, match="`http01.webroot` is only used with `http01.strategy` webroot"):
        strategy("--http01", "standalone", "--webroot", str(tmp_path))  # given both: as today, refused


@pytest.mark.parametrize("value", ["a.example.test,,b.example.test", "a.example.test,", ",", " , a.example.test"])
def test_an_empty_name_in_a_list_is_refused_in_one_line(tmp_path, capsys, value):
    root = make_root(tmp_path)
    before = tree_digest(root)
    code = main(["issue", "--self-signed", "-d", value, "--root", str(root), "--no-restart"])
    out, err = capsys.readouterr()
    assert code == 2
    errors = [line for line in err.splitlines() if "error" in line]
    assert errors == [f"sesam-tls issue: error: argument -d/--domain/--domains: an empty name in {value!r}"]
    assert tree_digest(root) == before


@pytest.mark.parametrize("value", ["ec521", "dsa", "rsa1024", ""])
def test_an_unknown_key_type_is_refused_naming_it(capsys, value):
    assert main(["issue", "--self-signed", "-d", "a.example.test", "--key-type", value]) == 2
    err = capsys.readouterr().err
    assert f"unknown key type {value!r}" in err and "ecdsa-p256" in err


def test_an_unknown_revocation_reason_is_refused(capsys):
    assert main(["revoke", "--reason", "because"]) == 2
    assert "invalid choice: 'because'" in capsys.readouterr().err


# ---- -n: no prompt, ever ----------------------------------------------------------------------

class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_non_interactive_turns_the_password_prompt_into_an_error(tmp_path, capsys, monkeypatch):
    import getpass

    monkeypatch.setattr(getpass, "getpass", lambda prompt: pytest.fail("prompted under --non-interactive"))
    monkeypatch.setattr(sys, "stdin", _Terminal())
    root = make_root(tmp_path)
    pki = g.pki(now=dt.datetime.now(dt.timezone.utc))  # the command runs on the real clock
    (tmp_path / "cert.pem").write_bytes(g.pem(pki.leaf, pki.inter.cert))
    (tmp_path / "key.pem").write_bytes(g.key_bytes(pki.key, password=g.PASSWORD))
    before = tree_digest(root)
    for flag in ("-n", "--non-interactive"):
        code = main(["import", "--cert", str(tmp_path / "cert.pem"), "--key", str(tmp_path / "key.pem"), flag,
                     "--root", str(root), "--no-restart"])
        err = capsys.readouterr().err
        assert code == 3, err
        assert err == (f"sesam-tls: error: {tmp_path / 'key.pem'}: the private key is encrypted; give its password "
                       "with --password-file FILE, --password-env VAR or --password-stdin\n")
    assert tree_digest(root) == before


# ---- -v: debug lines, no traceback ----------------------------------------------------------

def test_verbose_shows_debug_lines_but_no_traceback(tmp_path, capsys):
    """-v is --debug's log level without the tracebacks: for an operator, not for a bug report."""
    root = make_root(tmp_path)
    (root / "etc/sesam-agent/config.json").write_text('{"docker_password": "s3cret", ')
    argv = ["issue", "--self-signed", "-d", "a.example.test", "--root", str(root), "--no-restart"]
    plain = main(argv)
    plain_err = capsys.readouterr().err
    for flag in ("-v", "--verbose"):
        assert main([*argv, flag]) == plain != 0
        verbose = capsys.readouterr().err
        assert "Traceback" not in verbose and "s3cret" not in verbose
        assert verbose.endswith(plain_err)  # the same error line, last
    assert main([*argv, "--debug"]) == plain
    debug = capsys.readouterr().err
    assert "Traceback" in debug and "s3cret" not in debug


def test_verbose_sets_the_debug_level(tmp_path, capsys, monkeypatch):
    seen = []
    from sesam_tls.cli import status as status_verb

    monkeypatch.setattr(status_verb, "run", lambda args: seen.append(logging.getLogger("sesam_tls").level) or 0)
    for flag, level in (("-v", logging.DEBUG), ("--debug", logging.DEBUG), ("-q", logging.WARNING), (None, logging.INFO)):
        assert main(["status", "--root", str(tmp_path), *([flag] if flag else [])]) == 0
        assert seen.pop() == level


# ---- each verb its own usage, subcommands with their own help ------------------------------

WRONG_FLAG = [[verb] for verb in VERBS if verb not in ("timer", "account")] + [
    ["timer", "install"], ["timer", "status"], ["account", "show"], ["account", "rollover"],
]


@pytest.mark.parametrize("verb", WRONG_FLAG, ids=[" ".join(v) for v in WRONG_FLAG])
def test_a_wrong_flag_shows_the_verbs_own_usage(capsys, verb):
    needed = ["--cert", "c.pem"] if verb == ["import"] else []
    assert main([*verb, *needed, "--no-such-flag"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: sesam-tls {' '.join(verb)} "), err
    assert err.rstrip().endswith("unrecognized arguments: --no-such-flag")


def test_abbreviations_stay_refused(capsys):
    assert main(["renew", "--forc"]) == 2
    assert main(["timer", "install", "--cro"]) == 2
    assert main(["account", "deactivate", "--ye"]) == 2


@pytest.mark.parametrize("verb, own, other", [
    (["timer", "install"], "--cron", None),
    (["timer", "remove"], "--root", "--cron"),
    (["timer", "status"], "--json", "--cron"),
    (["account", "show"], "--server", "--yes"),
    (["account", "rollover"], "--server", "--yes"),
    (["account", "deactivate"], "--yes", None),
])
def test_timer_and_account_subcommands_have_their_own_help(capsys, verb, own, other):
    assert main([*verb, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: sesam-tls {' '.join(verb)} ")
    assert own in out
    if other:
        assert other not in out


def test_timer_and_account_list_their_subcommands(capsys):
    assert main(["timer", "--help"]) == 0
    out = capsys.readouterr().out
    assert all(word in out for word in ("install", "remove", "status"))
    assert main(["account"]) == 2
    assert "usage: sesam-tls account" in capsys.readouterr().err


# ---- --json errors ------------------------------------------------------------------------

def test_json_errors_are_json_on_stdout_with_the_same_exit_code(tmp_path, capsys):
    root = make_root(tmp_path)
    (root / "etc/sesam-agent/config.json").write_text('{"docker_password": "s3cret", ')
    argv = ["issue", "--self-signed", "-d", "a.example.test", "--root", str(root), "--no-restart"]
    plain = main(argv)
    plain_err = capsys.readouterr().err
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert code == plain != 0
    result = json.loads(out)
    assert result == {"error": result["error"], "exit_code": code}
    assert f"sesam-tls: error: {result['error']}\n" == plain_err == err  # the stderr line stays as it was
    assert "s3cret" not in out


def test_json_usage_errors_are_json_too(capsys):
    assert main(["issue", "--json", "--no-such-flag"]) == 2
    out, err = capsys.readouterr()
    assert json.loads(out) == {"error": "unrecognized arguments: --no-such-flag", "exit_code": 2}
    assert "usage: sesam-tls issue" in err


# ---- a closed pipe ---------------------------------------------------------------------

def _run(argv, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-m", "sesam_tls", *argv], env=env, timeout=120, **kwargs)


def test_a_closed_pipe_ends_quietly(tmp_path):
    root = make_root(tmp_path)
    assert _run(["issue", "--self-signed", "-d", "a.example.test", "--root", str(root), "--no-restart"],
                capture_output=True).returncode == 0
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written (as `| head -1` after its line)
    try:
        done = _run(["status", "--json", "--root", str(root)], stdout=write, stderr=subprocess.PIPE)
    finally:
        os.close(write)
    assert done.returncode == 141, done.stderr
    assert done.stderr == b""


# ---- only the chosen verb is built ----------------------------------------------------------

PROBE = """
import sys
from sesam_tls.cli import main
try:
    code = main(sys.argv[1:])
finally:
    sys.stdout.flush()
print("\\nMODULES", sorted(m for m in sys.modules if m.startswith("sesam_tls.cli.")), code)
"""


def _modules(*argv):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], env=env, capture_output=True, text=True, timeout=60)
    line = done.stdout.rsplit("MODULES ", 1)[1]
    names, code = line.rsplit("]", 1)
    return ast.literal_eval(names + "]"), int(code), done.stdout


@pytest.mark.parametrize("flag", ["--help", "--version", "-h"])
def test_help_and_version_import_no_verb_module(flag):
    modules, code, out = _modules(flag)
    assert code == 0
    assert modules == []
    if flag != "--version":
        assert all(verb in out for verb in VERBS)  # the verbs and their help lines, from the table
        assert VERBS["issue"][1][:40] in out


def test_a_verb_builds_only_its_own_parser():
    modules, code, _ = _modules("status", "--help")
    assert code == 0
    assert modules == ["sesam_tls.cli.common", "sesam_tls.cli.status"]


# ---- the spellings together, against a real CA ----------------------------------------------

@pytest.mark.integration
def test_lego_and_certbot_spellings_issue_from_pebble_by_webroot(pebble, node_factory, tmp_path, capsys):
    """`--webroot DIR` alone (no --http01), -m, --domains, -n and a lego key type: a real issuance,
    the token served from DIR by a web server of the test's own on Pebble's HTTP-01 port."""
    from sesam_tls.state import load_record

    from .acme_fixtures import NAME  # a name Pebble resolves to loopback

    webroot = tmp_path / "www"
    webroot.mkdir()
    with serve_folder(webroot, pebble.http_port):
        t = node_factory()
        code = main(["issue", "--domains", NAME, "-m", "ops@example.test", "--agree-tos", "--key-type", "ec384", "-n",
                     "--server", pebble.directory, "--ca-bundle", pebble.ca_bundle, "--webroot", str(webroot),
                     "--http-port", str(pebble.http_port), "--root", str(t.node.root), "--no-restart", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["key_type"] == "ecdsa-p384"
    record = load_record(t.node.metadata_path)
    assert record.provider_settings.http01 == "webroot"
    assert record.provider_settings.webroot == str(webroot)
    assert not (webroot / ".well-known/acme-challenge").exists() or not any((webroot / ".well-known/acme-challenge").iterdir())
