"""What the ACME tests need beyond the shared testbed fixtures.

- ``node_factory``: a scratch Sesam node (the guide's agent config), optionally
  seeded with the operator's own self-signed pair and an nginx container;
- ``pebble_nonce_reject``: a Pebble instance of our own that rejects half of
  the nonces (``PEBBLE_WFE_NONCEREJECT=50``), on its own ports;
- ``AcmeFront``: a tiny HTTPS front for Pebble that the tests serve
  themselves. Pebble 2.4.0 has no profiles and no ARI; the front adds them
  to the directory, serves ``renewalInfo``, records every order the client
  sends, and can answer ``newOrder`` with a rate limit, or with
  ``alreadyReplaced`` to orders that carry ``replaces`` (to every order with
  ``refuse_all``). Everything else is
  passed to Pebble unchanged with the front's ``Host``, so Pebble's URLs
  and JWS ``url`` checks point at the front; ``rewrite`` (request body,
  Pebble's answer) -> answer lets a test change what comes back
  (tests/hostile_acme.py: a CA that signs bad certificates).
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import http.server
import ipaddress
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sesam_tls import CertRequest, Node, SelfSigned
from sesam_tls.http01 import Http01Options
from sesam_tls.providers.acme import Acme

from . import testbed
from .helpers import make_root

NAME = "node.example.test"
LOOPBACK = ("127.0.0.1",)


# --- nodes ---------------------------------------------------------------------------------


@dataclass
class TestNode:
    __test__ = False
    node: Node
    own: Any  # the operator's self-signed Bundle the node starts with
    https_port: Optional[int] = None


@pytest.fixture
def node_factory(tmp_path, request):
    """node_factory(container=False, http_port=None) -> TestNode.

    The node has the operator's own self-signed pair in its ssl folder; with
    ``container=True`` an nginx container serves it on a free HTTPS port (and
    on ``http_port`` over plain HTTP when given, holding that port).
    """
    count = [0]

    def make(*, container: bool = False, http_port: Optional[int] = None, acme_webroot: Any = None,
             acme: str = "root") -> TestNode:
        count[0] += 1
        root = make_root(tmp_path / f"node{count[0]}")
        ssl_dir = root / "sesam/nginx/conf/ssl"
        ssl_dir.mkdir(parents=True)
        own = SelfSigned().issue(CertRequest.build([NAME]))
        (ssl_dir / "fullchain.pem").write_bytes(own.fullchain_pem())
        (ssl_dir / "privkey.pem").write_bytes(own.key_pem())
        if not container:
            return TestNode(Node.from_settings(root=str(root), env={}), own)
        docker_host = request.getfixturevalue("docker_host")
        containers = request.getfixturevalue("nginx_container")
        port = testbed.free_port()
        name = containers(ssl_dir, port, http_port, acme_webroot=acme_webroot, acme=acme)
        node = Node.from_settings(root=str(root), container=name, docker_host=docker_host, env={})
        return TestNode(node, own, port)

    return make


def acme_for(pebble: Any, node: Node, **kwargs: Any) -> Acme:
    """An Acme provider for ``pebble`` that serves HTTP-01 on loopback only."""
    http01 = kwargs.pop("http01", None) or Http01Options(
        strategy=kwargs.pop("strategy", "standalone"), port=kwargs.pop("http_port", pebble.http_port), listen=LOOPBACK
    )
    return Acme(
        state_dir=node.state_dir,
        directory=kwargs.pop("directory", pebble.directory),
        ca_bundle=kwargs.pop("ca_bundle", pebble.ca_bundle),
        agree_tos=kwargs.pop("agree_tos", True),
        http01=http01,
        **kwargs,
    )


def verified_handshake(port: int, name: str, root_pem: str) -> x509.Certificate:
    """A TLS handshake that verifies the served chain against ``root_pem`` and the name."""
    context = ssl.create_default_context(cadata=root_pem)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=name) as tls:
        der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der)


# --- a Pebble of our own ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def pebble_nonce_reject():
    """Pebble rejecting 50 % of nonces, on free ports (its own HTTP-01 port too)."""
    try:
        with testbed.own_pebble("sesam-tls-acme-noncereject", PEBBLE_WFE_NONCEREJECT="50") as pebble:
            yield pebble
    except testbed.TestbedError as e:
        pytest.fail(f"testbed not available: {e}", pytrace=False)


# --- the front ---------------------------------------------------------------------------------


def _tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a leaf for 127.0.0.1: (ca.pem, cert.pem, key.pem)."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sesam-tls test ACME front CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def serve_https(handler: type, cert: Path, key: Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    """A threaded HTTPS server of the test's own on 127.0.0.1 (a free port), serving in a daemon
    thread until ``server.shutdown()``; returns the server and its port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    return server, server.server_address[1]


class AcmeFront:
    """HTTPS on 127.0.0.1 in front of Pebble; see the module docstring."""

    def __init__(self, pebble: Any, folder: Path, *, profiles: Optional[dict[str, str]] = None,
                 ari: bool = False, rate_limit_after: Optional[str] = None, already_replaced: int = 0,
                 refuse_all: bool = False, delay: float = 0.0) -> None:
        self.pebble = pebble
        self.delay = delay  # seconds added to every answer: a CA far away
        self.in_flight = 0  # requests being answered now, and the most at once
        self.most_in_flight = 0
        self._count = threading.Lock()
        self.profiles = profiles
        self.ari = ari
        self.rate_limit_after = rate_limit_after  # Retry-After value for a 429 on newOrder
        self.already_replaced = already_replaced  # how many orders to refuse with alreadyReplaced
        self.refuse_all = refuse_all  # refuse them whether they carry replaces or not
        self.orders: list[dict[str, Any]] = []
        self.refused: list[dict[str, Any]] = []  # the orders answered alreadyReplaced
        self.ari_requests: list[str] = []
        self.rewrite: Optional[Callable[[bytes, bytes], bytes]] = None
        ca, cert, key = _tls_files(folder)
        self.ca_bundle = str(ca)
        self._upstream = ssl.create_default_context(cafile=pebble.ca_bundle)
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                front.handle(self, "GET")

            def do_HEAD(self) -> None:
                front.handle(self, "HEAD")

            def do_POST(self) -> None:
                front.handle(self, "POST")

        self.server, self.port = serve_https(Handler, cert, key)
        self.base = f"https://127.0.0.1:{self.port}"
        self.directory = f"{self.base}/dir"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --------------------------------------------------------------------------------------
    def handle(self, h: http.server.BaseHTTPRequestHandler, method: str) -> None:
        with self._count:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            self._handle(h, method)
        finally:
            with self._count:
                self.in_flight -= 1

    def _handle(self, h: http.server.BaseHTTPRequestHandler, method: str) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0)) if method == "POST" else b""
        if method == "GET" and h.path.startswith("/renewal-info/"):
            self.ari_requests.append(h.path.rsplit("/", 1)[1])
            now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
            window = {"suggestedWindow": {"start": (now + dt.timedelta(days=1)).isoformat().replace("+00:00", "Z"),
                                          "end": (now + dt.timedelta(days=2)).isoformat().replace("+00:00", "Z")}}
            return self._reply(h, 200, {"Content-Type": "application/json", "Retry-After": "21600"},
                               json.dumps(window).encode())
        is_order = method == "POST" and h.path == "/order-plz"
        if is_order and self.rate_limit_after is not None:
            problem = {"type": "urn:ietf:params:acme:error:rateLimited",
                       "detail": "too many new orders recently: see https://letsencrypt.org/docs/rate-limits/",
                       "status": 429}
            return self._reply(h, 429, {"Content-Type": "application/problem+json",
                                        "Retry-After": self.rate_limit_after}, json.dumps(problem).encode())
        if is_order and self.already_replaced > 0:
            order = _payload(body)
            if "replaces" in order or self.refuse_all:
                self.already_replaced -= 1
                self.refused.append(order)
                problem = {"type": "urn:ietf:params:acme:error:alreadyReplaced", "status": 409,
                           "detail": f"the certificate {order.get('replaces')} has already been replaced"}
                return self._reply(h, 409, {"Content-Type": "application/problem+json"}, json.dumps(problem).encode())
        status, headers, data = self._forward(h, method, body)
        if self.rewrite is not None:
            data = self.rewrite(body, data)
        if is_order and status == 201:  # an order Pebble took (not one refused for a stale nonce)
            self.orders.append(_payload(body))
        if method == "GET" and h.path == "/dir":
            directory = json.loads(data)
            if self.profiles is not None:
                directory.setdefault("meta", {})["profiles"] = self.profiles
            if self.ari:
                directory["renewalInfo"] = f"{self.base}/renewal-info"
            data = json.dumps(directory).encode()
        self._reply(h, status, headers, data)

    def _forward(self, h: Any, method: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPSConnection("127.0.0.1", self.pebble.port, context=self._upstream, timeout=10)
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in ("connection", "content-length")}
            headers["Host"] = f"127.0.0.1:{self.port}"  # Pebble builds its URLs from Host
            conn.request(method, h.path, body=body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
            skip = ("connection", "transfer-encoding", "content-length", "keep-alive")
            return response.status, {k: v for k, v in response.getheaders() if k.lower() not in skip}, data
        finally:
            conn.close()

    @staticmethod
    def _reply(h: Any, status: int, headers: dict[str, str], data: bytes) -> None:
        h.send_response(status)
        for key, value in headers.items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)


def _payload(body: bytes) -> dict[str, Any]:
    """The JSON payload of a flattened JWS request body."""
    payload = json.loads(body)["payload"]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture
def acme_front(pebble, tmp_path):
    """acme_front(profiles=..., ari=..., rate_limit_after=..., already_replaced=..., refuse_all=..., delay=...) -> AcmeFront,
    closed at teardown."""
    fronts: list[AcmeFront] = []

    def make(**kwargs: Any) -> AcmeFront:
        front = AcmeFront(pebble, tmp_path / f"front{len(fronts)}", **kwargs)
        fronts.append(front)
        return front

    yield make
    for front in fronts:
        front.close()
