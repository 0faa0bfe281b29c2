"""`make demo`, the README's first command, runs on the testbed and hands over:
it ends by saying where the demo node is and how to stop it, `check` passes on
the demo node, and the commands it prints work as printed. The repository
alone is enough: nothing in it reads a file outside its own tree."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MARK = "# sesam-tls testbed demo"


@pytest.mark.integration
def test_the_demo_runs_and_hands_over(docker_host, nginx_image):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESAM_TLS_", "PEBBLE_"))}
    try:
        proc = subprocess.run(["bash", str(REPO / "testbed" / "demo.sh")], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)
        assert proc.returncode == 0, proc.stderr[-4000:] + proc.stdout[-2000:]
        out = proc.stdout
        # check on the demo node: every line ok, its name resolves through the demo's hosts line
        checks = [line for line in out.splitlines() if re.match(r"^(ok|FAIL) ", line)]
        assert checks and all(line.startswith("ok") for line in checks), out
        assert "node.example.test -> 127.0.0.1 (this host)" in out
        # the hand-over: where the node is, what to try, how to stop
        assert "Stop it all with: make clean-testbed" in out
        export = next(line.strip() for line in out.splitlines() if line.strip().startswith("export SESAM_TLS_ROOT="))
        given = dict(word.split("=", 1) for word in shlex.split(export)[1:])
        status_cmd = next(line.strip() for line in out.splitlines() if " status --verify " in line)
        status = subprocess.run(shlex.split(status_cmd), env={**env, **given}, capture_output=True, text=True,
                                timeout=60, check=False)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "served:         yes" in status.stdout
    finally:
        subprocess.run(["bash", str(REPO / "testbed" / "demo.sh"), "clean"], cwd=REPO, env=env,
                       capture_output=True, timeout=120, check=False)
    assert MARK not in Path("/etc/hosts").read_text()


def test_nothing_reads_outside_the_repository():
    """A clone alone builds and passes: no path climbs out of the tree to a neighbour."""
    pattern = re.compile(r"\.\./shared|parents\[2\]|/work/shared")
    offenders = []
    for folder in ("src", "tests", "testbed", "bench", "packaging", ".ci"):
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".sh", ".spec", ""} \
                    and not any(part.startswith(".venv") for part in path.parts):  # bench/.venv-* too
                text = path.read_text(errors="replace")
                if pattern.search(text) and path.name != "test_demo.py":
                    offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
