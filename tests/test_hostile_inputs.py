"""What a hostile or broken file does to the messages and to the agent config (issue 11, items 9 and 10).

In-process (``main``) on scratch roots with --no-restart: a lone surrogate in
the agent config, control characters in certificate names, a password file
others can read, and an agent config that is a symbolic link.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path

import pytest

from sesam_tls.cli import main

from . import certgen as g
from .helpers import input_writer, make_root, run_import, tree_digest

NOW = dt.datetime.now(dt.timezone.utc)
EC = g.pki(now=NOW)
FORGED = "\n[sesam-tls] forged"
CERT = "/etc/nginx/includes.d/ssl/fullchain.pem"
KEY = "/etc/nginx/includes.d/ssl/privkey.pem"


@pytest.fixture
def root(tmp_path):
    return make_root(tmp_path)


@pytest.fixture
def write(tmp_path):
    write = input_writer(tmp_path / "in")
    return lambda name, data, mode=0o600: write(name, data, mode)


sesam_tls = run_import


def config_path(root: Path) -> Path:
    return root / "etc/sesam-agent/config.json"


def pair(write, pki=EC) -> list[str]:
    return ["--cert", write("cert.pem", g.pem(pki.leaf, pki.inter.cert)), "--key", write("key.pem", g.key_bytes(pki.key))]


# a lone surrogate in the agent config ---------------------------------------------------


@pytest.mark.parametrize("where", ["docker_password", "nginx"])
def test_a_lone_surrogate_in_the_agent_config_is_one_error_line(capsys, root, write, where):
    data = json.loads(config_path(root).read_text())
    if where == "nginx":
        data["nginx"]["server_name"] = "PLACEHOLDER"
    else:
        data["docker_password"] = "PLACEHOLDER"
    text = json.dumps(data, indent=2).replace("PLACEHOLDER", "s3cret\\ud800")
    config_path(root).write_text(text)
    before = tree_digest(root)
    code, out, err = sesam_tls(capsys, root, *pair(write))
    assert code == 4, err
    assert err.count("\n") == 1 and err.startswith("sesam-tls: error: "), err
    assert str(config_path(root)) in err and "surrogate" in err and "s3cret" not in err
    assert tree_digest(root) == before


def test_status_with_a_lone_surrogate_names_the_file(capsys, root):
    config_path(root).write_text('{"docker_password": "\\udfff", "nginx": {}}')
    code = main(["status", "--root", str(root)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    line = [x for x in out.splitlines() if x.startswith("agent config:")]
    assert len(line) == 1 and "lone UTF-16 surrogate" in line[0], out
    assert code == 4  # the agent config's own exit code, with one line saying why
    assert len(err.splitlines()) == 1 and str(config_path(root)) in err and "surrogate" in err


# control characters in names -------------------------------------------------------------


def test_printable_escapes_controls_and_bidi_overrides():
    from sesam_tls.text import printable

    assert printable("a\nb\rc\x1b[31md\x00e\x7f\x85f") == "a\\x0ab\\x0dc\\x1b[31md\\x00e\\x7f\\x85f"
    assert printable("abc\u202edcba\u2066\u2069\u200f") == "abc\\u202edcba\\u2066\\u2069\\u200f"
    assert printable("caf\u00e9 \u65e5\u672c CN=x\\, y") == "caf\u00e9 \u65e5\u672c CN=x\\, y"
    assert printable("lone \udc80") == "lone \\udc80"


def _forged_pki():
    root = g.root(now=NOW)
    inter = root.ca("Sesam Test Intermediate CA")
    key, leaf = inter.leaf(
        ["node.example.com", "node.example.com" + FORGED], cn="node" + FORGED + " \u202egnp.exe"
    )
    return g.PKI(root, inter, key, leaf)


def _one_line_each(text: str) -> None:
    for line in text.splitlines():
        assert line.startswith(("sesam-tls:", "deployed ", "ok: ")), repr(line)
        assert "\u202e" not in line and "\x1b" not in line


def test_a_forged_name_is_logged_on_one_line_on_success(capsys, root, write):
    code, out, err = sesam_tls(capsys, root, *pair(write, _forged_pki()), "--domain", "node.example.com")
    assert code == 0, err
    _one_line_each(out)
    _one_line_each(err)
    assert "\\x0a[sesam-tls] forged" in out


def test_a_forged_name_is_shown_on_one_line_by_status(capsys, root, write):
    code, out, err = sesam_tls(capsys, root, *pair(write, _forged_pki()), "--domain", "node.example.com")
    assert code == 0, err
    code = main(["status", "--root", str(root)])
    out, err = capsys.readouterr()
    names = [line for line in out.splitlines() if line.startswith("names:")]
    assert len(names) == 1 and "\\x0a[sesam-tls] forged" in names[0], out
    assert not [line for line in out.splitlines() if line.startswith("[sesam-tls]")], out
    assert "\u202e" not in out


def test_a_forged_name_is_escaped_in_an_error(capsys, root, write):
    before = tree_digest(root)
    code, out, err = sesam_tls(capsys, root, *pair(write, _forged_pki()), "--domain", "other.example.com")
    assert code == 3
    _one_line_each(err)
    assert err.count("\n") == 1 and "\\x0a[sesam-tls] forged" in err
    assert tree_digest(root) == before


def test_a_forged_self_signed_name_is_escaped_in_the_warning_and_check_only_report(capsys, root, write):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = g.ec_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self" + FORGED)])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(7).not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("node.example.com")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    args = ["--cert", write("c.pem", g.pem(cert)), "--key", write("k.pem", g.key_bytes(key)), "--check-only"]
    code, out, err = sesam_tls(capsys, root, *args)
    assert code == 0, err
    _one_line_each(out)
    _one_line_each(err)
    assert "self-signed" in err and "\\x0a[sesam-tls] forged" in err


# a password file others can read ----------------------------------------------------------


@pytest.mark.parametrize(
    "mode, who", [(0o644, "everyone"), (0o640, "its group"), (0o604, "everyone")], ids=["0644", "0640", "0604"]
)
def test_a_password_file_others_can_read_is_used_with_a_warning(capsys, root, write, mode, who):
    p12 = write("node.p12", g.p12(EC.key, EC.leaf, [EC.inter.cert], password=g.PASSWORD))
    pw = write("pw", g.PASSWORD + b"\n", mode)
    code, out, err = sesam_tls(capsys, root, "--cert", p12, "--password-file", pw, "--check-only")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("sesam-tls: warning:")]
    assert len(warnings) == 1, err
    assert pw in warnings[0] and f"{mode:04o}" in warnings[0] and who in warnings[0]
    assert g.PASSWORD.decode() not in err


def test_a_private_password_file_gets_no_warning(capsys, root, write):
    p12 = write("node.p12", g.p12(EC.key, EC.leaf, [EC.inter.cert], password=g.PASSWORD))
    pw = write("pw", g.PASSWORD, 0o600)
    code, out, err = sesam_tls(capsys, root, "--cert", p12, "--password-file", pw, "--check-only")
    assert code == 0 and "warning" not in err, err


# a symlinked agent config (item 9) ----------------------------------------------------------


def _link_config(root: Path, *, hops: int = 1, mode: int = 0o640) -> Path:
    """The config moved to a managed folder and linked in (through ``hops`` links)."""
    managed = root / "managed"
    managed.mkdir()
    target = managed / "config.json"
    os.replace(config_path(root), target)
    os.chmod(target, mode)
    link = config_path(root)
    previous = target
    for hop in range(hops - 1):
        middle = root / f"hop{hop}.json"
        middle.symlink_to(os.path.relpath(previous, middle.parent))
        previous = middle
    link.symlink_to(os.path.relpath(previous, link.parent))
    return target


@pytest.mark.parametrize("hops", [1, 3])
def test_a_symlinked_agent_config_is_written_through_to_its_target(capsys, root, write, hops):
    target = _link_config(root, hops=hops)
    if os.geteuid() == 0:
        os.chown(target, 4321, 4322)
    old = json.loads(target.read_text())
    link_text = os.readlink(config_path(root))
    code, out, err = sesam_tls(capsys, root, *pair(write))
    assert code == 0, err
    link = config_path(root)
    assert link.is_symlink() and os.readlink(link) == link_text
    new = json.loads(target.read_text())
    assert new["nginx"]["ssl_cert"] == CERT and new["nginx"]["ssl_key"] == KEY
    assert {k: v for k, v in new.items() if k != "nginx"} == {k: v for k, v in old.items() if k != "nginx"}
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    if os.geteuid() == 0:
        assert (target.stat().st_uid, target.stat().st_gid) == (4321, 4322)
    for folder in (link.parent, target.parent):
        assert not [p for p in os.listdir(folder) if "sesam-tls-tmp" in p], os.listdir(folder)
    # and a second run finds it done
    code, out, err = sesam_tls(capsys, root, *pair(write))
    assert code == 0 and link.is_symlink()


def test_a_dangling_agent_config_link_is_one_error_line(capsys, root, write):
    link = config_path(root)
    link.unlink()
    link.symlink_to("../../managed/gone.json")
    before = tree_digest(root)
    code, out, err = sesam_tls(capsys, root, *pair(write))
    assert code == 4, err
    assert err.count("\n") == 1 and str(link) in err and "gone.json" in err and "does not exist" in err, err
    assert tree_digest(root) == before


def test_an_agent_config_link_loop_is_one_error_line(capsys, root, write):
    link = config_path(root)
    link.unlink()
    link.symlink_to("config.json")
    code, out, err = sesam_tls(capsys, root, *pair(write))
    assert code == 4, err
    assert err.count("\n") == 1 and str(link) in err and "a loop of symbolic links" in err, err
