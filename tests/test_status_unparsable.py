"""``status --verify`` against a server whose certificate cryptography cannot parse: one line, no traceback.

The fingerprint is taken over the DER bytes the server sent, which needs no
parsing; a loopback TLS server of the test's own serves the certificate.
"""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509

from sesam_tls import Node
from sesam_tls.cli import main

from .helpers import make_root, seed_own_pair
from .test_gate import NAME, openssl_req_x509


@pytest.fixture
def node(tmp_path):
    root = make_root(tmp_path)
    seed_own_pair(root, NAME)
    return Node.from_settings(root=str(root), env={})


# status --verify: a served certificate cryptography cannot parse ------------------------------


def unparsable_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate OpenSSL serves but cryptography refuses to load (version field v4)."""
    cert, key = openssl_req_x509(folder, NAME)
    der = bytearray(ssl.PEM_cert_to_DER_cert(cert.read_text()))
    at = der.find(bytes([0xA0, 3, 2, 1, 2]))  # [0] EXPLICIT INTEGER 2 (v3)
    der[at + 4] = 3
    with pytest.raises(x509.InvalidVersion):
        x509.load_der_x509_certificate(bytes(der))
    cert.write_text(ssl.DER_cert_to_PEM_cert(bytes(der)))
    return cert, key


@pytest.fixture
def tls_server(tmp_path):
    """A loopback TLS server on a free port serving an unparsable certificate; stopped afterwards."""
    cert, key = unparsable_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join(5)
    sock.close()


def test_status_verify_against_an_unparsable_certificate_says_so_in_one_line(node, tls_server, capsys):
    code = main(["status", "--root", str(node.root), "--verify", f"127.0.0.1:{tls_server}"])
    out, err = capsys.readouterr()
    assert code == 10
    assert "Traceback" not in err and len(err.splitlines()) == 1 and "does not serve the deployed" in err  # says why
    served = [line for line in out.splitlines() if line.startswith("served:")]
    assert len(served) == 1 and "NO" in served[0], out
