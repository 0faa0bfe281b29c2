"""A hostile ACME server on loopback, for the tests that a run stays bounded in time and memory.

It is a small ACME server of the tests' own, not a proxy to Pebble: it
accepts any account, marks every authorization valid (so no HTTP-01 port is
needed) and, depending on ``mode``, misbehaves at one step:

- ``endless-dir``: the directory is an endless chunked body;
- ``big-dir``: the directory announces 1 GiB and streams it (never held in memory);
- ``gzip-dir``: the directory is ~1 MiB of gzip that inflates to 1 GiB (a decompression bomb);
- ``redirect-loop``: the directory redirects to a second URL that redirects back;
- ``drip-dir``: the directory arrives one byte every ``drip`` seconds;
- ``drip-headers``: the directory's headers arrive one byte every ``drip`` seconds;
- ``drip-finalize``: everything works until finalize, which drips;
- ``endless-cert``: the certificate chain is an endless chunked body;
- ``date-off``: every answer carries a ``Date`` one day ahead (``date_offset``);
- ``ok``: a working server (for the control case); it signs the CSR it is sent.

It serves HTTPS on 127.0.0.1 on a port the kernel picks; ``requests`` counts
what was asked, so a test can say "no order was placed".
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import http.server
import json
import secrets
import ssl
import threading
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .acme_fixtures import _tls_files, serve_https

MODES = ("ok", "endless-dir", "big-dir", "gzip-dir", "redirect-loop", "drip-dir", "drip-headers", "drip-finalize", "endless-cert", "date-off")
GIB = 1 << 30
CHUNK = b"x" * 65536


def _gzip_bomb() -> bytes:
    """1 GiB of spaces as 1,024 gzip members of 1 MiB each (about 1 MiB on the wire), made once."""
    global _BOMB
    if _BOMB is None:
        import gzip

        _BOMB = gzip.compress(b" " * (1 << 20), 9) * 1024
    return _BOMB


_BOMB: bytes | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class HostileAcme:
    def __init__(self, folder: Path, mode: str, *, drip: float = 1.0, date_offset: dt.timedelta = dt.timedelta(days=1)):
        if mode not in MODES:
            raise ValueError(mode)
        self.mode = mode
        self.drip = drip
        self.date_offset = date_offset if mode == "date-off" else dt.timedelta(0)
        self.requests: list[str] = []
        self.sent = 0  # body bytes sent by the misbehaving answers
        self._stop = threading.Event()
        ca, cert, key = _tls_files(folder)
        self.ca_bundle = str(ca)
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def date_time_string(self, timestamp: Any = None) -> str:
                when = time.time() + server.date_offset.total_seconds()
                return email.utils.formatdate(when, usegmt=True)

            def do_GET(self) -> None:
                server.handle(self, "GET")

            def do_HEAD(self) -> None:
                server.handle(self, "HEAD")

            def do_POST(self) -> None:
                server.handle(self, "POST")

        self.server, self.port = serve_https(Handler, cert, key)
        self.base = f"https://127.0.0.1:{self.port}"
        self.directory = f"{self.base}/dir"

    def close(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------------------------
    def handle(self, h: http.server.BaseHTTPRequestHandler, method: str) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0)) if method == "POST" else b""
        path = h.path
        self.requests.append(f"{method} {path}")
        try:
            if path in ("/dir", "/dir2") and method == "GET":
                return self._directory(h, path)
            if path == "/nonce":
                return self._reply(h, 200, b"")
            payload = self._payload(body)
            if path == "/acct":
                return self._json(h, 201, {"status": "valid", "contact": []}, location=f"{self.base}/acct/1")
            if path == "/order":
                self.identifiers = payload["identifiers"]
                return self._json(h, 201, self._order("ready"), location=f"{self.base}/order/1")
            if path == "/authz/1":
                ident = self.identifiers[0]
                chall = {"type": "http-01", "url": f"{self.base}/chall/1", "status": "valid",
                         "token": _b64(secrets.token_bytes(32))}
                return self._json(h, 200, {"status": "valid", "identifier": ident, "challenges": [chall]})
            if path == "/finalize/1":
                if self.mode == "drip-finalize":
                    return self._drip(h)
                self.csr = x509.load_der_x509_csr(base64.urlsafe_b64decode(payload["csr"] + "=="))
                return self._json(h, 200, self._order("valid"), location=f"{self.base}/order/1")
            if path == "/order/1":
                return self._json(h, 200, self._order("valid"))
            if path == "/cert/1":
                if self.mode == "endless-cert":
                    return self._endless(h, "application/pem-certificate-chain")
                return self._reply(h, 200, self._sign(), {"Content-Type": "application/pem-certificate-chain"})
            return self._json(h, 404, {"type": "urn:ietf:params:acme:error:malformed", "detail": "no such thing"})
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            return None

    def _directory(self, h: Any, path: str) -> None:
        if self.mode == "redirect-loop":
            target = "/dir2" if path == "/dir" else "/dir"
            return self._reply(h, 302, b"", {"Location": f"{self.base}{target}"})
        if self.mode == "endless-dir":
            return self._endless(h, "application/json")
        if self.mode == "big-dir":
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(GIB))
            h.end_headers()
            left = GIB
            while left > 0 and not self._stop.is_set():
                piece = CHUNK[: min(len(CHUNK), left)]
                h.wfile.write(piece)
                self.sent += len(piece)
                left -= len(piece)
            return None
        if self.mode == "gzip-dir":
            bomb = _gzip_bomb()
            return self._reply(h, 200, bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip"})
        if self.mode == "drip-dir":
            return self._drip(h)
        if self.mode == "drip-headers":
            h.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for _ in range(10000):
                if self._stop.wait(self.drip):
                    return None
                h.wfile.write(b"X")  # one endless header name, a byte at a time
                self.sent += 1
            return None
        b = self.base
        return self._json(h, 200, {"newNonce": f"{b}/nonce", "newAccount": f"{b}/acct", "newOrder": f"{b}/order",
                                   "revokeCert": f"{b}/revoke", "keyChange": f"{b}/key-change"})

    def _order(self, status: str) -> dict[str, Any]:
        order = {"status": status, "identifiers": self.identifiers, "authorizations": [f"{self.base}/authz/1"],
                 "finalize": f"{self.base}/finalize/1"}
        if status == "valid":
            order["certificate"] = f"{self.base}/cert/1"
        return order

    def _sign(self) -> bytes:
        """A leaf for the CSR's key and names, issued by this server's own CA (a short chain)."""
        now = dt.datetime.now(dt.timezone.utc)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hostile test CA")])
        ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self._ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
              .not_valid_after(now + dt.timedelta(days=30))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(self._ca_key, hashes.SHA256()))
        san = self.csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        leaf = (x509.CertificateBuilder().subject_name(self.csr.subject).issuer_name(name)
                .public_key(self.csr.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
                .add_extension(san, critical=False).sign(self._ca_key, hashes.SHA256()))
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, ca))

    @staticmethod
    def _payload(body: bytes) -> dict[str, Any]:
        if not body:
            return {}
        raw = json.loads(body).get("payload") or ""
        return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)) or b"{}")

    def _json(self, h: Any, status: int, data: dict[str, Any], *, location: str = "") -> None:
        headers = {"Content-Type": "application/json" if status < 400 else "application/problem+json"}
        if location:
            headers["Location"] = location
        self._reply(h, status, json.dumps(data).encode(), headers)

    def _reply(self, h: Any, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        h.send_response(status)
        h.send_header("Replay-Nonce", _b64(secrets.token_bytes(16)))
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

    def _endless(self, h: Any, content_type: str) -> None:
        h.send_response(200)
        h.send_header("Replay-Nonce", _b64(secrets.token_bytes(16)))
        h.send_header("Content-Type", content_type)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        while not self._stop.is_set():
            h.wfile.write(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
            self.sent += len(CHUNK)

    def _drip(self, h: Any) -> None:
        """A JSON body of 10,000 bytes, one byte every ``drip`` seconds: each byte restarts a read timeout."""
        h.send_response(200)
        h.send_header("Replay-Nonce", _b64(secrets.token_bytes(16)))
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", "10000")
        h.end_headers()
        h.wfile.flush()
        for _ in range(10000):
            if self._stop.wait(self.drip):
                return
            h.wfile.write(b" ")
            h.wfile.flush()
            self.sent += 1


class DrippingHandshake:
    """A TCP server on 127.0.0.1 that answers a TLS ClientHello with a handshake record one byte every
    ``drip`` seconds: every byte restarts a socket timeout, so only the deadline ends the wait."""

    def __init__(self, drip: float = 1.0) -> None:
        import socket

        self.drip = drip
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.directory = f"https://127.0.0.1:{self.port}/dir"
        self.ca_bundle = None
        self.requests: list[str] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self._listener.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: Any) -> None:
        with conn:
            try:
                conn.recv(65536)  # the ClientHello
                self.requests.append("ClientHello")
                record = b"\x16\x03\x03\x40\x00" + b"\x02" * 0x4000  # a handshake record of 16 KiB, never whole
                for byte in record:
                    if self._stop.wait(self.drip):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


class ConnectProxy:
    """An HTTP proxy on 127.0.0.1 that tunnels ``CONNECT 127.0.0.1:PORT`` (loopback only), as a node's
    outbound proxy would; ``tunnels`` counts what went through it."""

    def __init__(self) -> None:
        import socket

        self._socket = socket
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.tunnels: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self._listener.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._tunnel, args=(conn,), daemon=True).start()

    def _tunnel(self, client: Any) -> None:
        head = b""
        with client:
            while b"\r\n\r\n" not in head and len(head) < 65536:
                piece = client.recv(4096)
                if not piece:
                    return
                head += piece
            method, target = head.split(b" ", 2)[:2]
            host, _, port = target.decode().rpartition(":")
            if method != b"CONNECT" or host != "127.0.0.1":
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            self.tunnels.append(target.decode())
            with self._socket.create_connection((host, int(port))) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
                self._pipe(client, upstream)

    def _pipe(self, src: Any, dst: Any) -> None:
        try:
            while not self._stop.is_set():
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(self._socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
