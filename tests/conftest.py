"""Shared fixtures: the loopback testbed (dockerd, nginx image, Pebble).

Session fixtures call the idempotent scripts in testbed/, so they start
whatever is not running yet. A missing part (no dockerd, no pebble binary)
makes the tests that need it FAIL, with a hint to run `make testbed`.
SESAM_TLS_NO_INTEGRATION=1 deselects the tests marked `integration`
(an explicit local opt-out; CI never sets it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# tests/testbed.py is importable as `testbed` whether or not tests/ is a
# package; one module object serves both names (one TestbedError class).
sys.path.insert(0, str(Path(__file__).resolve().parent))
if __package__:
    from . import testbed  # noqa: E402
else:
    import testbed  # noqa: E402
sys.modules.setdefault("testbed", testbed)
if __package__:
    sys.modules.setdefault(f"{__package__}.testbed", testbed)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("SESAM_TLS_NO_INTEGRATION") != "1":
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("integration") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _fail(e: Exception):
    pytest.fail(f"testbed not available: {e}", pytrace=False)


@pytest.fixture(scope="session")
def docker_host():
    """Start the loopback dockerd if needed; return its DOCKER_HOST url
    (also set in os.environ for the session)."""
    try:
        url = testbed.start_dockerd()
    except testbed.TestbedError as e:
        _fail(e)
    old = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = url
    yield url
    if old is None:
        os.environ.pop("DOCKER_HOST", None)
    else:
        os.environ["DOCKER_HOST"] = old


@pytest.fixture(scope="session")
def docker_client(docker_host):
    """docker.DockerClient bound to the testbed's dockerd."""
    client = testbed.docker_client(docker_host)
    yield client
    client.close()


@pytest.fixture(scope="session")
def nginx_image(docker_host):
    """Name of the nginx test image (built if missing): 'sesam-nginx-test:1'."""
    try:
        return testbed.build_nginx_image()
    except testbed.TestbedError as e:
        _fail(e)


@pytest.fixture(scope="session")
def pebble():
    """A Pebble of this test session's own (no EAB) on free ports, stopped at the end:
    runs beside any other Pebble on the machine."""
    yield from _session_pebble(f"session-{os.getpid()}")


@pytest.fixture(scope="session")
def pebble_eab():
    """A second Pebble of this session's own that requires External Account
    Binding (keys in .eab_keys), on free ports."""
    yield from _session_pebble(f"session-{os.getpid()}-eab", eab=True)


def _session_pebble(instance: str, **kw):
    try:
        pebble = testbed.start_pebble(instance, **kw)
    except testbed.TestbedError as e:
        _fail(e)
    yield pebble
    testbed.stop_pebble(instance)


@pytest.fixture(scope="session")
def knot():
    """A knotd of this session's own on a free port (testbed/knot.sh), updates allowed with its TSIG key."""
    yield from _session_knot(f"session-{os.getpid()}")


@pytest.fixture(scope="session")
def knot_lagging():
    """A second knotd serving the same zones that never takes an update: a secondary that lags for ever."""
    yield from _session_knot(f"session-{os.getpid()}-lagging", updates=False)


def _session_knot(instance: str, **kw):
    try:
        knot = testbed.start_knot(instance, **kw)
    except testbed.TestbedError as e:
        _fail(e)
    yield knot
    testbed.stop_knot(instance)


@pytest.fixture(scope="session")
def pebble_dns(knot):
    """A Pebble of this session's own whose VA resolves through the session's knot (DNS-01)."""
    yield from _session_pebble(f"session-{os.getpid()}-dns", dns_server=knot.address)


@pytest.fixture
def nginx_container(nginx_image, docker_client, tmp_path_factory):
    """Factory: nginx_container(ssl_dir, https_port, http_port=None, name=None,
    *, wait=True) -> container name. Containers are removed at teardown.
    The factory also has .client, .container(name), .status(name),
    .logs(name), .wait_listening(name, port), .wait_exited(name)."""
    factory = testbed.NginxContainers(docker_client, tmp_path_factory.mktemp("nginx-sites"))
    yield factory
    factory.cleanup()
