"""The wire to one ACME server: directory, signed requests, nonces, errors in the operator's terms.

JWS, nonces and message types stay in the ``acme`` package; this module
adds what it lacks for a fast, concurrent client: one ``ClientV2`` per
thread (its nonce pool is not thread-safe), ``badNonce`` retried more
than once (a CA may reject any nonce; Pebble rejects half of them with
``PEBBLE_WFE_NONCEREJECT=50``), and the ``Retry-After`` of every answer.

``acme``, ``josepy`` and ``requests`` are imported inside the functions,
so that ``import sesam_tls`` and ``sesam-tls --help`` do not pay for them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import functools
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, Optional, Union
from urllib.parse import urlsplit

from ..errors import IssuanceError, SesamTLSError, one_line
from .acme_problems import problem_text, rate_limited

__all__ = ["LETSENCRYPT", "LETSENCRYPT_STAGING", "Connection", "retry_after_seconds", "wire_errors"]

log = logging.getLogger("sesam_tls")

LETSENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"

#: ``ClientNetwork.post`` already retries a ``badNonce`` once; we repeat that
#: up to this many times, each try costing one round trip.
NONCE_ROUNDS = 16

@functools.cache
def _network() -> Any:
    """``ClientNetwork`` with repeated ``badNonce`` retries (built on first use: lazy import)."""
    from acme import client, messages

    class Network(client.ClientNetwork):  # type: ignore[misc]
        def post(self, *args: Any, **kwargs: Any) -> Any:
            for _ in range(NONCE_ROUNDS - 1):
                try:
                    return super().post(*args, **dict(kwargs))
                except messages.Error as error:
                    if error.code != "badNonce":
                        raise
                    log.debug("acme: badNonce twice in a row; retrying")
            return super().post(*args, **kwargs)

        @classmethod
        def _check_response(cls, response: Any, content_type: Optional[str] = None) -> Any:
            # ``acme`` turns every 409 into ConflictError, which carries only a Location
            # ("this key has an account there"). A 409 without one is a plain problem,
            # e.g. RFC 9773's alreadyReplaced: keep its type and detail.
            if response.status_code == 409 and "Location" not in response.headers:
                try:
                    body = response.json()
                except ValueError:
                    body = None
                if isinstance(body, dict) and isinstance(body.get("type"), str):
                    raise messages.Error.from_json(body)
            return super()._check_response(response, content_type)

    return Network


class Connection:
    """One ACME directory, one account key, any number of threads.

    ``verify`` is ``True`` (the system's CA store, or ``REQUESTS_CA_BUNDLE``)
    or the path of a PEM bundle that verifies a private ACME server.
    """

    def __init__(self, url: str, *, ca_bundle: Optional[str] = None, timeout: float = 30.0) -> None:
        self.url = url
        self.verify: Any = ca_bundle or True
        self.timeout = timeout
        self.key: Any = None  # josepy JWK of the account
        self.alg: Any = None
        self.account_uri: Optional[str] = None
        self._directory: Any = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._generation = 0
        self.last_retry_after: Optional[float] = None

    # identity -------------------------------------------------------------------------
    def use_key(self, jwk: Any, account_uri: Optional[str] = None) -> None:
        """Sign with ``jwk`` from now on (as account ``account_uri``, or with the bare key)."""
        import josepy as jose

        self.key = jwk
        self.alg = _alg_for(jwk, jose)
        self.account_uri = account_uri
        self._generation += 1  # every thread builds a fresh client on its next call

    def set_account(self, account_uri: Optional[str]) -> None:
        self.account_uri = account_uri
        self._generation += 1

    # the protocol objects ---------------------------------------------------------------
    def directory(self) -> Any:
        with self._lock:
            if self._directory is None:
                from acme import messages

                net = _network()(verify_ssl=self.verify, user_agent=_user_agent(), timeout=self.timeout)
                log.info("fetching the ACME directory %s", self.url)
                with wire_errors(self, "fetching the ACME directory"):
                    self._directory = messages.Directory.from_json(net.get(self.url).json())
                    for field in ("newNonce", "newAccount", "newOrder"):
                        self._directory[field]
                close_quietly(net)
            return self._directory

    def client(self) -> Any:
        """This thread's ``ClientV2`` (its own session and nonce pool), signing with the current key."""
        local = self._local
        if getattr(local, "generation", None) != self._generation:
            from acme import client, messages

            old = getattr(local, "client", None)
            if old is not None:
                close_quietly(old.net)
            net = _network()(
                key=self.key, alg=self.alg, verify_ssl=self.verify, user_agent=_user_agent(), timeout=self.timeout
            )
            if self.account_uri:
                net.account = messages.RegistrationResource(uri=self.account_uri, body=messages.Registration())
            net.session.hooks["response"].append(self._remember)
            local.client = client.ClientV2(self.directory(), net)
            local.generation = self._generation
        return local.client

    def post(self, url: str, obj: Any = None) -> Any:
        """A signed POST (``obj``) or POST-as-GET (``None``); returns the ``requests`` response."""
        return self.client().net.post(url, obj, new_nonce_url=self.directory()["newNonce"])

    def _remember(self, response: Any, *args: Any, **kwargs: Any) -> None:
        """requests response hook: keep Retry-After, which ``acme`` drops when it raises."""
        value = retry_after_seconds(response.headers.get("Retry-After"))
        self._local.retry_after = value
        if response.status_code == 429:
            self.last_retry_after = value

    def thread_retry_after(self) -> Optional[float]:
        return getattr(self._local, "retry_after", None)


def retry_after_seconds(value: Optional[str], *, now: Optional[dt.datetime] = None) -> Optional[float]:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or None (pure)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    now = now or dt.datetime.now(dt.timezone.utc)
    return max(0.0, (when - now).total_seconds())


def _alg_for(jwk: Any, jose: Any) -> Any:
    if isinstance(jwk, jose.JWKEC):  # jwk.key is josepy's wrapper; it passes .curve through
        return {256: jose.ES256, 384: jose.ES384, 521: jose.ES512}[jwk.key.curve.key_size]
    return jose.RS256


def _user_agent() -> str:
    from .. import __version__

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
            "for a private CA give its certificate with --ca-bundle PEM"
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
