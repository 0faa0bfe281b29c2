"""``sesam_tls.ensure``: the desired state made so, only what is needed, twice in a row is a no-op.

Real parts: a real nginx container serving the node's ssl folder, the test
session's own Pebble for ACME, real TLS handshakes. ``check=True`` is proved
to only read by the digest of every file under the node's root (and no ACME
account appearing in the state folder: no order was placed).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from sesam_tls.bundle import fingerprint
from sesam_tls.errors import InputError, UsageError
from sesam_tls.state import load_record

from . import certgen as g
from .acme_fixtures import NAME, node_factory  # noqa: F401 - a fixture
from .helpers import tree_digest
from .testbed import served_cert_der

pytestmark = pytest.mark.integration


def _ensure():
    from sesam_tls.desired import AcmeDesired, DeployDesired, Desired, ImportDesired, ensure

    return ensure, Desired, AcmeDesired, ImportDesired, DeployDesired


def _served_fp(port: int) -> str:
    import hashlib

    return hashlib.sha256(served_cert_der("127.0.0.1", port, NAME)).hexdigest()


def _root(tn):
    return tn.node.ssl_dir.parents[3]


def _check_then_apply_then_nothing(tn, desired, first_actions):
    """check mode changes nothing; the first run does ``first_actions``; the second run nothing at all."""
    ensure = _ensure()[0]
    root = _root(tn)
    before = tree_digest(root)
    preview = ensure(tn.node, desired, check=True)
    assert preview.changed and preview.check
    assert list(preview.actions) == first_actions
    assert tree_digest(root) == before, "check mode wrote something"
    assert not (tn.node.state_dir / "accounts").exists()  # no ACME account: nothing was ordered

    first = ensure(tn.node, desired)
    assert first.changed and list(first.actions) == first_actions
    rec = load_record(tn.node.metadata_path)
    assert rec is not None and rec.provider == desired.provider
    assert first.after["fingerprint_sha256"] == rec.certificate.fingerprint_sha256
    assert _served_fp(tn.https_port) == rec.certificate.fingerprint_sha256
    config = json.loads(tn.node.agent_config.read_text())
    assert config["nginx"]["ssl_cert"] == tn.node.container_cert_path
    assert config["docker_password"]  # the agent's secret untouched
    assert preview.after["names"] == first.after["names"]

    settled = tree_digest(root)
    second = ensure(tn.node, desired)
    assert not second.changed and list(second.actions) == []
    assert second.before == second.after == first.after
    assert tree_digest(root) == settled, "the second run wrote something"
    again = ensure(tn.node, desired, check=True)
    assert not again.changed
    return first


def test_self_signed_first_run_changes_second_does_not(node_factory):
    ensure, Desired, _, _, DeployDesired = _ensure()
    tn = node_factory(container=True)
    desired = Desired(provider="selfsigned", names=(NAME,), deploy=DeployDesired(verify=f"127.0.0.1:{tn.https_port}"))
    first = _check_then_apply_then_nothing(tn, desired, ["issue"])
    assert first.before is None or first.before.get("provider") is None

    # a deployment setting only: recorded, no new certificate, nginx untouched
    moved = dataclasses.replace(desired, deploy=dataclasses.replace(desired.deploy, reload_mode="reload"))
    result = ensure(tn.node, moved)
    assert list(result.actions) == ["reconfigure"]
    assert result.after["fingerprint_sha256"] == first.after["fingerprint_sha256"]
    assert load_record(tn.node.metadata_path).settings.reload_mode == "reload"
    assert not ensure(tn.node, moved).changed

    # another key type: a new certificate
    rsa = dataclasses.replace(moved, key_type="rsa-2048")
    result = ensure(tn.node, rsa)
    assert list(result.actions) == ["issue"] and result.after["key_type"] == "rsa-2048"
    assert _served_fp(tn.https_port) == result.after["fingerprint_sha256"]
    assert not ensure(tn.node, rsa).changed


def test_self_signed_due_for_renewal_is_renewed(node_factory):
    ensure, Desired, _, _, DeployDesired = _ensure()
    tn = node_factory(container=True)
    desired = Desired(provider="selfsigned", names=(NAME,), days=30)
    ensure(tn.node, desired)
    old = load_record(tn.node.metadata_path).certificate.fingerprint_sha256
    due = dataclasses.replace(desired, renew_before_days=60)
    preview = ensure(tn.node, due, check=True)
    assert list(preview.actions) == ["renew"]
    result = ensure(tn.node, due)
    assert list(result.actions) == ["renew"] and result.after["fingerprint_sha256"] != old
    assert _served_fp(tn.https_port) == result.after["fingerprint_sha256"]


def test_acme_on_pebble_first_run_changes_second_does_not(node_factory, pebble):
    ensure, Desired, AcmeDesired, _, DeployDesired = _ensure()
    tn = node_factory(container=True)
    acme = AcmeDesired(directory=pebble.directory, ca_bundle=pebble.ca_bundle, agree_tos=True,
                       email="ops@example.test", http01="standalone", http_port=pebble.http_port,
                       http_address=("127.0.0.1",))
    desired = Desired(provider="acme", names=(NAME,), acme=acme,
                      deploy=DeployDesired(verify=f"127.0.0.1:{tn.https_port}"))
    first = _check_then_apply_then_nothing(tn, desired, ["issue"])
    assert first.after["provider"] == "acme" and first.after["directory"] == pebble.directory

    # a switch of provider is refused unless asked for, before anything is written
    root = _root(tn)
    settled = tree_digest(root)
    with pytest.raises(UsageError, match="replace"):
        ensure(tn.node, Desired(provider="selfsigned", names=(NAME,)))
    assert tree_digest(root) == settled


def test_import_first_run_changes_second_does_not_wrong_password_changes_nothing(node_factory, tmp_path):
    ensure, Desired, _, ImportDesired, DeployDesired = _ensure()
    tn = node_factory(container=True)
    pki = g.pki([NAME], now=dt.datetime.now(dt.timezone.utc))
    pfx = tmp_path / "node.pfx"
    pfx.write_bytes(g.p12(pki.key, pki.leaf, [pki.inter.cert], password=g.PASSWORD))
    wrong = Desired(provider="import", names=(NAME,),
                    import_files=ImportDesired(cert_file=str(pfx), password="not-the-password"))
    root = _root(tn)
    before = tree_digest(root)
    for check in (True, False):
        with pytest.raises(InputError) as caught:
            ensure(tn.node, wrong, check=check)
        assert "not-the-password" not in str(caught.value) and "\n" not in str(caught.value)
        assert tree_digest(root) == before

    desired = dataclasses.replace(wrong, import_files=ImportDesired(cert_file=str(pfx), password=g.PASSWORD.decode()),
                                  deploy=DeployDesired(verify=f"127.0.0.1:{tn.https_port}"))
    first = _check_then_apply_then_nothing(tn, desired, ["import"])
    assert first.after["fingerprint_sha256"] == fingerprint(pki.leaf)
    text = tn.node.metadata_path.read_text()
    assert g.PASSWORD.decode() not in text


def test_bad_desired_state_is_one_line_and_changes_nothing(node_factory):
    ensure, Desired, _, _, _ = _ensure()
    tn = node_factory()
    root = _root(tn)
    before = tree_digest(root)
    for bad, word in ((Desired(provider="selfsigned", names=(NAME,), key_type="dsa-1024"), "dsa-1024"),
                      (Desired(provider="letsencrypt", names=(NAME,)), "letsencrypt"),
                      (Desired(provider="selfsigned", names=()), "names")):
        with pytest.raises(UsageError) as caught:
            ensure(tn.node, bad)
        assert word in str(caught.value) and "\n" not in str(caught.value)
    assert tree_digest(root) == before


def test_sesam_tls_ensure_is_the_function_even_after_its_module_is_imported():
    import sesam_tls
    import sesam_tls.desired  # noqa: F401 - importing the module must not shadow the function

    assert callable(sesam_tls.ensure) and sesam_tls.ensure is sesam_tls.desired.ensure
    assert sesam_tls.Desired is sesam_tls.desired.Desired


def test_the_metrics_file_is_written_after_a_deployment_as_issue_does(node_factory, tmp_path):
    ensure, Desired, _, _, DeployDesired = _ensure()
    tn = node_factory()
    metrics = tmp_path / "sesam_tls.prom"
    desired = Desired(provider="selfsigned", names=(NAME,),
                      deploy=DeployDesired(restart=False, metrics_file=str(metrics)))
    ensure(tn.node, desired, check=True)
    assert not metrics.exists()
    ensure(tn.node, desired)
    assert "sesam_tls_certificate_expiration_timestamp_seconds" in metrics.read_text()


def test_every_desired_field_is_documented():
    """docs/ensure.md names every field of the desired state, as docs/state.md does for the record."""
    from pathlib import Path

    from sesam_tls.desired import AcmeDesired, DeployDesired, Desired, ImportDesired

    doc = (Path(__file__).parent.parent / "docs" / "ensure.md").read_text()
    missing = [f"{cls.__name__}.{f.name}" for cls in (Desired, AcmeDesired, ImportDesired, DeployDesired)
               for f in dataclasses.fields(cls) if f"`{f.name}`" not in doc]
    assert not missing, f"docs/ensure.md does not describe {missing}"
