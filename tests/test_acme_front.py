"""Profiles, ARI's ``replaces`` and rate limits: Pebble 2.4.0 has none of them, so a small HTTPS
front served by the test adds them to Pebble's directory (see acme_fixtures.AcmeFront)."""

from __future__ import annotations

import datetime as dt

import pytest

from sesam_tls import DeployOptions, issue
from sesam_tls.errors import IssuanceError, UsageError
from sesam_tls.providers.base import CertRequest
from sesam_tls.state import load_metadata

from .acme_fixtures import NAME, acme_for, acme_front, node_factory  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

FILES_ONLY = DeployOptions(restart=False)
PROFILES = {"classic": "90 days", "shortlived": "6 days, IP addresses allowed"}


def via(front, pebble, node, **kwargs):
    return acme_for(pebble, node, directory=front.directory, ca_bundle=front.ca_bundle, **kwargs)


def test_a_listed_profile_is_requested_and_recorded(pebble, acme_front, node_factory):
    front = acme_front(profiles=PROFILES)
    t = node_factory()
    outcome = issue(CertRequest.build([NAME], ["127.0.0.1"]), via(front, pebble, t.node, profile="shortlived"),
                    node=t.node, options=FILES_ONLY)
    assert outcome.bundle.covers("127.0.0.1")
    assert [o.get("profile") for o in front.orders] == ["shortlived"]
    assert load_metadata(t.node.metadata_path)["provider_settings"]["profile"] == "shortlived"


def test_no_profile_sends_none(pebble, acme_front, node_factory):
    front = acme_front(profiles=PROFILES)
    t = node_factory()
    issue(CertRequest.build([NAME]), via(front, pebble, t.node), node=t.node, options=FILES_ONLY)
    assert "profile" not in front.orders[0]


def test_a_profile_the_ca_does_not_list_is_refused_before_ordering(pebble, acme_front, node_factory):
    front = acme_front(profiles=PROFILES)
    t = node_factory()
    with pytest.raises(UsageError, match=r"`profile` tlsserver: .* offers only classic, shortlived"):
        issue(CertRequest.build([NAME]), via(front, pebble, t.node, profile="tlsserver"), node=t.node,
              options=FILES_ONLY)
    assert front.orders == []  # refused before any order
    assert not (t.node.state_dir / "accounts").exists()


def test_a_profile_from_a_ca_without_profiles(pebble, node_factory):
    t = node_factory()
    with pytest.raises(UsageError, match="`profile` shortlived: .* offers no ACME profiles"):
        issue(CertRequest.build([NAME]), acme_for(pebble, t.node, profile="shortlived"), node=t.node,
              options=FILES_ONLY)


@pytest.mark.parametrize("ari", [True, False])
def test_replaces_is_sent_only_when_the_ca_offers_ari(pebble, acme_front, node_factory, ari):
    front = acme_front(ari=ari)
    t = node_factory()
    first = issue(CertRequest.build([NAME]), via(front, pebble, t.node), node=t.node, options=FILES_ONLY)
    cert_id = first.metadata["certificate"].get("ari_cert_id") or "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    renewal = via(front, pebble, t.node, replaces=cert_id)
    issue(CertRequest.build([NAME]), renewal, node=t.node, options=FILES_ONLY)
    assert "replaces" not in front.orders[0]
    assert front.orders[1].get("replaces") == (cert_id if ari else None)


def test_a_rate_limit_says_when_a_retry_is_allowed(pebble, acme_front, node_factory):
    front = acme_front(rate_limit_after="3600")
    t = node_factory()
    before = dt.datetime.now(dt.timezone.utc)
    with pytest.raises(IssuanceError) as failure:
        issue(CertRequest.build([NAME]), via(front, pebble, t.node), node=t.node, options=FILES_ONLY)
    text = str(failure.value)
    assert "the CA's rate limit was hit: too many new orders recently" in text
    retry_at = dt.datetime.fromisoformat(text.split("a retry is allowed after ")[1].split(" ")[0])
    assert dt.timedelta(minutes=59) < retry_at - before < dt.timedelta(minutes=61)
    assert "(in 60 min)" in text
