"""How the per-name requests go out: one after another to a CA that answers at once (threads
would only contend for the interpreter), concurrently to a CA that makes each answer wait
(the waits overlap); and the standalone responder is self-checked once, not once per name.

Real Pebble next door; a CA "far away" is Pebble behind the test's HTTPS front with a delay on every
answer (acme_fixtures.AcmeFront). Nothing here asserts a time: what is observed is how many
requests the CA had in flight at once and how many connections the run opened.
"""

from __future__ import annotations

import logging

import pytest

from sesam_tls import DeployOptions, issue
from sesam_tls.providers.acme import SERIAL_BELOW
from sesam_tls.providers.base import CertRequest

from .acme_fixtures import acme_for, acme_front, node_factory  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

FILES_ONLY = DeployOptions(restart=False)


def names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}.pace.example.test" for i in range(n)]


def test_a_ca_next_door_gets_the_names_one_after_another_on_one_connection(pebble, node_factory, caplog):
    t = node_factory()
    provider = acme_for(pebble, t.node)  # Pebble itself: it answers within a fraction of a millisecond
    caplog.set_level(logging.DEBUG, logger="sesam_tls")
    outcome = issue(CertRequest.build(names("near", 4)), provider, node=t.node, options=FILES_ONLY)
    assert all(outcome.bundle.covers(n) for n in names("near", 4))
    assert "per-name requests one after another" in caplog.text
    assert provider.wire["connections"] == 1  # concurrent requests would each have opened one


def test_a_ca_far_away_gets_the_names_concurrently(pebble, acme_front, node_factory, caplog):
    front = acme_front(delay=4 * SERIAL_BELOW)
    t = node_factory()
    provider = acme_for(pebble, t.node, directory=front.directory, ca_bundle=front.ca_bundle)
    caplog.set_level(logging.DEBUG, logger="sesam_tls")
    outcome = issue(CertRequest.build(names("far", 4)), provider, node=t.node, options=FILES_ONLY)
    assert all(outcome.bundle.covers(n) for n in names("far", 4))
    assert "per-name requests concurrently" in caplog.text
    assert front.most_in_flight > 1
    assert provider.wire["connections"] > 1


def test_the_standalone_responder_is_self_checked_once_for_all_names(pebble, node_factory, caplog):
    t = node_factory()
    caplog.set_level(logging.DEBUG, logger="sesam_tls")
    issue(CertRequest.build(names("once", 3)), acme_for(pebble, t.node), node=t.node, options=FILES_ONLY)
    lines = [r.getMessage() for r in caplog.records]
    passed = next(i for i, m in enumerate(lines) if m.startswith("self-check passed: standalone server"))
    before = [m for m in lines[:passed] if m.startswith("http01: ") and " asked for " in m]
    assert len(before) == 1 and before[0].endswith(": 200")  # the CA is asked only after the check
