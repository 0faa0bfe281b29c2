"""The Ansible module ``sesam.tls.sesam_tls_certificate``, run by the real ``ansible-playbook``.

Each playbook runs against ``localhost`` with the ``local`` connection and a
scratch node root served by a real nginx container; ACME goes to the test
session's own Pebble. The module finds ``sesam-tls`` on PATH (this venv's
console script) or is given it by its ``executable`` parameter.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from . import certgen as g
from .acme_fixtures import NAME, node_factory  # noqa: F401 - a fixture
from .helpers import tree_digest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / "ansible" / "collections"
BIN = Path(sys.executable).parent
MODULE = "sesam.tls.sesam_tls_certificate"


def _env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "ansible-home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "SESAM_TLS_"))}
    env.update(
        PATH=f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}",
        HOME=str(home),
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        ANSIBLE_REMOTE_TEMP=str(home / "remote-tmp"),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_CONFIG=str(home / "none.cfg"),
    )
    return env


def _play(tmp_path: Path, tn, args: dict, *flags: str):
    """Run one task of the module in a playbook; the completed process and the task's result
    (as the tree callback saved it: ansible-core 2.19 has no json callback of its own)."""
    node = {"root": str(tn.node.ssl_dir.parents[3])}
    if tn.https_port is not None:
        node.update(container=tn.node.container, docker_host=tn.node.docker_host)
    play = [{"hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": "ensure the certificate", MODULE: {**args, "node": node}}]}]
    path = tmp_path / "play.yml"
    path.write_text(json.dumps(play))  # JSON is YAML
    tree = tmp_path / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    env = {**_env(tmp_path), "ANSIBLE_CALLBACKS_ENABLED": "ansible.builtin.tree", "ANSIBLE_CALLBACK_TREE_DIR": str(tree)}
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(path), *flags],
                          capture_output=True, text=True, timeout=300, env=env)
    result = tree / "localhost"
    return proc, json.loads(result.read_text()) if result.exists() else None


def _root(tn) -> Path:
    return tn.node.ssl_dir.parents[3]


def _served_is_recorded(tn) -> None:
    import hashlib

    from sesam_tls.state import load_record

    from .testbed import served_cert_der

    rec = load_record(tn.node.metadata_path)
    assert hashlib.sha256(served_cert_der("127.0.0.1", tn.https_port, NAME)).hexdigest() == \
        rec.certificate.fingerprint_sha256
    config = json.loads(tn.node.agent_config.read_text())
    assert (config["nginx"]["ssl_cert"], config["nginx"]["ssl_key"]) == \
        (tn.node.container_cert_path, tn.node.container_key_path)
    assert config["docker_password"]


def _check_first_second(tmp_path, tn, args, action):
    root = _root(tn)
    before = tree_digest(root)
    proc, res = _play(tmp_path, tn, args, "--check")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    assert res["changed"] is True and res["actions"] == [action]
    assert tree_digest(root) == before, "--check changed a file"

    proc, res = _play(tmp_path, tn, args)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    assert res["changed"] is True and res["actions"] == [action]
    _served_is_recorded(tn)
    settled = tree_digest(root)

    proc, res = _play(tmp_path, tn, args)
    assert proc.returncode == 0 and res["changed"] is False and res["actions"] == []
    assert tree_digest(root) == settled
    return res


def test_self_signed_check_changed_ok_and_diff(node_factory, tmp_path):
    tn = node_factory(container=True)
    args = {"provider": "selfsigned", "names": [NAME], "deploy": {"verify": f"127.0.0.1:{tn.https_port}"}}
    res = _check_first_second(tmp_path, tn, args, "issue")
    assert res["after"]["provider"] == "selfsigned"

    # --diff of a change: the names, provider and expiry before and after (check mode: nothing written)
    root = _root(tn)
    before = tree_digest(root)
    other = {**args, "names": [NAME, "other.example.test"], "key_type": "rsa-2048"}
    proc, _ = _play(tmp_path, tn, other, "--check", "--diff")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    assert "changed: [localhost]" in text
    assert '-        "other.example.test"' not in text and '+        "other.example.test"' in text
    assert '"provider": "selfsigned"' in text and '"not_after"' in text and '+    "not_after": "(new)"' in text
    assert tree_digest(root) == before


def test_acme_on_the_session_pebble_changed_then_ok(node_factory, pebble, tmp_path):
    tn = node_factory(container=True)
    args = {"provider": "acme", "names": [NAME],
            "acme": {"directory": pebble.directory, "ca_bundle": pebble.ca_bundle, "agree_tos": True,
                     "email": "ops@example.test", "http01": "standalone", "http_port": pebble.http_port,
                     "http_address": ["127.0.0.1"]},
            "deploy": {"verify": f"127.0.0.1:{tn.https_port}"},
            "executable": str(BIN / "sesam-tls")}
    res = _check_first_second(tmp_path, tn, args, "issue")
    assert res["after"]["directory"] == pebble.directory


def test_import_wrong_password_fails_one_line_then_changed_then_ok(node_factory, tmp_path):
    tn = node_factory(container=True)
    pki = g.pki([NAME], now=dt.datetime.now(dt.timezone.utc))
    pfx = tmp_path / "node.pfx"
    pfx.write_bytes(g.p12(pki.key, pki.leaf, [pki.inter.cert], password=g.PASSWORD))
    secret = g.PASSWORD.decode()
    root = _root(tn)
    before = tree_digest(root)
    wrong = {"provider": "import", "names": [NAME], "import_files": {"cert_file": str(pfx), "password": "Wr0ng-pw"}}
    proc, res = _play(tmp_path, tn, wrong)
    assert proc.returncode != 0 and "fatal: [localhost]: FAILED" in proc.stdout, res
    assert res["exit_code"] == 3 and "\n" not in res["msg"] and str(pfx) in res["msg"]
    assert "Wr0ng-pw" not in proc.stdout + proc.stderr
    assert tree_digest(root) == before

    args = {**wrong, "import_files": {"cert_file": str(pfx), "password": secret},
            "deploy": {"verify": f"127.0.0.1:{tn.https_port}"}}
    res = _check_first_second(tmp_path, tn, args, "import")
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert secret.encode() not in path.read_bytes(), path


def test_bad_parameter_fails_with_one_line_and_changes_nothing(node_factory, tmp_path):
    tn = node_factory()
    root = _root(tn)
    before = tree_digest(root)
    proc, res = _play(tmp_path, tn, {"provider": "selfsigned", "names": [NAME], "key_type": "dsa-1024",
                                     "deploy": {"restart": False}})
    assert proc.returncode != 0 and res["exit_code"] == 2, res
    assert "dsa-1024" in res["msg"] and "\n" not in res["msg"]
    assert tree_digest(root) == before


def test_ansible_doc_renders_the_module(tmp_path):
    proc = subprocess.run([str(BIN / "ansible-doc"), "-t", "module", MODULE], capture_output=True, text=True,
                          timeout=120, env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    for word in ("sesam_tls_certificate", "provider", "import_files", "EXAMPLES", "RETURN VALUES", "check_mode"):
        assert word in proc.stdout, word
    assert not proc.stderr.strip() or "WARNING" not in proc.stderr, proc.stderr



COLLECTION = COLLECTIONS / "ansible_collections" / "sesam" / "tls"

#: ansible-test bootstraps pip in its venvs with a script it downloads; this machine has no
#: network beyond its package index, so the interpreter's own bundled pip stands in for it.
PIP_BOOTSTRAP = """import ensurepip, sys
sys.exit(ensurepip._main(["--upgrade", "--default-pip"]) or 0)
"""


@pytest.mark.parametrize("sanity", ["compile", "validate-modules"])
def test_ansible_test_sanity_passes(tmp_path, sanity):
    from ansible.release import __version__ as core

    home = tmp_path / "home"
    cache = home / ".ansible" / "test" / "cache"
    cache.mkdir(parents=True)
    major_minor = ".".join(core.split(".")[:2])
    for name in ("get_pip_24_2.py", "get_pip_24_3.py", "get_pip_25_0.py"):
        (cache / name).write_text(PIP_BOOTSTRAP)
    env = {**_env(tmp_path), "HOME": str(home)}
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    proc = subprocess.run([str(BIN / "ansible-test"), "sanity", "--test", sanity, "--python", py],
                          cwd=COLLECTION, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ERROR" not in proc.stdout + proc.stderr
    if sanity == "validate-modules":  # the one ignore: the GPLv3 header of a module in an Apache-2.0 collection
        ignores = (COLLECTION / "tests" / "sanity" / f"ignore-{major_minor}.txt").read_text().splitlines()
        assert [line.split()[1] for line in ignores] == ["validate-modules:missing-gplv3-license"]


def _recap(text: str) -> dict[str, int]:
    line = next(ln for ln in text.splitlines() if ln.startswith("localhost") and "ok=" in ln)
    return {k: int(v) for k, v in (part.split("=") for part in line.split()[2:])}


def test_example_playbook_rehearses_ensures_installs_the_timer_then_is_ok(node_factory, pebble, tmp_path):
    """ansible/sesam-tls.yml against localhost: sesam-tls already installed, ACME on the session's Pebble,
    the timer written under the scratch root. --check changes nothing; the first run rehearses at the CA,
    deploys and installs the timer; the second run changes nothing and rehearses nothing."""
    tn = node_factory(container=True)
    root = _root(tn)
    extra = {
        "sesam_tls_hosts": "localhost", "ansible_become": False, "sesam_tls_install": "none",
        "sesam_tls_names": [NAME],
        "sesam_tls_acme": {"directory": pebble.directory, "ca_bundle": pebble.ca_bundle, "agree_tos": True,
                           "email": "ops@example.test", "http01": "standalone", "http_port": pebble.http_port,
                           "http_address": ["127.0.0.1"]},
        "sesam_tls_deploy": {"verify": f"127.0.0.1:{tn.https_port}"},
        "sesam_tls_node": {"root": str(root), "container": tn.node.container, "docker_host": tn.node.docker_host},
    }
    (tmp_path / "vars.json").write_text(json.dumps(extra))

    def play(*flags: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                               str(REPO / "ansible" / "sesam-tls.yml"), "-e", f"@{tmp_path / 'vars.json'}", *flags],
                              capture_output=True, text=True, timeout=600, env=_env(tmp_path))

    before = tree_digest(root)
    proc = play("--check", "--diff")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert tree_digest(root) == before
    assert '+    "provider": "acme"' in proc.stdout

    proc = play()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    rehearsal = proc.stdout.split("TASK [Rehearse the new order")[1].split("TASK [")[0]
    assert "ok: [localhost]" in rehearsal
    assert _recap(proc.stdout)["changed"] == 2  # the certificate and the timer
    _served_is_recorded(tn)
    assert (root / "etc/systemd/system/sesam-tls-renew.timer").is_file()
    settled = tree_digest(root)

    proc = play()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert _recap(proc.stdout)["changed"] == 0
    assert "skipping: [localhost]" in proc.stdout.split("TASK [Rehearse the new order")[1].split("TASK [")[0]
    assert tree_digest(root) == settled
