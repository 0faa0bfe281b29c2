"""How fast the ACME exchange polls, and what it costs on the wire (requests, nonce HEADs,
connections), counted by the client itself against a real Pebble."""

from __future__ import annotations

import pytest

from sesam_tls import DeployOptions, issue
from sesam_tls.providers.acme import CA_CONNECTIONS, poll_pace
from sesam_tls.providers.base import CertRequest

from .acme_fixtures import NAME, acme_for, node_factory  # noqa: F401 - node_factory is a fixture

FILES_ONLY = DeployOptions(restart=False)


@pytest.mark.parametrize("url", ["https://127.0.0.1:14000/dir", "https://[::1]:14000/dir",
                                 "https://localhost:14000/dir"])
def test_a_ca_on_this_machine_is_polled_as_fast_as_it_answers(url):
    pace = poll_pace(url)
    assert pace["first"] <= 0.005 and pace["growth"] >= 2 and pace.get("slow_after") is None


@pytest.mark.parametrize("url", ["https://acme-v02.api.letsencrypt.org/directory", "https://10.0.0.5/dir",
                                 "https://ca.example.com:8443/acme/directory"])
def test_a_ca_elsewhere_is_polled_at_most_about_once_a_second_after_the_first(url):
    pace = poll_pace(url)
    assert pace["first"] <= 0.005
    assert pace["slow_after"] == pytest.approx(1.0) and pace["slow_every"] >= 1.0


@pytest.mark.integration
def test_one_name_with_a_new_account_uses_one_connection_and_one_nonce_head(pebble, node_factory):
    t = node_factory()
    acme = acme_for(pebble, t.node)
    issue(CertRequest.build([NAME]), acme, node=t.node, options=FILES_ONLY)
    wire = acme.wire
    # directory, HEAD, newAccount, newOrder, authz, challenge, poll(s), finalize, poll(s), certificate
    assert wire["connections"] == 1, wire
    assert wire["nonce_heads"] == 1, wire
    assert 9 <= wire["requests"] <= 14, wire


@pytest.mark.integration
@pytest.mark.parametrize("count", [10, 100])
def test_many_names_share_a_few_connections_and_take_nonces_from_answers(pebble, node_factory, count):
    t = node_factory()
    acme_for(pebble, t.node).issue(CertRequest.build(["warm.example.test"]))  # the account exists
    acme = acme_for(pebble, t.node)
    names = [f"n{i}.example.test" for i in range(count)]
    bundle = acme.issue(CertRequest.build(names))
    assert sorted(bundle.dns_names) == sorted(names)
    wire = acme.wire
    # before: one connection and one nonce HEAD per worker thread (12 and 11 for 10 names, 18 and 17 for 100)
    assert wire["connections"] <= CA_CONNECTIONS, wire
    assert wire["nonce_heads"] <= CA_CONNECTIONS, wire  # one per connection at most; then nonces from answers
    assert wire["requests"] <= 2 * count + 40, wire  # polls, and badNonce retries (Pebble rejects 5 %)
