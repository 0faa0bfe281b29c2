"""What sesam-tls relies on in the ``acme`` package beyond its public API (listed in
``sesam_tls.providers.acme_compat``), and that the installed ``acme``/``josepy`` are the releases
pyproject.toml allows. Each failure names the acme release and what changed in it."""

from __future__ import annotations

import inspect
import json
from importlib.metadata import requires, version

import pytest
from acme import client, jws, messages
from cryptography.hazmat.primitives.asymmetric import ec
from packaging.requirements import Requirement

from sesam_tls import CertRequest, DeployOptions, issue
from sesam_tls.providers import acme_compat
from sesam_tls.providers.acme_compat import (
    ADDED_NAMES,
    OVERRIDDEN,
    SEND_KEYWORDS,
    acme_version,
    compat_network,
    decode_nonce,
    new_order_message,
)
from sesam_tls.state import load_record

from .acme_fixtures import NAME, acme_for, acme_front, node_factory  # noqa: F401 - fixtures

ACME = f"acme {acme_version()}"


def _declared() -> dict[str, Requirement]:
    found = {}
    for line in requires("sesam-tls") or []:
        req = Requirement(line)
        if req.marker is None:
            found[req.name.lower()] = req
    return found


@pytest.mark.parametrize("package", ["acme", "josepy"])
def test_the_installed_release_is_one_pyproject_allows(package):
    req = _declared().get(package)
    assert req is not None, f"pyproject.toml declares no dependency on {package}"
    assert any(s.operator in ("<", "<=", "~=", "==") for s in req.specifier), (
        f"pyproject.toml declares {req} with no upper bound: a new major release could break sesam-tls unseen"
    )
    installed = version(package)
    assert req.specifier.contains(installed, prereleases=True), (
        f"{package} {installed} is installed, but sesam-tls declares {req} (pyproject.toml): "
        f"reinstall (pip install -e .) or, for a new release, check it against tests/test_acme_compat.py "
        "and move the bound"
    )


@pytest.mark.parametrize("name", sorted(OVERRIDDEN))
def test_the_overridden_clientnetwork_hooks_keep_their_signatures(name):
    hook = getattr(client.ClientNetwork, name, None)
    assert hook is not None, f"{ACME}: ClientNetwork.{name} is gone; sesam-tls overrides it (acme_compat)"
    params = list(inspect.signature(hook).parameters.values())[1:]  # after self
    spelled = tuple({inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}.get(p.kind, "")
                    + p.name for p in params)
    assert spelled == OVERRIDDEN[name], (
        f"{ACME}: ClientNetwork.{name} now takes ({', '.join(spelled)}), not ({', '.join(OVERRIDDEN[name])}) "
        "as sesam-tls's override expects (acme_compat)"
    )


def test_the_public_clientnetwork_and_clientv2_members_are_there():
    init = inspect.signature(client.ClientNetwork.__init__)
    try:
        init.bind(None, key=None, account=None, alg=None, verify_ssl=True, user_agent="x", timeout=1)
    except TypeError as exc:
        pytest.fail(f"{ACME}: ClientNetwork() no longer takes the arguments sesam-tls passes: {exc}")
    net = client.ClientNetwork(key=None)
    for attr in ("key", "alg", "account", "verify_ssl", "user_agent", "session", "REPLAY_NONCE_HEADER", "post",
                 "get", "head"):
        assert hasattr(net, attr), f"{ACME}: ClientNetwork has no {attr} any more"
    for method in ("new_account", "query_registration", "deactivate_registration", "poll", "answer_challenge",
                   "deactivate_authorization", "revoke"):
        assert callable(getattr(client.ClientV2, method, None)), f"{ACME}: ClientV2.{method} is gone"


def test_acme_has_none_of_the_names_sesam_tls_adds():
    plain = client.ClientNetwork(key=None)
    for name in ADDED_NAMES:
        assert not hasattr(plain, name), (
            f"{ACME}: ClientNetwork now has its own {name!r}, which sesam-tls's subclass would shadow (acme_compat)"
        )


def test_send_request_refuses_an_argument_it_would_drop():
    class Recording(compat_network()):  # type: ignore[misc]
        def send(self, method, url, **kwargs):
            return (method, url, kwargs)

    net = Recording(key=None)
    assert net._send_request("POST", "https://ca/x", data="d", headers={"a": "b"}) == (
        "POST", "https://ca/x", {"data": "d", "headers": {"a": "b"}, "timeout": None})
    with pytest.raises(TypeError, match=r"_send_request with json beyond method and url"):
        net._send_request("POST", "https://ca/x", json={})


def test_the_replaces_field_round_trips_through_json():
    identifiers = [messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=NAME)]
    order = new_order_message()(identifiers=identifiers, replaces="aki.serial", profile="shortlived")
    sent = json.loads(order.json_dumps())
    assert sent.get("replaces") == "aki.serial", f"{ACME}: NewOrder subclass fields are not sent any more: {sent}"
    assert sent["identifiers"] == [{"type": "dns", "value": NAME}] and sent["profile"] == "shortlived"
    back = new_order_message().from_json(sent)
    assert back.replaces == "aki.serial" and back.identifiers[0].value == NAME
    assert "replaces" not in json.loads(new_order_message()(identifiers=identifiers).json_dumps())  # omitted


def test_a_decoded_nonce_is_signed_as_the_header_said():
    import josepy as jose

    said = "Xm9vLWJhci1ub25jZQ"
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    signed = jws.JWS.sign(b"{}", key=key, alg=jose.ES256, nonce=decode_nonce(said), url="https://ca/x", kid=None)
    protected = json.loads(jose.b64decode(json.loads(signed.json_dumps())["protected"]))
    assert protected["nonce"] == said, f"{ACME}: a Replay-Nonce decoded as b64jose is signed as {protected['nonce']!r}"
    with pytest.raises(ValueError):
        decode_nonce("a")  # one character cannot be base64


@pytest.mark.integration
def test_one_real_exchange_goes_through_every_hook(pebble, acme_front, node_factory, monkeypatch):
    """Issue at Pebble (through the test front, for ARI), then order once more with ``replaces``,
    which the front refuses once with a 409 alreadyReplaced: every override and the field are used."""
    front = acme_front(ari=True, already_replaced=1)
    t = node_factory()
    via = {"directory": front.directory, "ca_bundle": front.ca_bundle}
    issue(CertRequest.build([NAME]), acme_for(pebble, t.node, **via), node=t.node,
          options=DeployOptions(restart=False))
    record = load_record(t.node.metadata_path)
    assert record is not None and record.certificate.ari_cert_id
    cert_id = record.certificate.ari_cert_id

    calls: dict[str, int] = {}
    keywords: set[str] = set()
    base = compat_network()
    for name in OVERRIDDEN:
        original = getattr(base, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            calls[_name] = calls.get(_name, 0) + 1
            if _name == "_send_request":
                keywords.update(kwargs)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(base, name, counted)

    renewal = acme_for(pebble, t.node, replaces=cert_id, **via)
    bundle = renewal.issue(CertRequest.build([NAME]))
    assert bundle.leaf is not None
    for name in OVERRIDDEN:
        assert calls.get(name), f"{ACME}: ClientNetwork no longer calls {name} in an exchange; sesam-tls's " \
                                "override of it does nothing now (acme_compat)"
    assert keywords <= SEND_KEYWORDS, f"{ACME}: _send_request now gets {sorted(keywords - SEND_KEYWORDS)}"
    assert [o.get("replaces") for o in front.refused] == [cert_id], "the replaces field was not sent"
    assert renewal.replaces_dropped and "already been replaced" in renewal.replaces_dropped, (
        f"{ACME}: a 409 problem without Location lost its detail: {renewal.replaces_dropped!r}"
    )
    assert "replaces" not in front.orders[-1]


def test_the_module_lists_each_reliance_it_has():
    doc = acme_compat.__doc__ or ""
    for name in [*OVERRIDDEN, "NewOrder"]:
        assert name in doc, f"acme_compat's docstring does not say why it relies on {name}"
