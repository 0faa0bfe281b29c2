"""``sesam-tls ensure --json``: the desired state on stdin, the result (or the error) as JSON on stdout.

Run as the real executable (``python -m sesam_tls``) against a real nginx
container: what the Ansible module runs. Secrets travel only inside stdin.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest

from . import certgen as g
from .acme_fixtures import NAME, node_factory  # noqa: F401 - a fixture
from .helpers import tree_digest

pytestmark = pytest.mark.integration


def _run(tn, desired, *extra, raw=None):
    args = [sys.executable, "-m", "sesam_tls", "ensure", "--json", "--root", str(tn.node.ssl_dir.parents[3]), *extra]
    if tn.https_port is not None:
        args += ["--container", tn.node.container, "--docker-host", tn.node.docker_host]
    stdin = raw if raw is not None else json.dumps(desired)
    proc = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "SESAM_TLS_ROOT": ""})
    return proc, args


def test_self_signed_check_then_changed_then_ok(node_factory):
    tn = node_factory(container=True)
    root = tn.node.ssl_dir.parents[3]
    desired = {"provider": "selfsigned", "names": [NAME], "deploy": {"verify": f"127.0.0.1:{tn.https_port}"}}
    before = tree_digest(root)
    proc, _ = _run(tn, desired, "--check")
    assert proc.returncode == 0, proc.stderr
    preview = json.loads(proc.stdout)
    assert preview["changed"] is True and preview["check"] is True and preview["actions"] == ["issue"]
    assert preview["before"] is None and preview["after"]["names"] == [NAME]
    assert tree_digest(root) == before

    proc, _ = _run(tn, desired)
    assert proc.returncode == 0, proc.stderr
    first = json.loads(proc.stdout)
    assert first["changed"] is True and first["after"]["provider"] == "selfsigned"
    proc, _ = _run(tn, desired)
    second = json.loads(proc.stdout)
    assert proc.returncode == 0 and second["changed"] is False and second["actions"] == []
    assert second["after"] == first["after"]


@pytest.mark.parametrize("raw, code, word", [
    (json.dumps({"provider": "selfsigned", "names": [NAME], "key_type": "dsa-1024"}), 2, "dsa-1024"),
    (json.dumps({"provider": "selfsigned", "names": [NAME], "colour": "blue"}), 2, "colour"),
    ("{not json", 2, "JSON"),
    ("", 2, "stdin"),
])
def test_bad_input_is_one_json_error_with_its_exit_code_and_changes_nothing(node_factory, raw, code, word):
    tn = node_factory()
    root = tn.node.ssl_dir.parents[3]
    before = tree_digest(root)
    proc, _ = _run(tn, None, raw=raw)
    assert proc.returncode == code
    out = json.loads(proc.stdout)
    assert out["failed"] is True and out["exit_code"] == code and word in out["msg"] and "\n" not in out["msg"]
    assert len(proc.stderr.strip().splitlines()) == 1 and word in proc.stderr
    assert tree_digest(root) == before


def test_pkcs12_password_only_on_stdin_never_in_output_argv_or_record(node_factory, tmp_path):
    tn = node_factory(container=True)
    root = tn.node.ssl_dir.parents[3]
    pki = g.pki([NAME], now=dt.datetime.now(dt.timezone.utc))
    pfx = tmp_path / "node.pfx"
    pfx.write_bytes(g.p12(pki.key, pki.leaf, [pki.inter.cert], password=g.PASSWORD))
    secret = g.PASSWORD.decode()
    desired = {"provider": "import", "names": [NAME], "import": {"cert_file": str(pfx), "password": "wrong-one"}}
    before = tree_digest(root)
    proc, argv = _run(tn, desired)
    assert proc.returncode == 3, proc.stderr
    assert json.loads(proc.stdout)["exit_code"] == 3 and "wrong-one" not in proc.stdout + proc.stderr
    assert tree_digest(root) == before

    desired["import"]["password"] = secret
    proc, argv = _run(tn, desired)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["actions"] == ["import"]
    assert secret not in " ".join(argv) + proc.stdout + proc.stderr
    for path in tn.node.state_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    proc, _ = _run(tn, desired)
    assert json.loads(proc.stdout)["changed"] is False


def test_the_image_wrapper_hands_stdin_to_the_container(tmp_path):
    """``sesam-tls-docker ensure --json`` (the Ansible module's way with the image) needs stdin inside
    the container: ``docker run`` passes it only with ``-i`` (a stub docker records the call)."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/argv\ncat > {tmp_path}/stdin\n')
    (bin_dir / "docker").chmod(0o755)
    (bin_dir / "mkdir").write_text("#!/bin/sh\nexit 0\n")  # keep /var/lib/sesam-tls off this machine
    (bin_dir / "mkdir").chmod(0o755)
    proc = subprocess.run(["sh", str(repo / "packaging/sesam-tls-docker.sh"), "ensure", "--json"], input='{"x": 1}',
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin", "SESAM_TLS_IMAGE": "sesam-tls:test"},
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    argv = (tmp_path / "argv").read_text().splitlines()
    image = argv.index("sesam-tls:test")
    assert "-i" in argv[:image] and argv[image:] == ["sesam-tls:test", "ensure", "--json"]
    assert (tmp_path / "stdin").read_text() == '{"x": 1}'
