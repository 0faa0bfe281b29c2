"""``sesam-tls import`` in-process on a scratch root with --no-restart: what lands on disk,
and that a refusal changes nothing at all (the whole root is hashed before and after)."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from sesam_tls.cli import main

from . import certgen as g
from .helpers import input_writer, make_root, run_import, tree_digest

REPO = Path(__file__).resolve().parents[1]
# The command runs on the real clock, so this corpus is built around it.
NOW = dt.datetime.now(dt.timezone.utc)
EC = g.pki(now=NOW)
OTHER = g.pki(["other.example.com"], now=NOW)
PW = g.PASSWORD
WRONG = b"Wr0ng-guess-4711"


@pytest.fixture
def root(tmp_path):
    """A node root holding only the example agent config of Sesam's guide."""
    return make_root(tmp_path)


@pytest.fixture
def inputs(tmp_path):
    """Writes input files outside the root; returns their paths."""
    return input_writer(tmp_path / "in")


sesam_tls = run_import


def ssl_dir(root: Path) -> Path:
    return root / "sesam/nginx/conf/ssl"


# success ------------------------------------------------------------------------------


def test_import_pem_files(root, inputs, capsys):
    cert = inputs(
        "cert.pem", g.with_text(g.pem(EC.root.cert), g.pem(EC.leaf), g.pem(EC.inter.cert))
    )
    key = inputs("key.pem", g.key_bytes(EC.key, password=PW))
    pwfile = inputs("pw", PW + b"\n")
    code, out, err = sesam_tls(
        capsys,
        root,
        "--cert",
        cert,
        "--key",
        key,
        "--password-file",
        pwfile,
        "--domain",
        "node.example.com",
    )
    assert code == 0, err
    assert out.startswith("deployed import certificate for node.example.com")
    assert (ssl_dir(root) / "fullchain.pem").read_bytes() == g.pem(EC.leaf, EC.inter.cert)
    key_file = ssl_dir(root) / "privkey.pem"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    loaded = serialization.load_pem_private_key(key_file.read_bytes(), password=None)  # unencrypted
    assert loaded.private_numbers() == EC.key.private_numbers()
    config = json.loads((root / "etc/sesam-agent/config.json").read_text())
    assert config["nginx"]["ssl_cert"] == "/etc/nginx/includes.d/ssl/fullchain.pem"
    meta = json.loads((root / "var/lib/sesam-tls/certificate.json").read_text())
    assert meta["provider"] == "import"
    assert meta["provider_settings"]["key_file"] == key
    assert meta["request"]["key_type"] == "ecdsa-p256"
    _assert_no_password_under(root)


def _assert_no_password_under(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            assert PW not in path.read_bytes(), path


@pytest.mark.parametrize("how", ["file", "env", "stdin"])
def test_password_options(root, inputs, capsys, monkeypatch, how):
    cert = inputs("node.p12", g.p12(EC.key, EC.leaf, [EC.inter.cert, EC.root.cert], password=PW))
    if how == "file":
        extra = ["--password-file", inputs("pw", PW + b"\r\n")]
    elif how == "env":
        monkeypatch.setenv("NODE_P12_PASSWORD", PW.decode())
        extra = ["--password-env", "NODE_P12_PASSWORD"]
    else:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(PW + b"\n")))
        extra = ["--password-stdin"]
    code, out, err = sesam_tls(capsys, root, "--cert", cert, *extra)
    assert code == 0, err
    assert (ssl_dir(root) / "fullchain.pem").read_bytes() == g.pem(EC.leaf, EC.inter.cert)
    _assert_no_password_under(root)


def test_prompt_only_on_a_terminal_and_only_when_encrypted(root, inputs, capsys, monkeypatch):
    asked = []

    def fake_getpass(prompt):
        asked.append(prompt)
        return PW.decode()

    import getpass

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    monkeypatch.setattr(sys, "stdin", _Terminal())
    cert = inputs("cert.pem", g.pem(EC.leaf, EC.inter.cert))
    plain = inputs("plain.pem", g.key_bytes(EC.key))
    assert sesam_tls(capsys, root, "--cert", cert, "--key", plain, "--check-only")[0] == 0
    assert asked == []
    key = inputs("key.pem", g.key_bytes(EC.key, "traditional", password=PW))
    code, out, err = sesam_tls(capsys, root, "--cert", cert, "--key", key)
    assert code == 0, err
    assert asked == [f"password for {key}: "]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_terminal_no_prompt(root, inputs, capsys, monkeypatch):
    import getpass

    monkeypatch.setattr(
        getpass, "getpass", lambda prompt: pytest.fail("prompted without a terminal")
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    cert = inputs("cert.pem", g.pem(EC.leaf, EC.inter.cert))
    key = inputs("key.pem", g.key_bytes(EC.key, password=PW))
    before = tree_digest(root)
    code, _, err = sesam_tls(capsys, root, "--cert", cert, "--key", key)
    assert code == 3
    assert (
        err == f"sesam-tls: error: {key}: the private key is encrypted; give its password with "
        "--password-file FILE, --password-env VAR or --password-stdin\n"
    )
    assert tree_digest(root) == before


def test_there_is_no_password_option_on_the_command_line(root, inputs, capsys):
    cert = inputs("cert.pem", g.pem(EC.leaf, EC.inter.cert))
    for option in ("--password", "--pass", "--passphrase"):
        assert main(["import", "--cert", cert, option, "x", "--root", str(root)]) == 2
        assert "error:" in capsys.readouterr().err


def test_expiring_soon_is_a_warning(root, inputs, capsys):
    key, leaf = EC.inter.leaf(not_after=NOW + dt.timedelta(days=5))
    cert = inputs("cert.pem", g.pem(leaf, EC.inter.cert) + g.key_bytes(key))
    code, out, err = sesam_tls(capsys, root, "--cert", cert)
    assert code == 0
    # whole days, as people count them (the test's clock has moved on a little: 4 days and some hours)
    assert err.startswith(f"sesam-tls: warning: {cert}: the certificate 'CN=node.example.com' expires in 4 days")
    code, out, err = sesam_tls(capsys, root, "--cert", cert, "--expiry-warning-days", "3")
    assert code == 0
    assert "warning" not in err


# refusals -----------------------------------------------------------------------------


def _weak(hash_name):
    w = g.rsa_pki_weak(hash_name, now=NOW)
    return g.pem(w.leaf, w.inter.cert), g.key_bytes(w.key)


def _leaf(**options):
    key, leaf = EC.inter.leaf(**options)
    return g.pem(leaf, EC.inter.cert), g.key_bytes(key)


GOOD = (g.pem(EC.leaf, EC.inter.cert), g.key_bytes(EC.key))

REFUSALS = {
    # id: ((cert bytes, key bytes), extra args, the file named ("cert"/"key"), words in the reason)
    "CSR as the certificate": (
        (g.csr_pem(EC.key), GOOD[1]),
        [],
        "cert",
        "certificate signing request, not a certificate",
    ),
    "public key as the key": (
        (GOOD[0], g.public_pem(EC.key)),
        [],
        "key",
        "public key, not a private key",
    ),
    "garbage": ((b"hello\x00\xff" * 50, GOOD[1]), [], "cert", "unrecognised binary data"),
    "empty key": ((GOOD[0], b""), [], "key", "the file is empty"),
    "more than 1 MiB": ((GOOD[0] + b"\n" * (1 << 20), GOOD[1]), [], "cert", "larger than 1 MiB"),
    "wrong password": (
        (GOOD[0], g.key_bytes(EC.key, password=PW)),
        ["--password-env", "PW"],
        "key",
        "wrong password",
    ),
    "key of another certificate": (
        (GOOD[0], g.key_bytes(OTHER.key)),
        [],
        "key",
        "does not belong to the certificate",
    ),
    "missing intermediate": (
        (g.pem(EC.leaf), GOOD[1]),
        [],
        "cert",
        "missing intermediate: the issuer",
    ),
    "expired": (
        _leaf(not_before=NOW - 90 * g.DAY, not_after=NOW - g.DAY),
        [],
        "cert",
        "expired on",
    ),
    "not yet valid": (
        _leaf(not_before=NOW + g.DAY, not_after=NOW + 90 * g.DAY),
        [],
        "cert",
        "is not valid before",
    ),
    "CA certificate as leaf": (_leaf(ca=True), [], "cert", "is a CA certificate"),
    "no serverAuth": (_leaf(eku=[ExtendedKeyUsageOID.CLIENT_AUTH]), [], "cert", "lacks serverAuth"),
    "RSA-1024": (_leaf(key=g.rsa_key(1024)), [], "cert", "RSA key of 1024 bits is too weak"),
    "DSA": (
        _leaf(key=g.dsa_key(), key_usage=g._usage(digital_signature=True)),
        [],
        "cert",
        "DSA keys are not supported",
    ),
    "Ed25519": (
        _leaf(key=g.ed25519_key()),
        [],
        "cert",
        "Ed25519 certificates are refused by browsers",
    ),
    "SHA-1": (_weak("sha1"), [], "cert", "signed with SHA1"),
    "MD5": (_weak("md5"), [], "cert", "signed with MD5"),
    "name not covered": (
        GOOD,
        ["--domain", "other.example.com"],
        "cert",
        "does not cover 'other.example.com'",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusal_changes_nothing(root, inputs, capsys, monkeypatch, case):
    (cert_bytes, key_bytes), extra, named, reason = REFUSALS[case]
    monkeypatch.setenv("PW", WRONG.decode())
    files = {"cert": inputs("cert.pem", cert_bytes), "key": inputs("key.pem", key_bytes)}
    before = tree_digest(root)
    code, out, err = sesam_tls(capsys, root, "--cert", files["cert"], "--key", files["key"], *extra)
    assert code == 3
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"sesam-tls: error: {files[named]}: "), err
    assert reason in err
    for secret in (PW, WRONG):
        assert secret.decode() not in err
    assert tree_digest(root) == before


def test_check_only_reports_everything_and_writes_nothing(root, inputs, capsys):
    cert_bytes, key_bytes = _leaf(ca=True, san=False, eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    cert, key = inputs("cert.pem", cert_bytes), inputs("key.pem", key_bytes)
    before = tree_digest(root)
    code, out, err = sesam_tls(capsys, root, "--cert", cert, "--key", key, "--check-only")
    assert code == 3
    lines = err.splitlines()
    assert len(lines) == 3, err
    assert all(
        line.startswith(f"sesam-tls: error: {cert}: the certificate 'CN=node.example.com' ")
        for line in lines
    )
    assert "is a CA certificate (CA:TRUE)" in lines[0]
    assert "lacks serverAuth" in lines[1]
    assert "has no subjectAltName" in lines[2]
    assert out == ""
    assert tree_digest(root) == before

    cert = inputs("ok.pem", g.pem(EC.root.cert, EC.inter.cert, EC.leaf) + g.key_bytes(EC.key))
    code, out, err = sesam_tls(capsys, root, "--cert", cert, "--check-only")
    assert code == 0, err
    assert out.startswith("ok: ecdsa-p256 certificate for node.example.com")
    assert (
        "served chain: CN=node.example.com -> CN=Sesam Test Intermediate CA; the self-signed root is left out"
        in out
    )
    assert tree_digest(root) == before


def test_check_only_json(root, inputs, capsys):
    cert = inputs("cert.pem", g.pem(EC.leaf))
    code, out, err = sesam_tls(capsys, root, "--cert", cert, "--check-only", "--json")
    assert code == 3
    result = json.loads(out)
    assert result["result"] == "refused"
    assert [e["code"] for e in result["errors"]] == ["no-key", "missing-intermediate"]


def test_the_names_of_the_managed_certificate_must_be_covered(root, inputs, capsys):
    cert = inputs("cert.pem", g.pem(EC.leaf, EC.inter.cert) + g.key_bytes(EC.key))
    assert sesam_tls(capsys, root, "--cert", cert)[0] == 0
    other = inputs("other.pem", g.pem(OTHER.leaf, OTHER.inter.cert) + g.key_bytes(OTHER.key))
    before = tree_digest(root)
    code, out, err = sesam_tls(capsys, root, "--cert", other)
    assert code == 3
    assert (
        f"does not cover 'node.example.com' (a name of the certificate it replaces, from {root}"
        in err
    )
    assert tree_digest(root) == before
    code, out, err = sesam_tls(capsys, root, "--cert", other, "--domain", "other.example.com")
    assert code == 0, err
    assert (ssl_dir(root) / "fullchain.pem").read_bytes() == g.pem(OTHER.leaf, OTHER.inter.cert)


def test_password_never_appears_for_any_input(root, inputs, capsys, monkeypatch):
    """Every file of the corpus, with the password given: no output holds it."""
    monkeypatch.setenv("PW", PW.decode())
    corpus = [
        g.key_bytes(EC.key, password=PW),
        g.p12(EC.key, EC.leaf, password=PW),
        b"",
        b"junk",
        g.csr_pem(EC.key),
        g.public_pem(EC.key),
        *(c[0][0] for c in REFUSALS.values()),
    ]
    for data in corpus:
        path = inputs("x", data)
        for args in (["--cert", path], ["--cert", inputs("c", GOOD[0]), "--key", path]):
            main(
                [
                    "import",
                    *args,
                    "--password-env",
                    "PW",
                    "--root",
                    str(root),
                    "--no-restart",
                    "--check-only",
                    "--debug",
                ]
            )
            out, err = capsys.readouterr()
            assert PW.decode() not in out + err


def test_as_a_real_process(root, inputs):
    cert = inputs("cert.pem", g.pem(EC.leaf, EC.inter.cert))
    key = inputs("key.der", g.key_bytes(EC.key, encoding="der", password=PW))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "NODE_PW": PW.decode()}
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "sesam_tls",
            "import",
            "--cert",
            cert,
            "--key",
            key,
            "--password-env",
            "NODE_PW",
            "--check-only",
            "--root",
            str(root),
        ],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ok: ecdsa-p256 certificate for node.example.com")
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "sesam_tls",
            "import",
            "--cert",
            cert,
            "--key",
            key,
            "--root",
            str(root),
        ],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert refused.returncode == 3
    assert (
        refused.stderr
        == f"sesam-tls: error: {key}: the private key is encrypted; give its password with "
        "--password-file FILE, --password-env VAR or --password-stdin\n"
    )
