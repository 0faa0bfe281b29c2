"""A certificate from a real ACME CA (Pebble) imported back: what a CA really hands out passes.

The order is placed with the ``acme`` package directly, against a Pebble
instance of this module's own that accepts every challenge
(``PEBBLE_VA_ALWAYS_VALID``): what matters here is the CA's output, and the
module then needs no HTTP-01 port that the ACME tests use.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from sesam_tls.cli import main
from sesam_tls.validate import label

from . import certgen as g
from . import testbed
from .helpers import make_root, tree_digest

pytestmark = pytest.mark.integration

NAME = "node.example.test"


def issue_from_pebble(pebble, key) -> bytes:
    """Leaf + intermediate, PEM, for ``NAME`` and ``key``: a plain ACME order."""
    import josepy as jose
    from acme import challenges, client, crypto_util, messages

    account = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = client.ClientNetwork(
        account, alg=jose.ES256, verify_ssl=pebble.ca_bundle, user_agent="sesam-tls-tests"
    )
    acme = client.ClientV2(client.ClientV2.get_directory(pebble.directory, net), net)
    acme.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    order = acme.new_order(crypto_util.make_csr(g.key_bytes(key), [NAME]))
    for authz in order.authorizations:
        for chall in authz.body.challenges:
            if isinstance(chall.chall, challenges.HTTP01):
                acme.answer_challenge(chall, chall.response(account))
    deadline = dt.datetime.now() + dt.timedelta(seconds=60)
    return acme.poll_and_finalize(order, deadline=deadline).fullchain_pem.encode()


@pytest.fixture(scope="module")
def from_pebble():
    try:
        with testbed.own_pebble("pebble-import-tests", PEBBLE_VA_ALWAYS_VALID="1") as pebble:
            key = g.ec_key()
            yield key, issue_from_pebble(pebble, key), pebble.root_pem().encode()
    except testbed.TestbedError as e:
        pytest.fail(f"testbed not available: {e}", pytrace=False)


def test_pebble_certificate_imports(from_pebble, tmp_path, capsys):
    key, fullchain, root_pem = from_pebble
    leaf, intermediate = x509.load_pem_x509_certificates(fullchain)
    root = make_root(tmp_path)
    (tmp_path / "cert.pem").write_bytes(fullchain)
    (tmp_path / "key.pem").write_bytes(g.key_bytes(key, password=g.PASSWORD))
    (tmp_path / "root.pem").write_bytes(root_pem)
    (tmp_path / "pw").write_bytes(g.PASSWORD)
    common = ["--root", str(root), "--no-restart", "--password-file", str(tmp_path / "pw")]

    before = tree_digest(root)
    code = main(
        [
            "import",
            "--cert",
            str(tmp_path / "cert.pem"),
            "--key",
            str(tmp_path / "key.pem"),
            "--chain",
            str(tmp_path / "root.pem"),
            "--domain",
            NAME,
            "--check-only",
            "--json",
            *common,
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    assert report["result"] == "ok" and report["warnings"] == []
    assert report["root_dropped"] is True
    assert tree_digest(root) == before

    # As a .p12 with the root and intermediate in reverse, the way Windows exports it.
    (tmp_path / "node.p12").write_bytes(
        g.p12(
            key, leaf, [x509.load_pem_x509_certificate(root_pem), intermediate], password=g.PASSWORD
        )
    )
    code = main(["import", "--cert", str(tmp_path / "node.p12"), "--domain", NAME, *common])
    out, err = capsys.readouterr()
    assert code == 0, err
    served = (root / "sesam/nginx/conf/ssl/fullchain.pem").read_bytes()
    assert x509.load_pem_x509_certificates(served) == [leaf, intermediate]


def test_pebble_leaf_alone_names_the_missing_intermediate(from_pebble, tmp_path, capsys):
    key, fullchain, _ = from_pebble
    leaf, intermediate = x509.load_pem_x509_certificates(fullchain)
    root = make_root(tmp_path)
    (tmp_path / "cert.pem").write_bytes(g.pem(leaf) + g.key_bytes(key))
    before = tree_digest(root)
    assert (
        main(["import", "--cert", str(tmp_path / "cert.pem"), "--root", str(root), "--no-restart"])
        == 3
    )
    err = capsys.readouterr().err
    assert err == (
        f"sesam-tls: error: {tmp_path / 'cert.pem'}: missing intermediate: the issuer "
        f"'{intermediate.subject.rfc4514_string()}' of {label(leaf)} is not in the input; "
        "pass it with --chain FILE\n"
    )
    assert tree_digest(root) == before
