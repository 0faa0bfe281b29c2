"""HTTP-01 challenge responders: who answers ``/.well-known/acme-challenge/<token>``.

A responder is two verbs, ``present(token, key_authorization)`` and
``cleanup(token)`` (lego's shape). Each strategy is a context manager that
opens the responder and closes it again, so that port 80 is given back and
token files are removed by structure, on failure and Ctrl-C too:

- ``standalone``: a tiny HTTP server on ``port``, IPv4 and IPv6, only while
  challenges are pending; it answers the live tokens and 404s the rest.
- ``stop-nginx``: port 80 belongs to the node's nginx container; stop it,
  serve as ``standalone``, start it again in ``finally``.
- ``webroot``: an existing web server serves a folder; write the token files
  there and remove them afterwards.
- ``auto``: standalone when the port can be bound; stop-nginx when the
  holder is the managed container; otherwise a clear error naming the holder.

Before the CA is told to validate, :func:`self_check` fetches each token
over loopback, so a broken setup fails here and not against the CA's
failed-validation limit.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import ipaddress
import logging
import os
import queue
import re
import secrets
import socket
import socketserver
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol

from .deadline import Deadline, poll
from .choices import HTTP01_STRATEGIES as STRATEGIES
from .errors import DockerError, IssuanceError, SesamTLSError, StorageError, UsageError, one_line
from .fsutil import describe_oserror, write_new

__all__ = [
    "STRATEGIES",
    "WELL_KNOWN",
    "Http01Options",
    "PortBusy",
    "Responder",
    "TokenServer",
    "WouldStopNginx",
    "open_responder",
    "plan",
    "presented",
    "self_check",
]

log = logging.getLogger("sesam_tls")

WELL_KNOWN = "/.well-known/acme-challenge/"
#: RFC 8555 section 8.3: a token is base64url; anything else could walk out of a webroot.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,256}$")
#: How often the server threads look at their shutdown flag; ``serve_forever``'s
#: default of 0.5 s would add half a second to every issuance.
_POLL_INTERVAL = 0.01


class Responder(Protocol):
    """Makes ``http://<name>:<port>/.well-known/acme-challenge/<token>`` answer."""

    description: str
    #: What answers depends on the request's ``Host`` (a web server with virtual hosts), so the
    #: self-check fetches every name's token; a server of ours answers every name alike, and
    #: one token proves it.
    by_host: bool

    def present(self, token: str, key_authorization: str) -> None: ...

    def cleanup(self, token: str) -> None: ...


@dataclass(frozen=True)
class Http01Options:
    """How HTTP-01 challenges are answered.

    ``port`` is where the CA connects (80 for every public CA; a test CA
    may use another). ``listen`` are the addresses the standalone server
    binds: every IPv4 and IPv6 address by default, because Let's Encrypt
    validates over IPv6 when the name has an AAAA record.
    """

    strategy: str = "auto"
    port: int = 80
    webroot: Optional[Path] = None
    listen: tuple[str, ...] = ("0.0.0.0", "::")
    self_check_timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise UsageError(f"unknown `http01.strategy` {self.strategy!r}: choose one of {', '.join(STRATEGIES)}")
        if not 0 < self.port < 65536:
            raise UsageError(f"invalid `http01.port` {self.port}: must be between 1 and 65535")
        if self.strategy == "webroot" and self.webroot is None:
            raise UsageError("`http01.strategy` webroot needs `http01.webroot` DIR (the folder your web server serves)")
        if self.webroot is not None and self.strategy != "webroot":
            raise UsageError(f"`http01.webroot` is only used with `http01.strategy` webroot, not {self.strategy!r}")
        for address in self.listen:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise UsageError(f"invalid `http01.listen` {address!r}: not an IP address") from None

    @classmethod
    def given_or_recorded(
        cls,
        recorded: Any = None,
        *,
        strategy: Optional[str] = None,
        port: Optional[int] = None,
        webroot: Optional[str | Path] = None,
        listen: Sequence[str] = (),
    ) -> "Http01Options":
        """Each option as given, else as recorded with the managed certificate (``recorded``: its
        ``AcmeSettings``, or None), else the default: what the next ``renew`` would use, changed
        only where told. A ``webroot`` given alone means the webroot strategy (certbot's habit)."""
        kwargs: dict[str, Any] = {}
        addresses = tuple(listen) or tuple(getattr(recorded, "http_address", None) or ())
        if addresses:
            kwargs["listen"] = addresses
        folder = webroot or getattr(recorded, "webroot", None)
        recorded_port = getattr(recorded, "http_port", None)
        return cls(
            strategy=strategy or ("webroot" if webroot else None) or getattr(recorded, "http01", None) or "auto",
            port=int(port if port is not None else recorded_port or 80),
            webroot=Path(folder).absolute() if folder else None,
            **kwargs,
        )


def check_token(token: str) -> str:
    if not _TOKEN.match(token):
        raise IssuanceError(f"the CA sent an unusable challenge token {token[:40]!r}: not base64url")
    return token


# --- standalone --------------------------------------------------------------------------


class PortBusy(Exception):
    """Internal: the standalone server could not bind; the caller decides what that means."""

    def __init__(self, port: int, address: str, exc: OSError) -> None:
        super().__init__(f"{address} port {port}: {describe_oserror(exc)}")
        self.port = port
        self.address = address
        self.errno = exc.errno


#: Seconds a client has to send its whole request to the standalone server, and the bytes it
#: may send: an HTTP-01 request is one short line and a few headers.
_REQUEST_TIMEOUT = 10.0
_MAX_REQUEST = 16384
#: Requests the standalone server answers at a time (threads kept for the server's life, started
#: as requests come), and connections it keeps waiting for one of them before it closes new ones.
_SERVER_THREADS = 64
_MAX_WAITING = 256
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 501: "Not Implemented"}


class _Handler(socketserver.BaseRequestHandler):
    """One HTTP/1.0 exchange: a GET or HEAD for a token, answered from the server's ``tokens``.
    Small on purpose (the CA asks for each token several times, from several places): the
    request is read whole, at most ``_MAX_REQUEST`` bytes within ``_REQUEST_TIMEOUT`` seconds
    all told (a client that trickles bytes cannot hold a thread longer), and only its first
    line is looked at."""

    server: _Server

    def handle(self) -> None:
        deadline = time.monotonic() + _REQUEST_TIMEOUT
        request = self._read(deadline)
        if request is None:
            return
        line = request.split(b"\n", 1)[0]
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return self._send(400, "bad request\n", deadline, body=True)
        method, target = parts[0], parts[1]
        if method not in ("GET", "HEAD"):
            return self._send(501, "only GET and HEAD\n", deadline, body=True)
        path = target.split("?", 1)[0]
        value = self.server.tokens.get(path[len(WELL_KNOWN):]) if path.startswith(WELL_KNOWN) else None
        log.debug("http01: %s asked for %s: %s", self.client_address[0], path, "200" if value else "404")
        self._send(200 if value else 404, value or "not found\n", deadline, body=method == "GET",
                   token=value is not None)

    def _read(self, deadline: float) -> Optional[bytes]:
        """The request line and headers (to their end: closing on unread bytes would reset the
        connection before the answer is read), or None when the client took too long or hung up."""
        sock = self.request
        data = b""
        while b"\r\n\r\n" not in data and b"\n\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if len(data) > _MAX_REQUEST:
                break  # answered 400 unless its first line is a request; the rest is not read
            sock.settimeout(left)
            chunk = sock.recv(4096)
            if not chunk:
                return data or None
            data += chunk
        return data

    def _send(self, status: int, text: str, deadline: float, *, body: bool, token: bool = False) -> None:
        data = text.encode()
        head = (f"HTTP/1.0 {status} {_REASONS[status]}\r\nServer: sesam-tls\r\n"
                f"Content-Type: {'text/plain' if token else 'text/plain; charset=utf-8'}\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode()
        self.request.settimeout(max(deadline - time.monotonic(), 1.0))
        self.request.sendall(head + data if body else head)


class _Server(socketserver.TCPServer):
    allow_reuse_address = True  # SO_REUSEADDR: rebinding over TIME_WAIT, never over a listener
    # socketserver's backlog of 5 drops the CA's connections when it validates many names at once
    # (each drop costs a SYN retransmission: a second, then three).
    request_queue_size = socket.SOMAXCONN
    tokens: dict[str, str]

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            # Only IPv6 here; IPv4 has its own socket, so both work whatever bindv6only says.
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()

    def server_activate(self) -> None:
        super().server_activate()
        # Threads kept for the server's life (daemons, started as requests come, at most
        # _SERVER_THREADS), rather than one thread started per request.
        self._waiting: queue.SimpleQueue[Optional[tuple[Any, Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._workers: list[threading.Thread] = []

    def process_request(self, request: Any, client_address: Any) -> None:
        if self._waiting.qsize() >= _MAX_WAITING:  # a flood of connections: no more sockets held
            self.shutdown_request(request)
            return
        self._waiting.put((request, client_address))
        with self._lock:
            if self._idle == 0 and len(self._workers) < _SERVER_THREADS:
                worker = threading.Thread(target=self._work, name="http01-answer", daemon=True)
                worker.start()
                self._workers.append(worker)

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            item = self._waiting.get()
            with self._lock:
                self._idle -= 1
            if item is None:
                return
            request, client_address = item
            try:
                self.finish_request(request, client_address)
            except Exception:  # noqa: BLE001 - a client that hangs up or times out ends its own exchange
                log.debug("http01: an exchange with %s ended early", client_address[0], exc_info=True)
            finally:
                self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        for _ in getattr(self, "_workers", ()):
            self._waiting.put(None)


class TokenServer:
    """The standalone responder: one small HTTP server per listen address."""

    def __init__(self, port: int, listen: Iterable[str] = ("0.0.0.0", "::")) -> None:
        self.port = port
        self.listen = tuple(listen)
        self.tokens: dict[str, str] = {}
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self.description = f"standalone server on port {port}"
        self.by_host = False

    def start(self) -> None:
        """Bind every listen address or none; raise :class:`PortBusy` when one is taken."""
        try:
            for address in self.listen:
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                server_cls = type("_Server6" if family == socket.AF_INET6 else "_Server4", (_Server,),
                                  {"address_family": family})
                try:
                    server = server_cls((address, self.port), _Handler)
                except OSError as exc:
                    if family == socket.AF_INET6 and exc.errno in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
                        log.debug("http01: no IPv6 on this host; serving IPv4 only")
                        continue
                    raise PortBusy(self.port, address, exc) from exc
                server.tokens = self.tokens
                self._servers.append(server)
        except BaseException:
            self._close()
            raise
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": _POLL_INTERVAL},
                name=f"http01-{server.server_address[0]!s}", daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        if self._threads:  # shutdown() waits for serve_forever, so only when it runs
            for server in self._servers:
                server.shutdown()
        self._close()

    def _close(self) -> None:
        for server in self._servers:
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=1.0)
        self._servers.clear()
        self._threads.clear()

    def present(self, token: str, key_authorization: str) -> None:
        self.tokens[check_token(token)] = key_authorization

    def cleanup(self, token: str) -> None:
        self.tokens.pop(token, None)


@contextlib.contextmanager
def standalone(port: int, listen: Iterable[str]) -> Iterator[TokenServer]:
    server = TokenServer(port, listen)
    try:
        server.start()
    except PortBusy as exc:
        raise IssuanceError(
            f"cannot serve HTTP-01 challenges: {exc} ({_busy_reason(exc)}); "
            "choose `http01.strategy` auto, stop-nginx or webroot"
        ) from None
    log.info("serving HTTP-01 challenges on port %d", port)
    try:
        yield server
    finally:
        server.stop()


# --- stop-nginx --------------------------------------------------------------------------


@contextlib.contextmanager
def stop_nginx(nginx: Any, port: int, listen: Iterable[str]) -> Iterator[TokenServer]:
    """Stop the nginx container, serve the challenges, start it again whatever happens."""
    if not nginx.is_running():
        log.info("container %s is not running; serving HTTP-01 challenges standalone", nginx.name)
        with standalone(port, listen) as server:
            yield server
        return
    log.info("stopping container %s to free port %d", nginx.name, port)
    stopped = time.monotonic()
    nginx.stop()
    try:
        server = _bind_when_free(port, listen, timeout=10.0)
        server.description = f"standalone server on port {port} (container {nginx.name} stopped)"
        try:
            yield server
        finally:
            server.stop()
    finally:
        try:
            nginx.start()
        except DockerError as exc:
            log.error("container %s did not start again: %s; start it by hand (docker start %s)",
                      nginx.name, exc, nginx.name)
            raise
        log.info("started container %s again; port %d was away for %.2f s",
                 nginx.name, port, time.monotonic() - stopped)


def _bind_when_free(port: int, listen: Iterable[str], *, timeout: float) -> TokenServer:
    """A stopped container's sockets close a moment after ``docker stop`` returns."""
    busy: list[PortBusy] = []

    def bind() -> tuple[bool, Optional[TokenServer], None]:
        server = TokenServer(port, listen)
        try:
            server.start()
        except PortBusy as exc:
            busy[:] = [exc]
            return False, None, None
        return True, server, None

    try:
        server = poll(bind, Deadline(timeout, f"freeing port {port}", error=IssuanceError), "binding",
                      first=0, growth=2, cap=0.1)
    except IssuanceError:
        if not busy:
            raise
        exc = busy[0]
        raise IssuanceError(
            f"stopped the nginx container but port {port} stays busy: {exc} ({_busy_reason(exc)})"
        ) from None
    assert server is not None
    return server


# --- webroot -----------------------------------------------------------------------------


class WebrootResponder:
    """Token files under ``<root>/.well-known/acme-challenge/`` for a web server that serves root
    (or, with ``alias=True``, in ``root`` itself, for a server whose challenge location is an
    ``alias`` of that folder)."""

    def __init__(self, root: Path, *, alias: bool = False) -> None:
        self.root = Path(root)
        self.folder = self.root if alias else self.root / WELL_KNOWN.strip("/")
        self.description = f"webroot {self.folder}" if alias else f"webroot {self.root}"
        self.by_host = True
        self._created: list[Path] = []
        self._files: dict[str, Path] = {}

    def open(self) -> None:
        if not self.root.is_dir():
            raise UsageError(f"`http01.webroot` {self.root}: not a folder")
        for folder in (self.folder.parent, self.folder) if self.folder != self.root else ():
            if not folder.is_dir():
                try:
                    folder.mkdir(mode=0o755)
                except OSError as exc:
                    raise StorageError(f"cannot create {folder}: {describe_oserror(exc)}") from None
                os.chmod(folder, 0o755)  # readable by the web server, whatever the umask
                self._created.append(folder)

    def close(self) -> None:
        for token in list(self._files):
            self.cleanup(token)
        for folder in reversed(self._created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty: other files there are not ours
        self._created.clear()

    def present(self, token: str, key_authorization: str) -> None:
        path = self.folder / check_token(token)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a leftover from an interrupted run
        try:
            write_new(path, key_authorization.encode(), 0o644)
        except OSError as exc:
            raise StorageError(f"cannot write challenge file {path}: {describe_oserror(exc)}") from None
        self._files[token] = path

    def cleanup(self, token: str) -> None:
        path = self._files.pop(token, None)
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()


@contextlib.contextmanager
def webroot(root: Path) -> Iterator[WebrootResponder]:
    responder = WebrootResponder(root)
    try:
        responder.open()
        log.info("writing HTTP-01 challenge files under %s", responder.folder)
        yield responder
    finally:
        responder.close()


# --- auto --------------------------------------------------------------------------------


class WouldStopNginx(Exception):
    """A rehearsal (``--dry-run``) reached the moment the real run stops the nginx container.

    A rehearsal never stops, reloads or restarts the live nginx, so it ends
    there, before any challenge is answered; the message says what the real
    run would do. Not a :class:`~sesam_tls.errors.SesamTLSError`: nothing failed.
    """


def _would_stop(nginx: Any, port: int, why: str) -> WouldStopNginx:
    name = getattr(nginx, "name", "nginx")
    return WouldStopNginx(f"the real run stops container {name} while the CA validates ({why}), "
                          f"serves the token on port {port} itself, and starts the container again")


@contextlib.contextmanager
def open_responder(options: Http01Options, nginx: Any = None, *, rehearsal: bool = False) -> Iterator[Responder]:
    """Open the responder ``options`` ask for. ``nginx`` is the node's :class:`NginxContainer`.

    ``rehearsal``: raise :class:`WouldStopNginx` instead of stopping the container.
    """
    if options.strategy == "stop-nginx" and rehearsal:
        raise _would_stop(nginx, options.port, "`http01.strategy` stop-nginx")
    if options.strategy == "webroot":
        assert options.webroot is not None  # checked in Http01Options
        with webroot(options.webroot) as responder:
            yield responder
    elif options.strategy == "standalone":
        with standalone(options.port, options.listen) as server:
            yield server
    elif options.strategy == "stop-nginx":
        if nginx is None:
            raise UsageError("`http01.strategy` stop-nginx needs the node's nginx container")
        with stop_nginx(nginx, options.port, options.listen) as server:
            yield server
    else:
        with _auto(options, nginx, rehearsal=rehearsal) as responder:
            yield responder


@contextlib.contextmanager
def _auto(options: Http01Options, nginx: Any, *, rehearsal: bool = False) -> Iterator[Responder]:
    server = TokenServer(options.port, options.listen)
    try:
        server.start()
    except PortBusy as busy:
        if busy.errno != errno.EADDRINUSE:
            raise IssuanceError(f"cannot serve HTTP-01 challenges: {busy} ({_busy_reason(busy)})") from None
        from .ports import container_holds_port, describe_holders, port_holders  # only for a port in use

        holders = port_holders(options.port)
        if nginx is not None and container_holds_port(nginx, options.port, holders):
            found = mounted_webroot(nginx, options.port)
            if found is not None:
                log.info("port %d is held by the managed container %s, which serves %s from %s: "
                         "answering there, nothing is stopped", options.port, nginx.name, WELL_KNOWN, found.folder)
                try:
                    yield found
                finally:
                    found.close()
                return
            if rehearsal:
                raise _would_stop(nginx, options.port, f"`http01.strategy` auto: port {options.port} is held by it") from None
            log.info("port %d is held by the managed container %s: using stop-nginx", options.port, nginx.name)
            with stop_nginx(nginx, options.port, options.listen) as stopped:
                yield stopped
            return
        raise IssuanceError(
            f"cannot answer HTTP-01 challenges: {busy}, held by {describe_holders(holders)}, "
            f"not by the managed container{' ' + repr(nginx.name) if nginx is not None else ''}; "
            f"stop that process, or use `http01.strategy` webroot `http01.webroot` DIR if it serves DIR, "
            "or `http01.strategy` stop-nginx `container` NAME if it is another nginx container"
        ) from None
    log.info("serving HTTP-01 challenges on port %d (standalone)", options.port)
    try:
        yield server
    finally:
        server.stop()


#: Folders in the container that hold configuration or keys, never a web root: not probed.
_NOT_WEBROOTS = ("/etc", "/run", "/var/run", "/proc", "/sys", "/dev")


def mounted_webroot(nginx: Any, port: int, *, timeout: float = 2.0) -> Optional[WebrootResponder]:
    """A folder mounted from this host that the container serves under ``/.well-known/acme-challenge/``
    (as an nginx set up for certbot does), proven by fetching a probe file through port ``port``;
    an open responder for it, or None.

    Answering there needs no stop of nginx, so port 80 is never silent. Each
    writable bind mount (configuration folders aside) is tried in the two
    layouts nginx configurations use: ``root <mount>`` (the file under
    ``.well-known/acme-challenge/``) and ``alias <mount>/`` (the file in the
    mount itself). Every probe file, and any folder it needed, is removed.
    """
    try:
        mounts = nginx.bind_mounts()
    except Exception as exc:  # noqa: BLE001 - no mounts to try is not an error: stop-nginx still works
        log.debug("cannot list the mounts of container %s: %s", getattr(nginx, "name", "?"), exc)
        return None
    for source, destination, writable in mounts:
        if not writable or destination.startswith(_NOT_WEBROOTS) or not os.path.isdir(source):
            continue
        if not os.access(source, os.W_OK | os.X_OK):
            continue
        for alias in (False, True):
            responder = WebrootResponder(Path(source), alias=alias)
            token = "sesam-tls-probe-" + secrets.token_urlsafe(16)
            proof = secrets.token_urlsafe(24)
            try:
                responder.open()
                responder.present(token, proof)
                served = _fetch_local(port, WELL_KNOWN + token, timeout=timeout)
            except (SesamTLSError, OSError):
                served = None
            finally:
                responder.cleanup(token)
            if served == proof:
                return responder
            responder.close()
    return None


def _fetch_local(port: int, path: str, *, timeout: float) -> Optional[str]:
    """The body 127.0.0.1:``port`` answers for ``path`` with HTTP 200 (at most 4 KiB), else None."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read(4096).decode("utf-8", "replace").strip()
        return body if response.status == 200 else None
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def plan(options: Http01Options, nginx: Any = None) -> str:
    """What ``auto``/``standalone``/``stop-nginx`` would do now, for ``sesam-tls check``.

    Binds the port for a moment (and lets go); raises IssuanceError when the
    chosen strategy cannot work.
    """
    if options.strategy == "webroot":
        assert options.webroot is not None
        folder = options.webroot / WELL_KNOWN.strip("/")
        probe = folder if folder.is_dir() else options.webroot
        if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
            raise IssuanceError(f"`http01.webroot` {options.webroot}: not a writable folder")
        return f"token files go under {folder} (webroot)"
    server = TokenServer(options.port, options.listen)
    try:
        server.start()
    except PortBusy as busy:
        if busy.errno != errno.EADDRINUSE:
            raise IssuanceError(f"cannot bind port {options.port}: {busy} ({_busy_reason(busy)})") from None
        from .ports import container_holds_port, describe_holders, port_holders

        holders = port_holders(options.port)
        if options.strategy != "standalone" and nginx is not None and container_holds_port(nginx, options.port, holders):
            found = mounted_webroot(nginx, options.port) if options.strategy == "auto" else None
            if found is not None:
                found.close()
                return (f"port {options.port} is held by the managed container {nginx.name}, which serves "
                        f"{WELL_KNOWN} from {found.folder}: answered there, nothing is stopped")
            return f"port {options.port} is held by the managed container {nginx.name}: it is stopped while the CA validates"
        raise IssuanceError(
            f"port {options.port} is held by {describe_holders(holders)}"
            + ("" if options.strategy == "standalone" else ", not by the managed container")
            + "; stop it, or use `http01.strategy` webroot `http01.webroot` DIR if it serves DIR"
        ) from None
    server.stop()
    return f"port {options.port} is free: a standalone server answers the challenges"


@contextlib.contextmanager
def presented(responder: Responder, challenges: Iterable[tuple[str, str]]) -> Iterator[None]:
    """Present every (token, key authorization); clean every one up afterwards."""
    done: list[str] = []
    try:
        for token, key_authorization in challenges:
            responder.present(token, key_authorization)
            done.append(token)
        yield
    finally:
        for token in done:
            responder.cleanup(token)


# --- self-check --------------------------------------------------------------------------


def self_check(name: str, port: int, token: str, key_authorization: str, *, timeout: float = 5.0) -> None:
    """Fetch the token the way the CA will, but over loopback; raise IssuanceError if it is wrong.

    The ``Host`` header carries the name, so a web server with virtual hosts
    (webroot) answers from the right site.
    """
    path = WELL_KNOWN + token
    host = f"[{name}]" if ":" in name else name
    url = f"http://{host}:{port}{path}" if port != 80 else f"http://{host}{path}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host if port == 80 else f"{host}:{port}"})
        response = conn.getresponse()
        body = response.read(4096).decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException) as exc:
        raise IssuanceError(
            f"self-check failed for {name}: nothing answers {url} on this node ({one_line(exc, 200)}); "
            "the CA was not asked to validate"
        ) from None
    finally:
        conn.close()
    if response.status != 200 or body != key_authorization:
        what = f"HTTP {response.status}" if response.status != 200 else "a different body"
        raise IssuanceError(
            f"self-check failed for {name}: {url} answered {what}, not the challenge token "
            "(is `http01.webroot` the folder that server serves for this name?); the CA was not asked to validate"
        )


def _busy_reason(exc: PortBusy) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "ports below 1024 need root or CAP_NET_BIND_SERVICE"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{exc.address} is not an address of this host"
    from .ports import describe_holders, port_holders

    return "held by " + describe_holders(port_holders(exc.port))
