"""The README's Python example runs exactly as printed, on a machine with nothing set up."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def test_the_readme_has_one_python_example():
    assert len(python_blocks()) == 1


def test_the_readme_python_example_runs_as_printed(tmp_path):
    code = python_blocks()[0]
    # a fresh process, no SESAM_TLS_* or DOCKER_HOST from this machine, TMPDIR of the test's own
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESAM_TLS_", "DOCKER_"))}
    env.update(TMPDIR=str(tmp_path), HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stderr
    fingerprint, action = proc.stdout.split()
    assert re.fullmatch(r"[0-9a-f]{64}", fingerprint)
    # the example deploys with restart=False: files and agent config, nginx left alone
    (root,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert (root / "sesam/nginx/conf/ssl/fullchain.pem").is_file()
    assert '"ssl_cert": "/etc/nginx/includes.d/ssl/fullchain.pem"' in (root / "etc/sesam-agent/config.json").read_text()
    assert action
