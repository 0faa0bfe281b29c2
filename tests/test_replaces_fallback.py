"""The ``replaces`` fallback (issue 12, item 7): a CA that refuses a renewal order because of
``replaces`` (RFC 9773: ``alreadyReplaced``, or ``malformed``/``unauthorized`` naming it) gets
the order once more without it, never more than once per renewal; the record notes it."""

from __future__ import annotations

import pytest
from acme import messages

from sesam_tls import CertRequest, DeployOptions, issue
from sesam_tls.errors import IssuanceError
from sesam_tls.providers.acme_problems import refused_for_replaces
from sesam_tls.renew import renew
from sesam_tls.state import load_metadata

from .acme_fixtures import NAME, acme_for, acme_front, node_factory  # noqa: F401 - fixtures

FILES_ONLY = DeployOptions(restart=False)


def managed_via_front(front, pebble, node_factory):
    t = node_factory()
    issue(CertRequest.build([NAME]), acme_for(pebble, t.node, directory=front.directory, ca_bundle=front.ca_bundle),
          node=t.node, options=FILES_ONLY)
    cert_id = load_metadata(t.node.metadata_path)["certificate"]["ari_cert_id"]
    assert cert_id
    return t, cert_id


@pytest.mark.integration
def test_an_order_refused_as_already_replaced_is_placed_once_more_without_replaces(pebble, acme_front, node_factory):
    front = acme_front(ari=True)
    t, cert_id = managed_via_front(front, pebble, node_factory)
    front.already_replaced = 1

    result = renew(t.node, force=True, options=FILES_ONLY)
    assert (result.status, result.exit_code) == ("renewed", 0), result.message
    assert [o.get("replaces") for o in front.refused] == [cert_id]
    assert "replaces" not in front.orders[-1]
    assert len(front.orders) == 2  # the first issuance and the second renewal order
    note = load_metadata(t.node.metadata_path)["renewal"]["replaces_dropped"]
    assert note["replaces"] == cert_id and "alreadyReplaced" in note["reason"] and note["at"]


@pytest.mark.integration
def test_a_second_refusal_is_not_retried(pebble, acme_front, node_factory):
    front = acme_front(ari=True)
    t, cert_id = managed_via_front(front, pebble, node_factory)
    front.already_replaced, front.refuse_all = 10, True

    result = renew(t.node, force=True, options=FILES_ONLY)
    assert (result.status, result.exit_code) == ("failed", IssuanceError.exit_code)
    assert [o.get("replaces") for o in front.refused] == [cert_id, None]  # twice, not forever
    meta = load_metadata(t.node.metadata_path)
    assert meta["renewal"]["failures"] == 1
    assert meta["renewal"]["replaces_dropped"]["replaces"] == cert_id


@pytest.mark.integration
def test_without_a_refusal_replaces_is_kept(pebble, acme_front, node_factory):
    front = acme_front(ari=True)
    t, cert_id = managed_via_front(front, pebble, node_factory)
    assert renew(t.node, force=True, options=FILES_ONLY).status == "renewed"
    assert front.orders[-1].get("replaces") == cert_id and front.refused == []
    assert load_metadata(t.node.metadata_path)["renewal"].get("replaces_dropped") is None


def problem(code: str, detail: str) -> messages.Error:
    return messages.Error(typ=f"urn:ietf:params:acme:error:{code}", detail=detail)


@pytest.mark.parametrize(("code", "detail", "expected"), [
    ("alreadyReplaced", "already replaced", True),
    ("malformed", "the replaces field names an unknown certificate", True),
    ("unauthorized", "the account may not replace this certificate (replaces)", True),
    ("malformed", "JWS has no nonce", False),
    ("unauthorized", "account deactivated", False),
    ("rateLimited", "replaces: too many", False),
])
def test_which_refusals_are_about_replaces(code, detail, expected):
    assert refused_for_replaces(problem(code, detail)) is expected
