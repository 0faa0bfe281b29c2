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
import re
import secrets
import selectors
import socket
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


#: Seconds a client has to send its whole request to the standalone server and read the
#: answer, and the bytes it may send: an HTTP-01 request is one short line and a few headers.
_REQUEST_TIMEOUT = 10.0
_MAX_REQUEST = 16384
#: Connections the standalone server keeps open at once; more are closed as they come.
_MAX_CONNECTIONS = 256
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 501: "Not Implemented"}


def _answer(request: bytes, tokens: dict[str, str], client: str) -> bytes:
    """The whole HTTP/1.0 answer to ``request`` (its line and headers; only the line is read)."""
    parts = request.split(b"\n", 1)[0].decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        status, text, body, token = 400, "bad request\n", True, False
    elif parts[0] not in ("GET", "HEAD"):
        status, text, body, token = 501, "only GET and HEAD\n", True, False
    else:
        path = parts[1].split("?", 1)[0]
        value = tokens.get(path[len(WELL_KNOWN):]) if path.startswith(WELL_KNOWN) else None
        log.debug("http01: %s asked for %s: %s", client, path, "200" if value else "404")
        status, text, body, token = (200, value, parts[0] == "GET", True) if value else (
            404, "not found\n", parts[0] == "GET", False)
    data = text.encode()
    head = (f"HTTP/1.0 {status} {_REASONS[status]}\r\nServer: sesam-tls\r\n"
            f"Content-Type: {'text/plain' if token else 'text/plain; charset=utf-8'}\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode()
    return head + data if body else head


class _Exchange:
    """One connection to the standalone server: what has come, what is left to send, by when."""

    __slots__ = ("client", "deadline", "received", "answer")

    def __init__(self, client: str, deadline: float) -> None:
        self.client = client
        self.deadline = deadline
        self.received = b""
        self.answer: Optional[bytes] = None


class TokenServer:
    """The standalone responder: one thread with one event loop for every listen address and
    every connection. No thread is started per request and none is handed a request (the CA
    asks for each token several times at once), and a client that is slow or silent costs a
    socket until its deadline, never a thread: each exchange has ``_REQUEST_TIMEOUT`` seconds
    all told and at most ``_MAX_REQUEST`` bytes. ``stop()`` wakes the loop at once."""

    def __init__(self, port: int, listen: Iterable[str] = ("0.0.0.0", "::")) -> None:
        self.port = port
        self.listen = tuple(listen)
        self.tokens: dict[str, str] = {}
        self.description = f"standalone server on port {port}"
        self.by_host = False
        self._listeners: list[socket.socket] = []
        self._wake: Optional[tuple[socket.socket, socket.socket]] = None
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        """Bind every listen address or none; raise :class:`PortBusy` when one is taken."""
        try:
            for address in self.listen:
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                try:
                    listener = _listener(family, address, self.port)
                except OSError as exc:
                    if family == socket.AF_INET6 and exc.errno in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
                        log.debug("http01: no IPv6 on this host; serving IPv4 only")
                        continue
                    raise PortBusy(self.port, address, exc) from exc
                self._listeners.append(listener)
            self._wake = socket.socketpair()
        except BaseException:
            self._close()
            raise
        self._thread = threading.Thread(target=self._serve, name=f"http01-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None and self._wake is not None:
            with contextlib.suppress(OSError):
                self._wake[1].send(b"x")
            self._thread.join(timeout=2.0)
        self._close()

    def _close(self) -> None:
        for sock in (*self._listeners, *(self._wake or ())):
            sock.close()
        self._listeners.clear()
        self._wake, self._thread = None, None

    def present(self, token: str, key_authorization: str) -> None:
        self.tokens[check_token(token)] = key_authorization

    def cleanup(self, token: str) -> None:
        self.tokens.pop(token, None)

    # the loop ---------------------------------------------------------------------------
    def _serve(self) -> None:
        assert self._wake is not None
        selector = selectors.DefaultSelector()
        open_: dict[socket.socket, _Exchange] = {}
        try:
            for listener in self._listeners:
                selector.register(listener, selectors.EVENT_READ)
            selector.register(self._wake[0], selectors.EVENT_READ)
            while True:
                now = time.monotonic()
                soonest = min((x.deadline for x in open_.values()), default=None)
                for key, _ in selector.select(None if soonest is None else max(soonest - now, 0.0)):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is self._wake[0]:
                        return
                    if key.data is None:
                        self._accept(sock, selector, open_)
                    else:
                        self._step(sock, key.data, selector, open_)
                now = time.monotonic()
                for sock in [s for s, x in open_.items() if x.deadline <= now]:
                    self._end(sock, selector, open_)
        except Exception:  # noqa: BLE001 - a bug here must not go unseen, nor kill the run from a thread
            log.exception("http01: the standalone server stopped")
        finally:
            for sock in list(open_):
                self._end(sock, selector, open_)
            selector.close()

    def _accept(self, listener: socket.socket, selector: selectors.BaseSelector,
                open_: dict[socket.socket, _Exchange]) -> None:
        try:
            sock, address = listener.accept()
        except OSError:  # gone before it was accepted, or out of descriptors: the next one
            return
        if len(open_) >= _MAX_CONNECTIONS:
            sock.close()
            return
        sock.setblocking(False)
        exchange = _Exchange(str(address[0]), time.monotonic() + _REQUEST_TIMEOUT)
        open_[sock] = exchange
        selector.register(sock, selectors.EVENT_READ, exchange)

    def _step(self, sock: socket.socket, exchange: _Exchange, selector: selectors.BaseSelector,
              open_: dict[socket.socket, _Exchange]) -> None:
        try:
            if exchange.answer is None:
                chunk = sock.recv(4096)
                if not chunk:
                    return self._end(sock, selector, open_)
                exchange.received += chunk
                request = exchange.received
                if b"\r\n\r\n" not in request and b"\n\n" not in request and len(request) <= _MAX_REQUEST:
                    return
                exchange.answer = _answer(request, self.tokens, exchange.client)
                selector.modify(sock, selectors.EVENT_WRITE, exchange)
            sent = sock.send(exchange.answer)
            exchange.answer = exchange.answer[sent:]
            if not exchange.answer:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_WR)
                self._end(sock, selector, open_)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the client hung up or reset
            self._end(sock, selector, open_)

    @staticmethod
    def _end(sock: socket.socket, selector: selectors.BaseSelector, open_: dict[socket.socket, _Exchange]) -> None:
        open_.pop(sock, None)
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(sock)
        sock.close()


def _listener(family: int, address: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # over TIME_WAIT, never over a listener
        if family == socket.AF_INET6:
            # Only IPv6 here; IPv4 has its own socket, so both work whatever bindv6only says.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
        # socketserver's backlog of 5 dropped the CA's connections when it validated many names at
        # once (each drop costs a SYN retransmission: a second, then three).
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


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
