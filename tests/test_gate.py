"""The gate every bundle passes before anything is written, whatever provider made it.

Pure checks of :func:`sesam_tls.validate.gate` over the hostile CA's
certificate kinds (tests/hostile_acme.py) and a few more; then the gate in
the pipeline (files only, no Docker): a refused bundle raises the
provider's error and changes nothing; the self-issued ``CA:TRUE``
certificate ``openssl req -x509`` makes is imported with one warning.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sesam_tls import CertRequest, DeployOptions, Node, SelfSigned, issue
from sesam_tls.bundle import Bundle
from sesam_tls.cli import main
from sesam_tls.errors import IssuanceError, RefusedCertificate
from sesam_tls.validate import CLOCK_SKEW, gate

from . import certgen as g
from .helpers import make_root, seed_own_pair, tree_digest
from .hostile_acme import KINDS, HostileCA

NAME = "node.example.test"
CA = "the ACME CA https://hostile-ca.invalid/dir"
FILES_ONLY = DeployOptions(restart=False)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def codes(report) -> tuple[list[str], list[str]]:
    return [f.code for f in report.errors], [f.code for f in report.warnings]


@pytest.fixture(scope="module")
def hostile():
    return HostileCA()


def bundle_of(hostile: HostileCA, kind: str) -> Bundle:
    key = ec.generate_private_key(ec.SECP256R1())
    certs = hostile.chain(kind, key.public_key())
    return Bundle(key=key, leaf=certs[0], chain=tuple(certs[1:]))


# the gate itself -----------------------------------------------------------------------------


def test_a_good_bundle_passes_unchanged(hostile):
    bundle = bundle_of(hostile, "good")
    report = gate(bundle, [NAME], now=now(), source=CA)
    assert codes(report) == ([], [])
    assert report.leaf == bundle.leaf and report.chain == bundle.chain


GATE_CODES = {
    "expired": "expired",
    "not-yet-valid": "not-yet-valid",
    "ca-leaf": "ca-certificate",
    "client-auth-only": "no-server-auth",
    "broken-chain": "bad-signature",
    "unknown-critical": "critical-extension",
    "path-length": "path-length",
}


@pytest.mark.parametrize("kind", list(GATE_CODES))
def test_each_defect_is_refused_naming_the_ca_and_the_defect(hostile, kind):
    report = gate(bundle_of(hostile, kind), [NAME], now=now(), source=CA)
    assert GATE_CODES[kind] in codes(report)[0]
    first = report.errors[0].message
    assert first.startswith(f"{CA}: "), first
    assert KINDS[kind][1] in " ".join(f.message for f in report.errors)


def test_not_before_within_the_skew_tolerance_passes_beyond_it_is_refused():
    pki = g.pki([NAME], now=g.NOW)
    for ahead, refused in ((CLOCK_SKEW - dt.timedelta(minutes=1), False), (CLOCK_SKEW + dt.timedelta(minutes=1), True)):
        key, leaf = pki.inter.leaf([NAME], not_before=g.NOW + ahead)
        report = gate(Bundle(key=key, leaf=leaf, chain=(pki.inter.cert,)), [NAME], now=g.NOW, source=CA)  # type: ignore[arg-type]
        assert ("not-yet-valid" in codes(report)[0]) is refused


def test_names_the_request_asked_for_must_be_covered(hostile):
    report = gate(bundle_of(hostile, "good"), [NAME, "other.example.test"], now=now(), source=CA)
    assert codes(report)[0] == ["name-not-covered"]
    assert "'other.example.test'" in report.errors[0].message


def test_an_intermediate_that_is_no_ca_breaks_the_chain():
    root = g.root(now=g.NOW)
    not_ca_key, not_ca = root.leaf(["intermediate.example.test"], cn="Not a CA")
    signer = g.Issuer(not_ca_key, not_ca, g.NOW)
    key, leaf = signer.leaf([NAME])
    report = gate(Bundle(key=key, leaf=leaf, chain=(not_ca,)), [NAME], now=g.NOW, source=CA)  # type: ignore[arg-type]
    assert "intermediate-not-ca" in codes(report)[0]


def test_a_ca_must_send_the_intermediate_and_not_a_self_signed_certificate():
    pki = g.pki([NAME], now=g.NOW)
    alone = Bundle(key=pki.key, leaf=pki.leaf)  # type: ignore[arg-type]
    assert codes(gate(alone, [NAME], now=g.NOW, source=CA))[0] == ["missing-intermediate"]
    assert "pass it with --chain" not in gate(alone, [NAME], now=g.NOW, source=CA).errors[0].message
    own = SelfSigned(clock=lambda: g.NOW).issue(CertRequest.build([NAME]))
    assert codes(gate(own, [NAME], now=g.NOW, source=CA))[0] == ["self-signed"]
    assert codes(gate(own, [NAME], now=g.NOW, source="sesam-tls", from_ca=False)) == ([], ["self-signed"])


# the gate in the pipeline --------------------------------------------------------------------


class Handing:
    """Provider seam: a CA that hands over whatever bundle it is given."""

    name = "acme"

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.origin = CA

    def issue(self, request):
        return self.bundle


@pytest.fixture
def node(tmp_path):
    root = make_root(tmp_path)
    seed_own_pair(root, NAME)
    return Node.from_settings(root=str(root), env={})


def on_disk(node: Node) -> dict:
    """The ssl folder (every path, mode, content) and the agent config, byte for byte.

    An empty ``.versions`` folder is left out: the writability probe before the
    lock makes it on a node that had none (not this gate's business).
    """
    tree = tree_digest(node.ssl_dir)
    if tree.get(".versions", "").endswith(" dir") and not any(k.startswith(".versions/") for k in tree):
        del tree[".versions"]
    return {**tree, "agent": Path(node.agent_config).read_bytes()}


@pytest.mark.parametrize("kind", list(GATE_CODES))
def test_a_refused_bundle_changes_nothing_and_exits_with_the_providers_code(hostile, node, kind):
    before = on_disk(node)
    with pytest.raises(RefusedCertificate) as refused:
        issue(CertRequest.build([NAME]), Handing(bundle_of(hostile, kind)), node=node, options=FILES_ONLY)
    assert isinstance(refused.value, IssuanceError) and refused.value.exit_code == 8
    text = str(refused.value)
    assert CA in text and KINDS[kind][1] in text and "\n" not in text
    assert on_disk(node) == before


def test_a_self_signed_certificate_made_with_a_clock_years_ahead_is_refused(node):
    before = on_disk(node)
    ahead = SelfSigned(clock=lambda: now() + dt.timedelta(days=3 * 365))
    with pytest.raises(RefusedCertificate, match="is not valid before"):
        issue(CertRequest.build([NAME]), ahead, node=node, options=FILES_ONLY)
    assert on_disk(node) == before


# import: the operator's own self-issued CA:TRUE certificate -----------------------------------


def openssl_req_x509(folder: Path, name: str) -> tuple[Path, Path]:
    """What an operator makes with a plain ``openssl req -x509`` (CA:TRUE is OpenSSL's default)."""
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "30", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name}"],
        check=True, capture_output=True,
    )
    assert x509.load_pem_x509_certificate(cert.read_bytes()).extensions.get_extension_for_class(
        x509.BasicConstraints).value.ca
    return cert, key


def test_a_self_issued_ca_certificate_is_imported_with_one_warning(node, tmp_path, capsys):
    cert, key = openssl_req_x509(tmp_path, NAME)
    code = main(["import", "--cert", str(cert), "--key", str(key), "--domain", NAME,
                 "--root", str(node.root), "--no-restart"])
    out, err = capsys.readouterr()
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("sesam-tls: warning:")]
    assert len(warnings) == 1, err
    assert "CA:TRUE" in warnings[0] and "self-signed" in warnings[0]
    assert (node.ssl_dir / "fullchain.pem").read_bytes() == cert.read_bytes()


def test_ca_true_on_a_leaf_another_ca_issued_stays_refused(node, tmp_path, capsys):
    pki = g.pki([NAME], now=now(), ca=True)
    (tmp_path / "c.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM)
                                              for c in (pki.leaf, pki.inter.cert)))
    (tmp_path / "k.pem").write_bytes(pki.key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    before = on_disk(node)
    code = main(["import", "--cert", str(tmp_path / "c.pem"), "--key", str(tmp_path / "k.pem"), "--domain", NAME,
                 "--root", str(node.root), "--no-restart"])
    assert code == 3
    assert "is a CA certificate (CA:TRUE)" in capsys.readouterr().err
    assert on_disk(node) == before


@pytest.mark.parametrize("kind", ["unknown-critical", "path-length"])
def test_import_refuses_what_openssl_refuses(hostile, node, tmp_path, capsys, kind):
    bundle = bundle_of(hostile, kind)
    (tmp_path / "c.pem").write_bytes(bundle.fullchain_pem())
    (tmp_path / "k.pem").write_bytes(bundle.key_pem())
    before = on_disk(node)
    code = main(["import", "--cert", str(tmp_path / "c.pem"), "--key", str(tmp_path / "k.pem"), "--domain", NAME,
                 "--root", str(node.root), "--no-restart"])
    err = capsys.readouterr().err
    assert code == 3, err
    assert KINDS[kind][1] in err and str(tmp_path / "c.pem") in err
    assert on_disk(node) == before
    # and openssl agrees
    chain = tmp_path / "chain.pem"
    chain.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in bundle.chain))
    root = tmp_path / "root.pem"
    root.write_bytes(hostile.root.cert.public_bytes(serialization.Encoding.PEM))
    check = subprocess.run(["openssl", "verify", "-CAfile", str(root), "-untrusted", str(chain), str(tmp_path / "c.pem")],
                           capture_output=True, text=True)
    assert check.returncode != 0, check.stdout




def test_a_pair_nginx_would_refuse_is_refused_before_nginx_sees_it(node):
    pki = g.pki([NAME], now=now(), leaf_key=g.rsa_key(1024))
    before = on_disk(node)
    with pytest.raises(RefusedCertificate, match="RSA key of 1024 bits is too weak"):
        issue(CertRequest.build([NAME]), Handing(Bundle(key=pki.key, leaf=pki.leaf, chain=(pki.inter.cert,))),  # type: ignore[arg-type]
              node=node, options=FILES_ONLY)
    assert on_disk(node) == before
