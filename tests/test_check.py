"""`sesam-tls check` tells the truth: on a node whose certificate came from the
CA it passes with no flags at all (the recorded names, CA and HTTP-01
settings are what the next `renew` uses), and it fails with one line naming
the reason for every failure it knows. Real Pebble, dockerd and nginx."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sesam_tls.cli import main

from .acme_fixtures import LOOPBACK, node_factory  # noqa: F401 - a fixture
from .helpers import read_only_mount
from .test_acme_cli import ca, where
from .testbed import free_port

pytestmark = pytest.mark.integration

CHECKS = ["names", "ACME server", "docker", "challenge", "CAA", "agent config", "ssl folder", "state folder"]


@pytest.fixture
def issued(pebble, node_factory, capsys):
    """A node with an nginx container and a certificate for localhost from Pebble."""
    t = node_factory(container=True)
    code = main(["issue", "-d", "localhost", *ca(pebble), "--agree-tos", "--http-port", str(pebble.http_port),
                 "--http-address", LOOPBACK[0], "--verify", f"127.0.0.1:{t.https_port}", *where(t.node)])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    return t


def results(out: str) -> dict[str, tuple[bool, str]]:
    got = {}
    for line in out.splitlines():
        status, rest = line[:4].strip(), line[6:]
        title, _, detail = rest.partition(": ")
        got[title] = (status == "ok", detail)
    assert list(got) == CHECKS, out
    return got


def test_bare_check_on_an_issued_node_checks_what_renew_will_use(issued, pebble, capsys):
    code = main(["check", *where(issued.node)])
    out = capsys.readouterr().out
    assert code == 0, out
    got = results(out)
    assert all(ok for ok, _ in got.values()), out
    assert got["names"][1] == "localhost -> 127.0.0.1 (this host)"
    assert got["ACME server"][1].startswith(f"{pebble.directory} answers; account ")
    assert got["challenge"][1] == (
        f"HTTP-01 auto: port {pebble.http_port} is free: a standalone server answers the challenges"
    )


def _taken_port(t, stack):
    holder = stack.enter_context(socket.socket())
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    return ["--http01", "standalone", "--http-port", str(holder.getsockname()[1])]


def _broken_agent_config(t, stack):
    t.node.agent_config.write_text('{"nginx": ')
    return []


def _read_only_ssl_folder(t, stack):
    # a copy of the pair on a read-only mount in the ssl folder's place
    ssl = t.node.ssl_dir
    keep = ssl.parent / "ssl.kept"
    shutil.copytree(ssl, keep, symlinks=True)
    stack.enter_context(read_only_mount(ssl))
    return []


# (case, what to break, the failing check, exit code, words of its one line)
CASES = [
    ("CA unreachable", lambda t, s: ["--server", f"https://127.0.0.1:{free_port()}/dir"], "ACME server", 8,
     "refused the connection"),
    ("port taken", _taken_port, "challenge", 8, "is held by pid"),
    ("Docker unreachable", lambda t, s: ["--docker-host", "unix:///nonexistent/docker.sock"], "docker", 6,
     "nonexistent/docker.sock"),
    ("container missing", lambda t, s: ["--container", "sesam-tls-test-no-such-container"], "docker", 6,
     "sesam-tls-test-no-such-container"),
    ("agent config broken", _broken_agent_config, "agent config", 4, "not valid JSON"),
    ("ssl folder read-only", _read_only_ssl_folder, "ssl folder", 5, "read-only"),
    ("wildcard over HTTP-01", lambda t, s: ["-d", "*.example.test"], "names", 2, "wildcards cannot be validated"),
]


@pytest.mark.parametrize("case, breaker, failing, code, words", CASES, ids=[c[0] for c in CASES])
def test_check_fails_with_one_line_naming_the_reason(issued, capsys, case, breaker, failing, code, words):
    import contextlib

    with contextlib.ExitStack() as stack:
        extra = breaker(issued, stack)
        argv = ["check", *where(issued.node), *extra]
        got_code = main(argv)
        out = capsys.readouterr().out
    got = results(out)
    assert got_code == code, out
    ok, detail = got[failing]
    assert not ok and words in detail, out
    assert "\n" not in detail and "Traceback" not in out


def test_a_name_that_does_not_resolve_fails_the_names_check(issued, tmp_path):
    """Resolved in a mount namespace whose resolv.conf names 127.0.0.1 only, where
    nothing answers: the lookup fails there, and no query leaves loopback."""
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed for this test")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    script = (
        f"mount --bind {resolv} /etc/resolv.conf && exec {sys.executable} -m sesam_tls check "
        f"-d no-such-host.example.test {' '.join(where(issued.node))}"
    )
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, timeout=120, check=False, cwd=Path(__file__).parents[1])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    got = results(proc.stdout)
    ok, detail = got["names"]
    assert not ok and detail.startswith("no-such-host.example.test does not resolve"), detail
    assert got["ACME server"][0] and got["docker"][0]
