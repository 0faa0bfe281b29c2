"""The wire to one ACME server: directory, signed requests, nonces, errors in the operator's terms.

JWS and message types stay in the ``acme`` package (its internals that this
module hooks into are all in ``acme_compat``, each with the reason); this module
adds what it lacks for a fast, concurrent client: one ``ClientV2``, one
``requests`` session and one pool of at most ``CA_CONNECTIONS`` keep-alive
connections for the whole run (the directory too), shared by every worker
thread; a thread-safe nonce pool fed by every answer that carries a
``Replay-Nonce`` (a thread that finds it empty while an answer is on its way on
every connection waits for one rather than sending a HEAD); ``badNonce`` retried more than
once (a CA may reject any nonce; Pebble rejects half of them with
``PEBBLE_WFE_NONCEREJECT=50``); and the ``Retry-After`` of every answer.
A TLS handshake cost ~40 ms here (issue 16's profile: 18 handshakes, 745 ms
for 100 names), far more than a request on a kept-alive connection, so
threads share a few connections instead of opening one each.

``acme``, ``josepy`` and ``requests`` are imported inside the functions,
so that ``import sesam_tls`` and ``sesam-tls --help`` do not pay for them.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import email.utils
import functools
import heapq
import itertools
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Optional, Union
from urllib.parse import urljoin, urlsplit

from ..acme_target import LETSENCRYPT, LETSENCRYPT_STAGING
from ..deadline import Deadline, retry_after_seconds, seconds_from_env
from ..errors import IssuanceError, SesamTLSError, one_line
from ..renewal import CLOCK_SKEW
from .acme_problems import problem_text, rate_limited

__all__ = [
    "LETSENCRYPT",
    "LETSENCRYPT_STAGING",
    "ACME_DEADLINE",
    "DEADLINE_ENV",
    "MAX_JSON",
    "MAX_CHAIN",
    "MAX_REDIRECTS",
    "CLOCK_SKEW",
    "CA_CONNECTIONS",
    "Connection",
    "acme_deadline",
    "bounded_request",
    "bounded_session",
    "clock_skew_problem",
    "retry_after_seconds",
    "wire_errors",
]

log = logging.getLogger("sesam_tls")


#: ``ClientNetwork.post`` already retries a ``badNonce`` once; we repeat that
#: up to this many times, each try costing one round trip.
NONCE_ROUNDS = 16

#: Seconds a thread waits for the nonce of an answer on its way before it sends a HEAD of its own.
NONCE_PATIENCE = 1.0

#: The whole ACME exchange, from the directory to the certificate, ends within
#: this many seconds; ``$SESAM_TLS_ACME_DEADLINE`` sets another (tests shorten it).
ACME_DEADLINE = 90.0
DEADLINE_ENV = "SESAM_TLS_ACME_DEADLINE"
#: Caps on one answer's body. ACME objects (directory, account, order,
#: authorization, problem) are a few KiB; a chain of three PEM certificates ~6 KiB.
MAX_JSON = 1 << 20
MAX_CHAIN = 1 << 20
#: Redirects followed for one GET or HEAD.
MAX_REDIRECTS = 5
#: How far the local clock may be from the CA's ``Date`` before no order is placed
#: (a certificate that seems not yet valid, or one renewed far too early or late):
#: renewal.CLOCK_SKEW, the one tolerance the gate, ``status`` and ``renew`` use too.
#: Bytes asked of the socket per read; a read returns as soon as any have arrived.
READ_CHUNK = 65536
#: Connections to the CA that one run keeps open at most: requests beyond that wait for one
#: to be free. The per-name work is our CPU (JWS, JSON) far more than the CA's answer, so more
#: connections buy handshakes, not speed.
CA_CONNECTIONS = 4
#: Nonces kept in circulation: a thread that finds the pool empty sends a HEAD while fewer
#: answers than this are on their way (each brings the next nonce), and waits for one otherwise.
#: As many as the connections, so they all carry requests; one would serialise every request.
NONCE_LANES = CA_CONNECTIONS

class _WireState:
    """What the run's ``ClientNetwork`` keeps of its own (one attribute, ``sesam``: see acme_compat)."""

    def __init__(self, deadline: Deadline, on_date: Optional[Callable[[Any], None]], timeout: float) -> None:
        self.deadline = deadline
        self.on_date = on_date
        self.timeout = timeout
        #: The directory's newNonce URL (Connection.directory sets it).
        self.new_nonce_url: Optional[str] = None
        self.gate = threading.BoundedSemaphore(CA_CONNECTIONS)
        self.cond = threading.Condition()
        #: Nonces not used yet, as ``acme.jws`` signs them.
        self.nonces: set[bytes] = set()
        #: Answers on their way that will each bring a nonce: a nonce taken for a POST counts
        #: from the moment it is taken (signing comes before sending), a HEAD from its start.
        self.coming = 0
        #: What this run cost on the wire: requests by method, "requests", "connections".
        self.stats: dict[str, int] = {"requests": 0, "connections": 0, "HEAD": 0}
        #: Seconds the last few requests waited on the wire and the CA (Connection.ca_wait).
        self.waited: collections.deque[float] = collections.deque(maxlen=8)

    def count(self, key: str) -> None:
        with self.cond:
            self.stats[key] = self.stats.get(key, 0) + 1


@functools.cache
def _network() -> Any:
    """``ClientNetwork`` with bounded requests, a shared nonce pool and repeated ``badNonce`` retries
    (built on first use: lazy import). Its hooks into acme are acme_compat's."""
    from acme import errors, messages

    from .acme_compat import compat_network, decode_nonce

    class Network(compat_network()):  # type: ignore[misc]  # a class built at run time (lazy import)
        def __init__(
            self,
            *args: Any,
            deadline: Optional[Deadline] = None,
            on_date: Optional[Callable[[Any], None]] = None,
            timeout: float = 30.0,
            **kwargs: Any,
        ) -> None:
            super().__init__(*args, timeout=timeout, **kwargs)
            self.sesam = _WireState(deadline or acme_deadline("the ACME server"), on_date, timeout)
            adapter = _watched_adapter(pool_maxsize=CA_CONNECTIONS)
            self.session.trust_env = False  # bounded_request reads the environment once per origin
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)

        def send(self, method: str, url: str, *, data: Any = None, headers: Optional[dict[str, str]] = None,
                 timeout: Optional[float] = None) -> Any:
            """One request, bounded: see the module docstring. Logs no body (it may be a key's chain).
            At most ``CA_CONNECTIONS`` at a time; the answer's nonce goes to the pool."""
            wire = self.sesam
            headers = dict(headers or {})
            headers.setdefault("User-Agent", self.user_agent)
            doing = f"waiting for a free connection to {urlsplit(url).netloc or url}"
            if not wire.gate.acquire(timeout=wire.deadline.timeout(3600.0, doing)):
                raise wire.deadline.exceeded(doing)
            response = None
            try:
                with wire.cond:
                    if method == "HEAD":
                        wire.coming += 1
                    wire.stats["requests"] += 1
                    wire.stats[method] = wire.stats.get(method, 0) + 1
                sent, cpu = time.monotonic(), time.thread_time()
                response = bounded_request(
                    self.session, method, url, data=data, headers=headers, verify=self.verify_ssl,
                    timeout=timeout or wire.timeout, deadline=wire.deadline, connected=lambda: wire.count("connections"),
                )
                wire.waited.append((time.monotonic() - sent) - (time.thread_time() - cpu))
            finally:
                wire.gate.release()
                with wire.cond:
                    if method in ("HEAD", "POST"):
                        wire.coming = max(0, wire.coming - 1)
                    if response is not None:
                        self._keep_nonce(response)
                    wire.cond.notify_all()
            if wire.on_date is not None:
                wire.on_date(response.headers)
            if "Accept" not in headers:
                response.encoding = "utf-8"  # as the package does: ACME JSON is UTF-8
            log.debug("acme: %s %s -> HTTP %d, %d bytes", method, url, response.status_code, len(response.content))
            if response.status_code == 409 and "Location" not in response.headers:
                # ``acme`` turns every 409 into ConflictError, which carries only a Location
                # ("this key has an account there"). A 409 without one is a plain problem,
                # e.g. RFC 9773's alreadyReplaced: keep its type and detail.
                try:
                    body = response.json()
                except ValueError:
                    body = None
                if isinstance(body, dict) and isinstance(body.get("type"), str):
                    raise messages.Error.from_json(body)
            return response

        def _keep_nonce(self, response: Any) -> None:
            """Under the lock: the answer's ``Replay-Nonce`` into the pool (every answer, errors too)."""
            value = response.headers.get(self.REPLAY_NONCE_HEADER)
            if not value:
                return
            try:
                self.sesam.nonces.add(decode_nonce(value))
            except ValueError:  # a malformed nonce is not used; the next POST fetches one
                log.debug("acme: ignoring a malformed Replay-Nonce")

        def take_nonce(self, url: str, new_nonce_url: Optional[str]) -> bytes:
            """A nonce from the pool; while it is empty and ``NONCE_LANES`` answers are on their
            way, wait for their nonces (up to ``NONCE_PATIENCE`` s); else ask ``newNonce`` (one
            HEAD). Ten threads starting at once cost at most ``NONCE_LANES`` HEADs, not ten."""
            wire = self.sesam
            patience = Deadline(NONCE_PATIENCE, "a nonce")
            while True:
                with wire.cond:
                    while not wire.nonces and wire.coming >= NONCE_LANES and not patience.expired:
                        wire.cond.wait(min(patience.remaining(), wire.deadline.timeout(1.0, "waiting for a nonce")))
                    if wire.nonces:
                        wire.coming += 1
                        return wire.nonces.pop()
                response = self.head(new_nonce_url or wire.new_nonce_url or url)
                if not response.ok:
                    raise errors.ClientError(response)
                if self.REPLAY_NONCE_HEADER not in response.headers:
                    raise errors.MissingNonce(response)

        def post(self, *args: Any, **kwargs: Any) -> Any:
            for _ in range(NONCE_ROUNDS - 1):
                try:
                    return super().post(*args, **dict(kwargs))
                except messages.Error as error:
                    if error.code != "badNonce":
                        raise
                    log.debug("acme: badNonce twice in a row; retrying")
            return super().post(*args, **kwargs)

    return Network


class Connection:
    """One ACME directory, one account key, any number of threads.

    ``verify`` is ``True`` (the system's CA store, or ``REQUESTS_CA_BUNDLE``)
    or the path of a PEM bundle that verifies a private ACME server.
    """

    def __init__(
        self,
        url: str,
        *,
        ca_bundle: Optional[str] = None,
        timeout: float = 30.0,
        deadline: Optional[Deadline] = None,
    ) -> None:
        self.url = url
        self.verify: Any = ca_bundle or True
        self.timeout = timeout
        self.host = urlsplit(url).netloc or url
        self.deadline = deadline or acme_deadline(f"the ACME exchange with {self.host}")
        #: (the CA's Date, the local time it was read), from the last answer that had one.
        self.server_clock: Optional[tuple[dt.datetime, dt.datetime]] = None
        self.key: Any = None  # josepy JWK of the account
        self.alg: Any = None
        self.account_uri: Optional[str] = None
        self._directory: Any = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._net: Any = None
        self._client: Any = None
        self.last_retry_after: Optional[float] = None

    # identity -------------------------------------------------------------------------
    def use_key(self, jwk: Any, account_uri: Optional[str] = None) -> None:
        """Sign with ``jwk`` from now on (as account ``account_uri``, or with the bare key)."""
        import josepy as jose

        self.key = jwk
        self.alg = _alg_for(jwk, jose)
        net = self.net()
        net.key, net.alg = self.key, self.alg
        self.set_account(account_uri)

    def set_account(self, account_uri: Optional[str]) -> None:
        """Sign as ``account_uri`` (``kid``) from now on, or with the bare key (None): the same
        client, connections and nonces go on (no rebuild, no second handshake or HEAD)."""
        from acme import messages

        self.account_uri = account_uri
        self.net().account = (
            messages.RegistrationResource(uri=account_uri, body=messages.Registration()) if account_uri else None
        )

    @property
    def stats(self) -> dict[str, int]:
        """What the run cost on the wire so far: ``requests``, ``nonce_heads``, ``connections``
        (each a TCP connection, and a TLS handshake for an https directory)."""
        raw = dict(self._net.sesam.stats) if self._net is not None else {}
        return {"requests": raw.get("requests", 0), "nonce_heads": raw.get("HEAD", 0),
                "connections": raw.get("connections", 0)}

    def ca_wait(self) -> Optional[float]:
        """How long a request waits on the wire and the CA (seconds): of the last few requests,
        the shortest time between sending and the answer read, less the CPU the thread spent on
        it (so a cold first request's work does not count as waiting). None before any request."""
        wire = self._net.sesam if self._net is not None else None
        if wire is None:
            return None
        with wire.cond:
            return min(wire.waited, default=None)

    def close(self) -> None:
        """Close the connections (the run's end; a later call opens new ones)."""
        with self._lock:
            net, self._net, self._client = self._net, None, None
        if net is not None:
            close_quietly(net)

    # the protocol objects ---------------------------------------------------------------
    def net(self) -> Any:
        """The run's one ``ClientNetwork``: its session (connection pool) and nonce pool serve
        every thread, the directory included."""
        with self._lock:
            if self._net is None:
                self._net = _network()(
                    key=self.key, verify_ssl=self.verify, user_agent=_user_agent(), timeout=self.timeout,
                    deadline=self.deadline, on_date=self._saw_date, **({"alg": self.alg} if self.alg else {}),
                )
                self._net.session.hooks["response"].append(self._remember)
                if self._directory is not None:  # a run that closed its connections and goes on
                    self._net.sesam.new_nonce_url = self._directory["newNonce"]
            return self._net

    def directory(self) -> Any:
        net = self.net()
        with self._lock:
            if self._directory is None:
                from acme import messages

                log.info("fetching the ACME directory %s", self.url)
                with wire_errors(self, "fetching the ACME directory"):
                    directory = messages.Directory.from_json(net.get(self.url).json())
                    for field in ("newNonce", "newAccount", "newOrder"):
                        directory[field]
                net.sesam.new_nonce_url = directory["newNonce"]
                self._directory = directory
            return self._directory

    def client(self) -> Any:
        """The run's ``ClientV2``, shared by every thread, signing with the current key."""
        directory = self.directory()
        net = self.net()
        with self._lock:
            if self._client is None or self._client.net is not net:
                from acme import client

                self._client = client.ClientV2(directory, net)
            return self._client

    def post(self, url: str, obj: Any = None) -> Any:
        """A signed POST (``obj``) or POST-as-GET (``None``); returns the ``requests`` response."""
        return self.client().net.post(url, obj)

    def _remember(self, response: Any, *args: Any, **kwargs: Any) -> None:
        """requests response hook: keep a 429's Retry-After, which ``acme`` drops when it raises."""
        if response.status_code == 429:
            self.last_retry_after = retry_after_seconds(response.headers.get("Retry-After"))

    def _saw_date(self, headers: Any) -> None:
        """Keep the CA's clock from an answer's ``Date`` (plus its ``Age``, when a cache served it)."""
        when = _http_date(headers.get("Date"))
        if when is None:
            return
        age = (headers.get("Age") or "").strip()
        if age.isdigit() and len(age) < 10:
            when += dt.timedelta(seconds=int(age))
        self.server_clock = (when, dt.datetime.now(dt.timezone.utc))

    def check_clock(self) -> None:
        """Before an order: refuse to go on when the local clock is far from the CA's (one line, both times)."""
        if self.server_clock is None:
            log.debug("acme: the CA sent no Date header; the clock is not checked")
            return
        problem = clock_skew_problem(*self.server_clock, host=self.host)
        if problem:
            raise IssuanceError(problem)


def acme_deadline(what: str) -> Deadline:
    """The deadline of one ACME exchange: ``ACME_DEADLINE``, or ``$SESAM_TLS_ACME_DEADLINE`` seconds."""
    return Deadline(seconds_from_env(DEADLINE_ENV, ACME_DEADLINE), what, error=IssuanceError)


def clock_skew_problem(
    server: dt.datetime, local: dt.datetime, *, host: str, tolerance: dt.timedelta = CLOCK_SKEW
) -> Optional[str]:
    """The error line when ``local`` (this node's clock) and ``server`` (the CA's ``Date``) differ
    by more than ``tolerance``, else None (pure)."""
    skew = local - server
    if abs(skew) <= tolerance:
        return None
    ahead = "ahead of" if skew > dt.timedelta(0) else "behind"
    off = dt.timedelta(seconds=round(abs(skew.total_seconds())))
    return (
        f"this node's clock says {local.replace(microsecond=0).isoformat()} and the ACME server {host} says "
        f"{server.isoformat()}: the clock is {off} {ahead} the CA's, more than the "
        f"{int(tolerance.total_seconds() // 60)} minutes allowed; fix the clock (NTP) before ordering a certificate"
    )


def _http_date(value: Optional[str]) -> Optional[dt.datetime]:
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)


# --- bounded requests -----------------------------------------------------------------------------

_current = threading.local()


class _Slot:
    """The connection one request of one thread is using, for the watchdog to cut."""

    conn: Any = None
    #: The connection had no socket when the pool handed it out: this request connects.
    fresh = False
    #: The request has ended: the watchdog leaves it alone.
    done = False


class _Watchdog:
    """One thread that shuts the socket of every request that outlives its time (a
    ``threading.Timer`` per request started a thread per request: a tenth of a millisecond
    each, for every signed request). Started on first use; a daemon that sleeps until the
    earliest time it watches."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Slot]] = []
        self._order = itertools.count()
        self._thread: Optional[threading.Thread] = None

    def watch(self, slot: _Slot, seconds: float) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._order), slot))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="acme-watchdog", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is slot:  # earlier than what the thread sleeps for
                self._cond.notify()

    @staticmethod
    def release(slot: _Slot) -> None:
        slot.done, slot.conn = True, None

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                while self._heap and (self._heap[0][2].done or self._heap[0][0] <= now):
                    _, _, slot = heapq.heappop(self._heap)
                    if not slot.done:
                        _cut(slot)
                self._cond.wait(self._heap[0][0] - now if self._heap else None)


_WATCHDOG = _Watchdog()


def bounded_request(
    session: Any,
    method: str,
    url: str,
    *,
    deadline: Deadline,
    timeout: float,
    verify: Any = True,
    headers: Optional[dict[str, str]] = None,
    data: Any = None,
    connected: Optional[Callable[[], None]] = None,
) -> Any:
    """One HTTP request through ``session``, ending by ``deadline`` with its body read under a cap.

    ``connected`` is called once for every request that had to open a connection
    (a new one, or one the pool found dropped): the count of TLS handshakes.

    Returns the ``requests`` response with its body already read. Raises
    ``deadline.exceeded()`` when time runs out (while connecting, waiting
    for the headers, or reading the body), and ``IssuanceError`` for a body
    over its cap or a redirect loop.
    """
    import requests

    host = urlsplit(url).netloc or url
    for _ in range(MAX_REDIRECTS + 1):
        doing = f"{method} {url}"
        proxies, verified = _environment(session, url, verify)
        slot = _Slot()
        _current.slot = slot
        _WATCHDOG.watch(slot, deadline.timeout(timeout, doing))
        try:
            response = session.send(
                _prepared(session, method, url, headers, data), verify=verified, proxies=proxies, stream=True,
                allow_redirects=False, cert=None, timeout=deadline.timeout(timeout, doing),
            )
            _read_body(response, deadline, doing, host)
        except requests.exceptions.RequestException:
            if deadline.expired:
                raise deadline.exceeded(doing) from None
            raise
        finally:
            _WATCHDOG.release(slot)
            _current.slot = None
            if slot.fresh and connected is not None:
                connected()
        deadline.check(doing)  # a cut connection can look like a short body: never use it
        if not (response.is_redirect and method in ("GET", "HEAD")):
            return response
        url = urljoin(url, response.headers["Location"])
    raise IssuanceError(
        f"the ACME server {host} redirected {method} more than {MAX_REDIRECTS} times (last to {url}): "
        "a redirect loop; is that the right ACME directory URL?"
    )


def _prepared(session: Any, method: str, url: str, headers: Optional[dict[str, str]], data: Any) -> Any:
    """The request as ``Session.request`` would prepare it (the session's headers, cookies and
    hooks), without its merging of settings from the environment and of per-request auth
    (none here; the environment is :func:`_environment`'s). Measured warm, 10 names on Pebble:
    5 ms of CPU less per issuance."""
    import requests

    prepared = requests.PreparedRequest()
    prepared.prepare(method=method, url=url, headers={**session.headers, **(headers or {})}, data=data,
                     cookies=session.cookies, hooks=session.hooks)
    return prepared


def _environment(session: Any, url: str, verify: Any) -> tuple[dict[str, str], Any]:
    """What ``requests`` takes from the environment for ``url``: the proxies (``HTTPS_PROXY``,
    ``NO_PROXY``) and, for ``verify=True``, ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``. Read once
    per session and origin, not on every request as ``requests`` does (a scan of the whole
    environment, twice a request); the sessions made here have ``trust_env`` off."""
    import os

    from requests.utils import get_environ_proxies

    cache: dict[tuple[str, str], tuple[dict[str, str], Optional[str]]] = session.__dict__.setdefault(
        "_sesam_environment", {})
    origin = urlsplit(url)[:2]
    if origin not in cache:
        ca = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        cache[origin] = (get_environ_proxies(url), ca)
    proxies, ca = cache[origin]
    return dict(proxies), (ca or True) if verify is True else verify


def bounded_session() -> Any:
    """A ``requests`` session for :func:`bounded_request` outside ``acme`` (the ARI poll)."""
    import requests

    session = requests.Session()
    session.trust_env = False  # bounded_request reads the environment once per origin
    adapter = _watched_adapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _read_body(response: Any, deadline: Deadline, doing: str, host: str) -> None:
    """Read the body in chunks under its cap, checking the deadline after each; keep it on the response."""
    from requests.exceptions import ConnectionError
    from urllib3.exceptions import HTTPError

    chain = "pem-certificate-chain" in (response.headers.get("Content-Type") or "")
    cap = MAX_CHAIN if chain else MAX_JSON
    raw = response.raw
    read = getattr(raw, "read1", None) or raw.read  # read1: what has arrived, without waiting for a full chunk
    parts: list[bytes] = []
    size = 0
    try:
        while True:
            deadline.check(doing)
            try:
                piece = read(READ_CHUNK, decode_content=True)
            except (HTTPError, OSError) as exc:  # what requests would have wrapped, had it read the body
                raise ConnectionError(exc) from exc
            if not piece:
                break
            size += len(piece)
            if size > cap:
                raise IssuanceError(
                    f"the ACME server {host} sent more than {cap // 1024} KiB for {doing} "
                    f"(an ACME {'chain' if chain else 'answer'} is a few KiB); stopped reading it"
                )
            parts.append(piece)
    finally:
        if size > cap or deadline.expired:
            response.close()
    response._content = b"".join(parts)
    response._content_consumed = True


def _cut(slot: _Slot) -> None:
    """Watchdog: shut the socket of a request that outlived its deadline, so a blocked read returns."""
    sock = getattr(slot.conn, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


@functools.cache
def _watched_adapter_classes() -> tuple[Any, Any]:
    """urllib3 pools that tell the watchdog which connection a request uses (lazy import)."""
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class Http(HTTPConnectionPool):
        def _get_conn(self, timeout: Optional[float] = None) -> Any:
            return _watch(super()._get_conn(timeout))

    class Https(HTTPSConnectionPool):
        def _get_conn(self, timeout: Optional[float] = None) -> Any:
            return _watch(super()._get_conn(timeout))

    return Http, Https


def _watch(conn: Any) -> Any:
    slot = getattr(_current, "slot", None)
    if slot is not None:
        slot.conn = conn
        slot.fresh = getattr(conn, "sock", None) is None
    return conn


def _watched_adapter(**kwargs: Any) -> Any:
    from requests.adapters import HTTPAdapter

    http, https = _watched_adapter_classes()

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": http, "https": https}

        def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
            # Behind an HTTP proxy (HTTPS_PROXY) the watched connection is the proxy's tunnel;
            # a SOCKS proxy has pools of its own, left as they are.
            manager = super().proxy_manager_for(proxy, **kwargs)
            if not proxy.lower().startswith("socks"):
                manager.pool_classes_by_scheme = {"http": http, "https": https}
            return manager

    return Adapter(**kwargs)


def _alg_for(jwk: Any, jose: Any) -> Any:
    if isinstance(jwk, jose.JWKEC):  # jwk.key is josepy's wrapper; it passes .curve through
        return {256: jose.ES256, 384: jose.ES384, 521: jose.ES512}[jwk.key.curve.key_size]
    return jose.RS256


def _user_agent() -> str:
    from .._version import __version__

    return f"sesam-tls/{__version__} (+acme-python)"


def close_quietly(net: Any) -> None:
    with contextlib.suppress(Exception):
        net.session.close()


@contextlib.contextmanager
def wire_errors(conn: Connection, step: Union[str, Callable[[], str]]) -> Iterator[None]:
    """Translate what the wire raises into one IssuanceError line that says what to do.

    ``step`` names what was being done (or returns it, for a flow of many steps).
    """
    try:
        yield
    except SesamTLSError:
        raise
    except Exception as exc:
        error = translate(conn, step() if callable(step) else step, exc)
        if error is None:
            raise
        raise error from exc


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """exc and every exception it wraps (urllib3 keeps them in .reason and args), breadth first."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < 32:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        for inner in (getattr(e, "reason", None), e.__cause__, e.__context__, *getattr(e, "args", ())):
            if isinstance(inner, BaseException):
                todo.append(inner)


def network_reason(exc: BaseException, host: Optional[str]) -> str:
    """Why a connection failed, in a few words and with the host name whole
    (requests' own message nests three exceptions and object reprs)."""
    import errno
    import socket

    causes = list(_causes(exc))
    for e in causes:
        if isinstance(e, socket.gaierror) or type(e).__name__ == "NameResolutionError":
            return f"the name {host} does not resolve: no DNS, or no such name"
    for e in causes:
        if isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) == errno.ECONNREFUSED:
            return f"{host} refused the connection"
    for e in causes:
        if isinstance(e, (TimeoutError, socket.timeout)) or "Timeout" in type(e).__name__:
            return f"no answer from {host} in time"
    for e in causes:
        if isinstance(e, OSError) and e.strerror:
            return f"{e.strerror} (connecting to {host})"
    return one_line(causes[-1], 160)


def translate(conn: Connection, what: str, exc: BaseException) -> Optional[IssuanceError]:
    """The IssuanceError for an exception from ``requests``/``acme``/``josepy``, or None."""
    import josepy as jose
    import requests
    from acme import errors as acme_errors
    from acme import messages

    host = urlsplit(conn.url).netloc or conn.url
    if isinstance(exc, requests.exceptions.SSLError):
        return IssuanceError(
            f"{what}: the TLS certificate of the ACME server {host} is not trusted ({one_line(exc, 240)}); "
            "for a private CA give its certificate with `ca_bundle` PEM"
        )
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return IssuanceError(
            f"{what}: cannot reach the ACME server {conn.url} ({network_reason(exc, urlsplit(conn.url).hostname)}); "
            f"is outbound HTTPS (port {urlsplit(conn.url).port or 443}) from this node to the CA blocked by a "
            "firewall or proxy?"
        )
    if isinstance(exc, messages.Error):
        if exc.code == "rateLimited":
            return IssuanceError(f"{what}: {rate_limited(problem_text(exc), conn.last_retry_after)}")
        return IssuanceError(f"{what}: the CA refused: {problem_text(exc)}")
    if isinstance(exc, acme_errors.ClientError):
        status = getattr(exc.args[0] if exc.args else None, "status_code", None)
        if status == 429:
            return IssuanceError(f"{what}: {rate_limited('HTTP 429', conn.last_retry_after)}")
        if status is not None:
            return IssuanceError(f"{what}: the ACME server {host} answered HTTP {status}, not ACME")
        return IssuanceError(f"{what}: unexpected answer from the ACME server {host}: {one_line(exc, 240)}")
    if isinstance(exc, (acme_errors.Error, jose.DeserializationError, ValueError, KeyError)):
        return IssuanceError(
            f"{what}: unexpected answer from {conn.url} ({type(exc).__name__}: {one_line(exc, 240)}); "
            "is that an ACME directory URL?"
        )
    return None
