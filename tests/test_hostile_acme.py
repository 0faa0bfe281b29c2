"""A CA that issues bad certificates cannot replace a good pair: every bundle passes one gate.

For each kind of bad certificate (tests/hostile_acme.py), on a node whose
nginx container serves a good pair: ``issue`` and ``renew --force`` exit 8
with one error line that names the CA and the defect, no traceback; nginx
still serves the old pair (real TLS handshake) and the ssl folder and the
agent config are unchanged byte for byte. A refused certificate was issued
all the same, so the next order waits at least a day (no order storms).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from sesam_tls.cli import main
from sesam_tls.renewal import decide
from sesam_tls.state import load_metadata, load_record

from . import testbed
from .acme_fixtures import NAME, node_factory  # noqa: F401 - a fixture
from .helpers import tree_digest
from .hostile_acme import KINDS, hostile_ca, hostile_pebble  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration


def where(tn) -> list[str]:
    node = tn.node
    return ["--root", str(node.root), "--container", node.container, "--docker-host", node.docker_host,
            "--verify", f"127.0.0.1:{tn.https_port}", "--verify-name", NAME]


def issue_args(ca, pebble, tn) -> list[str]:
    return ["issue", "-d", NAME, "--server", ca.directory, "--ca-bundle", ca.ca_bundle, "--agree-tos",
            "--http01", "standalone", "--http-port", str(pebble.http_port), "--http-address", "127.0.0.1",
            *where(tn)]


def served(tn) -> bytes:
    return testbed.served_cert_der("127.0.0.1", tn.https_port, NAME)


def untouched(tn) -> dict:
    """The ssl folder (every path, mode, content) and the agent config, byte for byte.

    An empty ``.versions`` folder is left out: the writability probe before the
    lock makes it on a node that had none (not this gate's business).
    """
    tree = tree_digest(tn.node.ssl_dir)
    if tree.get(".versions", "").endswith(" dir") and not any(k.startswith(".versions/") for k in tree):
        del tree[".versions"]
    return {**tree, "agent": Path(tn.node.agent_config).read_bytes()}


def one_error(err: str, ca, said: str) -> str:
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("sesam-tls: error:")]
    assert len(errors) == 1, err
    assert ca.directory in errors[0], errors[0]
    assert said in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_bad_certificate_from_the_ca_is_never_deployed(kind, hostile_pebble, hostile_ca, node_factory,
                                                         tmp_path, capsys):
    ca, said = hostile_ca, KINDS[kind][1]
    tn = node_factory(container=True)
    own = tn.own.leaf.public_bytes(serialization.Encoding.DER)
    assert served(tn) == own

    # issue over the operator's own pair
    ca.kind = kind
    before = untouched(tn)
    assert main(issue_args(ca, hostile_pebble, tn)) == 8
    one_error(capsys.readouterr().err, ca, said)
    assert served(tn) == own
    assert untouched(tn) == before

    # the same CA, behaving: accepted and served (so the refusal above was for the defect)
    ca.kind = "good"
    assert main(issue_args(ca, hostile_pebble, tn)) == 0, capsys.readouterr().err
    good = ca.issued[-1].public_bytes(serialization.Encoding.DER)
    testbed.wait_served_cert("127.0.0.1", tn.https_port, good, NAME)
    capsys.readouterr()

    # renew --force over the CA's good pair
    ca.kind = kind
    hook_out = tmp_path / "hook.out"
    before = untouched(tn)
    orders = len(ca.front.orders)
    code = main(["renew", "--force", *where(tn), "--failure-hook", f"echo $SESAM_TLS_EVENT > {hook_out}"])
    assert code == 8
    one_error(capsys.readouterr().err, ca, said)
    assert served(tn) == good
    assert untouched(tn) == before
    assert hook_out.read_text().strip() == "failed"
    assert len(ca.front.orders) == orders + 1

    # no order storm: the next timer run orders nothing, it asks for attention
    assert main(["renew", *where(tn)]) == 10
    assert len(ca.front.orders) == orders + 1
    assert "was refused" in capsys.readouterr().err
    meta = load_record(tn.node.metadata_path)
    now = dt.datetime.now(dt.timezone.utc)
    assert decide(meta, now + dt.timedelta(hours=23)).backing_off
    assert not decide(meta, now + dt.timedelta(hours=25)).backing_off


def test_pebbles_own_certificate_passes_the_gate(hostile_pebble, hostile_ca, node_factory, capsys):
    hostile_ca.front.rewrite = None  # Pebble's chain, as Pebble made it
    tn = node_factory()
    argv = ["issue", "-d", NAME, "--server", hostile_ca.directory, "--ca-bundle", hostile_ca.ca_bundle,
            "--agree-tos", "--http01", "standalone", "--http-port", str(hostile_pebble.http_port),
            "--http-address", "127.0.0.1", "--root", str(tn.node.root), "--no-restart"]
    assert main(argv) == 0, capsys.readouterr().err
    assert "warning" not in capsys.readouterr().err
    assert load_metadata(tn.node.metadata_path)["provider"] == "acme"
