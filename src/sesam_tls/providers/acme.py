"""Let's Encrypt, or any ACME CA (RFC 8555), over HTTP-01 or DNS-01. Reads top to bottom in protocol order.

    directory -> account -> order -> authorizations -> responder up ->
    self-check -> answer challenges -> poll -> finalize -> poll -> certificate

Nothing sleeps a fixed time: polls start at 1 ms and double (on a CA next door the order is
ready a few milliseconds after the last challenge POST and valid within one of finalize; measured:
a first poll at 5 ms instead cost 10 ms per issuance; one far away answers the poll an RTT later anyway),
honour the CA's ``Retry-After``, keep to about one a second after the first second
against a CA that is not on this machine (:func:`poll_pace`), and stop at the
exchange's one deadline (``sesam_tls.deadline``), which also bounds every read on
the wire (``acme_net``: one session and a few shared connections for the whole run). The per-name
requests (authorization, challenge) go out concurrently to a CA that makes each answer wait, and
one after another to one that answers at once (``SERIAL_BELOW``); the order, not each name, is
polled; a responder of ours is self-checked once, not once a name: so many names cost little
more than one. The provider returns
the bundle and writes nothing but its own account in the state folder; the
deploy pipeline puts the certificate in place.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, TypeVar
from urllib.parse import urlsplit

from ..bundle import Bundle
from ..choices import CHALLENGES, REVOCATION_REASONS
from ..deadline import Deadline, poll
from ..errors import IssuanceError, RefusedCertificate, UsageError
from ..http01 import Http01Options, WouldStopNginx, open_responder, presented, self_check
from ..keys import generate_key
from ..names import normalize_domain, wildcard_allowed
from .acme_account import AccountStore, Eab, ensure_account, reregister
from .acme_compat import new_order_message
from .acme_net import (
    CA_CONNECTIONS,
    LETSENCRYPT,
    LETSENCRYPT_STAGING,
    Connection,
    acme_deadline,
    retry_after_seconds,
    wire_errors,
)
from .acme_problems import challenge_failure, dns01_failure, problem_text, refused_for_replaces
from .base import CertRequest

if TYPE_CHECKING:  # dns01 (subprocess, DNS wire format) is imported by the DNS-01 path only
    from ..dns01 import Dns01Options

__all__ = ["CA_CONNECTIONS", "LETSENCRYPT", "LETSENCRYPT_STAGING", "REVOCATION_REASONS", "Acme", "Eab", "Rehearsed",
           "check_names", "poll_pace", "revoke"]

log = logging.getLogger("sesam_tls")

T = TypeVar("T")
R = TypeVar("R")

FIRST_POLL = 0.001
POLL_GROWTH = 2.0
MAX_POLL = 2.0
#: Against a CA elsewhere, after this many seconds of polling, at least ``SLOW_EVERY`` s between polls.
SLOW_AFTER = 1.0
SLOW_EVERY = 1.0
MAX_THREADS = 16
#: A CA that keeps a request waiting less than this many seconds (``Connection.ca_wait``: its
#: time less our CPU, the shortest of the run's requests so far) gets the per-name requests one
#: after another: each costs us ~1 ms of CPU under the GIL, more than its wait, and threads then
#: only contend (measured, 10 names on a loopback Pebble: 60 ms of CPU in one thread, 80 ms in
#: 16). Slower, they go out concurrently: the waits overlap.
SERIAL_BELOW = 0.003



@dataclass(frozen=True)
class Rehearsed:
    """What :meth:`Acme.rehearse` did at a CA without a staging directory: a real order whose
    authorizations were validated (or, when the real run would stop nginx, left unanswered and
    deactivated), never finalized, so no certificate was issued or logged. ``key`` is the new
    key the real run would have asked a certificate for."""

    key: Any
    note: str


class Acme:
    """Certificates from an ACME CA, validated over HTTP-01 (default) or DNS-01 (``challenge="dns-01"``
    with ``dns01``: how the TXT records are published and checked; see :mod:`sesam_tls.dns01`).
    One certificate uses one challenge type for all its names.

    ``nginx`` is the node's :class:`~sesam_tls.nginx.NginxContainer`, needed
    by the ``stop-nginx`` and ``auto`` strategies. ``replaces`` is the ARI
    certificate ID (RFC 9773, ``sesam_tls.ari.cert_id``) of the certificate
    being renewed; it is sent in the order when the CA offers ARI.
    """

    name = "acme"

    def __init__(
        self,
        *,
        state_dir: Path,
        directory: str = LETSENCRYPT,
        ca_bundle: Optional[str] = None,
        email: Optional[str] = None,
        agree_tos: bool = False,
        eab: Optional[Eab] = None,
        profile: Optional[str] = None,
        http01: Http01Options = Http01Options(),  # noqa: B008 - frozen, so sharing it is safe
        nginx: Any = None,
        deadline: Optional[float] = None,
        replaces: Optional[str] = None,
        challenge: str = "http-01",
        dns01: Optional[Dns01Options] = None,
    ) -> None:
        if challenge not in CHALLENGES:
            raise UsageError(f"`challenge` {challenge}: choose http-01 or dns-01")
        if challenge == "dns-01" and dns01 is None:
            raise UsageError("`challenge` dns-01 needs `dns_server` with a TSIG key, or a DNS hook")
        self.challenge = challenge
        self.dns01 = dns01
        self.state_dir = Path(state_dir)
        self.directory = directory
        self.ca_bundle = ca_bundle
        self.email = email
        self.agree_tos = agree_tos
        self.eab = eab
        self.profile = profile
        self.http01 = http01
        self.nginx = nginx
        #: Seconds for the whole exchange (None: ``ACME_DEADLINE`` or ``$SESAM_TLS_ACME_DEADLINE``).
        self.deadline = deadline
        self.replaces = replaces
        #: The CA's words when it refused ``replaces`` and the order went out without it (recorded).
        self.replaces_dropped: Optional[str] = None
        self.account_uri: Optional[str] = None
        self._names_asked: list[str] = []
        self._key_type: Optional[str] = None
        #: What the last exchange cost on the wire: requests, nonce_heads, connections (TLS handshakes).
        self.wire: dict[str, int] = {}

    @property
    def origin(self) -> str:
        """Where the bundle comes from, for the gate's messages: the CA, by its directory URL."""
        return f"the ACME CA {self.directory}"

    def settings(self) -> dict[str, Any]:
        """What the metadata records about how the certificate was obtained. Never a secret."""
        return {
            "directory": self.directory,
            "account": self.account_uri,
            "profile": self.profile,
            "http01": self.http01.strategy,
            "http_port": self.http01.port,
            "webroot": str(self.http01.webroot) if self.http01.webroot else None,
            "http_address": list(self.http01.listen),
            "key_type": self._key_type,
            "ca_bundle": self.ca_bundle,
            "external_account_binding": self.eab is not None,
            "challenge": self.challenge,
            "dns01": self.dns01.settings() if self.challenge == "dns-01" and self.dns01 is not None else None,
        }

    # the protocol, in order -------------------------------------------------------------
    def issue(self, request: CertRequest) -> Bundle:
        result = self._run(request, rehearsal=False, finalize=True)
        assert isinstance(result, Bundle)
        return result

    def rehearse(self, request: CertRequest, *, finalize: bool = False) -> Bundle | Rehearsed:
        """The issuance as a rehearsal (``--dry-run``): the live nginx is never stopped (the
        rehearsal ends where the real run would stop it), and without ``finalize`` the order
        ends once its authorizations are valid, before a certificate exists. ``finalize`` is
        for a staging directory, whose certificates are free and untrusted."""
        return self._run(request, rehearsal=True, finalize=finalize)

    def _run(self, request: CertRequest, *, rehearsal: bool, finalize: bool) -> Bundle | Rehearsed:
        for warning in check_names(request, directory=self.directory, profile=self.profile, challenge=self.challenge):
            log.warning("%s", warning)
        what = f"the ACME exchange with {urlsplit(self.directory).netloc or self.directory}"
        deadline = acme_deadline(what) if self.deadline is None else Deadline(self.deadline, what, error=IssuanceError)
        conn = Connection(self.directory, ca_bundle=self.ca_bundle, deadline=deadline)
        try:
            return self._exchange(conn, request, deadline, rehearsal=rehearsal, finalize=finalize)
        finally:
            self.wire = conn.stats
            log.debug("acme: %(requests)d requests, %(nonce_heads)d nonce HEADs, %(connections)d connections",
                      self.wire)
            conn.close()

    def _exchange(self, conn: Connection, request: CertRequest, deadline: Deadline, *, rehearsal: bool,
                  finalize: bool) -> Bundle | Rehearsed:
        step = ["fetching the ACME directory"]
        with wire_errors(conn, lambda: step[0]), _Workers() as workers:
            directory = conn.directory()
            self._check_profile(directory)
            step[0] = "setting up the ACME account"
            store = AccountStore(self.state_dir, self.directory)
            self.account_uri = ensure_account(conn, store, email=self.email, agree_tos=self.agree_tos, eab=self.eab)

            step[0] = "ordering the certificate"
            conn.check_clock()  # a wrong clock makes a certificate that looks not yet valid, or renewed off time
            key = request.key if request.key is not None else generate_key(request.key_type)
            self._names_asked = list(request.names)
            self._key_type = request.key_type
            order, order_uri = self._new_order(conn, store, request)
            waited = conn.ca_wait()
            workers.serial_at_ca = waited is not None and waited < SERIAL_BELOW
            log.debug("acme: a request waits %.1f ms on the CA: per-name requests %s", (waited or 0) * 1000,
                      "one after another" if workers.serial_at_ca else "concurrently")
            authzs = workers.at_ca(lambda url: conn.client().poll(_authz_stub(url))[0], list(order.authorizations))
            for authz in authzs:
                if _status(authz) not in ("pending", "valid"):
                    raise IssuanceError(challenge_failure(_ident(authz), _authz_problem(authz), port=self.http01.port))
            pending = [a for a in authzs if _status(a) == "pending"]
            step[0] = "validating the names"
            if pending:
                try:
                    self._validate(conn, workers, order_uri, pending, deadline, rehearsal=rehearsal)
                except WouldStopNginx as stop:
                    workers.at_ca(lambda a: _deactivate_quietly(conn, a), pending)
                    return Rehearsed(key, f"ordered at {self.directory}, then stopped before answering the "
                                          f"challenge: {stop}; the order was not finalized")
            else:
                log.info("the CA already holds valid authorizations for every name")
            if not finalize:
                log.info("rehearsal: every authorization is valid; not finalizing the order")
                return Rehearsed(key, f"ordered at {self.directory}, every name validated over HTTP-01; "
                                      "the order was not finalized, so no certificate was issued")

            step[0] = "finalizing the order"
            order = self._finalize(conn, order, order_uri, _csr(key, request), deadline)
            step[0] = "downloading the certificate"
            return self._download(conn, order, key, request)

    def _check_profile(self, directory: Any) -> None:
        if not self.profile:
            return
        offered = dict(getattr(directory.meta, "profiles", None) or {})
        if not offered:
            raise UsageError(f"`profile` {self.profile}: {self.directory} offers no ACME profiles")
        if self.profile not in offered:
            raise UsageError(
                f"`profile` {self.profile}: {self.directory} offers only {', '.join(sorted(offered))}"
            )

    def _new_order(self, conn: Connection, store: AccountStore, request: CertRequest) -> tuple[Any, str]:
        from acme import messages

        directory = conn.directory()
        identifiers = [messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=n) for n in request.names]
        identifiers += [messages.Identifier(typ=messages.IDENTIFIER_IP, value=str(ip)) for ip in request.ips]
        fields: dict[str, Any] = {"identifiers": identifiers}
        if self.profile:
            fields["profile"] = self.profile
        if self.replaces:
            if _offers(directory, "renewalInfo"):
                fields["replaces"] = self.replaces
            else:
                log.debug("acme: the CA has no renewalInfo; not sending replaces")
        log.info("ordering a certificate for %s%s", ", ".join(request.identifiers),
                 f" (profile {self.profile})" if self.profile else "")
        reregistered = False
        while True:  # each way round happens at most once: a lost account, a refused ``replaces``
            try:
                response = conn.post(directory["newOrder"], new_order_message()(**fields))
                break
            except messages.Error as problem:
                lost = problem.code == "accountDoesNotExist" or (
                    problem.code == "unauthorized" and "deactivated" in (problem.detail or "")
                )
                if lost and not reregistered:
                    reregistered = True
                    self.account_uri = reregister(
                        conn, store, problem_text(problem), email=self.email, agree_tos=self.agree_tos, eab=self.eab
                    )
                elif "replaces" in fields and refused_for_replaces(problem):
                    # An earlier attempt (or a re-registered account) already used this
                    # ``replaces``: order without it rather than fail the renewal for good.
                    self.replaces_dropped = problem_text(problem)
                    log.warning("the CA refused the order because of replaces (%s); ordering once more without it",
                                self.replaces_dropped)
                    del fields["replaces"]
                else:
                    raise
        order = messages.Order.from_json(response.json())
        return order, response.headers["Location"]

    def _validate(self, conn: Connection, workers: _Workers, order_uri: str, authzs: list[Any],
                  deadline: Deadline, *, rehearsal: bool = False) -> None:
        if self.challenge == "dns-01":  # publishing TXT records stops nothing: a rehearsal goes all the way
            return self._validate_dns01(conn, workers, order_uri, authzs, deadline)
        port = self.http01.port
        chosen = [(authz, _challenge(authz, "http-01")) for authz in authzs]
        thumbprint = _thumbprint(conn.key)
        tokens = [(token, f"{token}.{thumbprint}") for token in (ch.chall.encode("token") for _, ch in chosen)]
        with open_responder(self.http01, self.nginx, rehearsal=rehearsal) as responder, presented(responder, tokens):
            checks = list(zip(chosen, tokens, strict=True))
            try:
                workers.each(
                    lambda item: self_check(_ident(item[0][0]), port, item[1][0], item[1][1],
                                            timeout=self.http01.self_check_timeout),
                    checks if responder.by_host else checks[:1],
                )
            except IssuanceError:
                workers.at_ca(lambda a: _deactivate_quietly(conn, a), authzs)
                raise
            log.info("self-check passed: %s serves the token for %s", responder.description,
                     _names(a for a, _ in chosen))

            self._answer_and_await(conn, workers, order_uri, chosen, authzs, deadline,
                                   lambda a: challenge_failure(_ident(a), _authz_problem(a), port=port))

    def _validate_dns01(self, conn: Connection, workers: _Workers, order_uri: str, authzs: list[Any],
                        deadline: Deadline) -> None:
        """Publish every TXT value, check the authoritative servers serve them, then ask the CA.
        The values are removed on the way out whatever happens (open_dns01)."""
        from ..dns01 import open_dns01, wait_visible

        assert self.dns01 is not None
        jwk = conn.key
        chosen = [(authz, _challenge(authz, "dns-01")) for authz in authzs]
        # in the order the names were asked for (CERTBOT_ALL_DOMAINS), not the CA's order
        asked = [n.removeprefix("*.") for n in self._names_asked]
        idents = [_ident(a) for a in authzs]
        domains = list(dict.fromkeys([n for n in asked if n in idents] + idents))
        where: dict[str, str] = {}
        with open_dns01(self.dns01, domains, total=len(chosen)) as session:
            log.info("publishing DNS-01 TXT records for %s with %s", _names(authzs), session.description)
            try:
                values = [(_ident(a), ch.chall.validation(jwk)) for a, ch in chosen]
                if self.dns01.method == "rfc2136":  # updates in parallel; hooks one after the other, as certbot
                    records = workers.each(lambda item: session.present(*item), values)
                else:
                    records = [session.present(*item) for item in values]
                where.update((r.domain, r.fqdn) for r in records)
                wait_visible(session, records)
            except IssuanceError:
                workers.at_ca(lambda a: _deactivate_quietly(conn, a), authzs)
                raise
            self._answer_and_await(
                conn, workers, order_uri, chosen, authzs, deadline,
                lambda a: dns01_failure(_ident(a), where.get(_ident(a), f"_acme-challenge.{_ident(a)}"),
                                        _authz_problem(a)))

    def _answer_and_await(self, conn: Connection, workers: _Workers, order_uri: str, chosen: list[Any],
                          authzs: list[Any], deadline: Deadline, explain: Callable[[Any], str]) -> None:
        # The answer is an empty JSON object (RFC 8555 7.5.1): the key authorization is not sent,
        # so there is nothing to compute per name; the CA's echo of the challenge is not used.
        workers.at_ca(lambda item: conn.post(item[1].uri, _ANSWER), chosen)
        log.info("asked the CA to validate %s", _names(a for a, _ in chosen))
        started = time.monotonic()
        # One poll of the order instead of one per name: it leaves "pending" when every
        # authorization is valid ("ready") or one has failed ("invalid").
        order = _await_order(conn, order_uri, ("pending",), deadline, f"the validation of {_names(authzs)}")
        if _status(order) != "ready":
            done = workers.at_ca(lambda a: conn.client().poll(a)[0], authzs)
            failed = [a for a in done if _status(a) != "valid"]
            if not failed:
                raise IssuanceError(f"the CA set the order to {_status(order)!r} after validating every name")
            first = explain(failed[0])
            more = f"; {len(failed) - 1} more failed: {_names(failed[1:])}" if len(failed) > 1 else ""
            raise IssuanceError(first + more)
        log.info("the CA validated %s in %.2f s", _names(authzs), time.monotonic() - started)

    def _finalize(self, conn: Connection, order: Any, order_uri: str, csr: Any, deadline: Deadline) -> Any:
        from acme import messages

        log.info("finalizing the order")
        request = messages.CertificateRequest(csr=csr)
        try:
            order = messages.Order.from_json(conn.post(order.finalize, request).json())
        except messages.Error as problem:
            if problem.code != "orderNotReady":
                raise
            # Authorizations reused from earlier orders may still be settling: wait, then again.
            _await_order(conn, order_uri, ("pending",), deadline, "the order to become ready")
            order = messages.Order.from_json(conn.post(order.finalize, request).json())
        if _status(order) in ("processing", "ready"):
            order = _await_order(conn, order_uri, ("processing", "ready"), deadline, "the certificate")
        if _status(order) == "valid" and order.certificate:
            return order
        said = problem_text(order.error) if order.error is not None else f"the order is {_status(order)!r}"
        raise IssuanceError(f"the CA refused to issue the certificate: {said}")

    def _download(self, conn: Connection, order: Any, key: Any, request: CertRequest) -> Bundle:
        """The CA's chain for ``key``. Everything else about it is checked by the gate
        (:func:`sesam_tls.api.gate_bundle`) before anything is written."""
        from cryptography import x509

        from ..bundle import key_matches_cert

        pem = conn.post(order.certificate).content
        try:
            certs = x509.load_pem_x509_certificates(pem)
        except (ValueError, x509.InvalidVersion):
            raise RefusedCertificate(
                f"{self.origin}: the certificate at {order.certificate} is not a PEM chain; not deployed"
            ) from None
        if not key_matches_cert(key, certs[0]):
            raise RefusedCertificate(
                f"{self.origin}: the certificate {certs[0].subject.rfc4514_string()!r} is for another key "
                "than the one this run asked for; not deployed, nothing was changed"
            )
        bundle = Bundle(key=key, leaf=certs[0], chain=tuple(certs[1:]))
        log.info("got certificate serial %s for %s, valid until %s (%d intermediate%s)", bundle.serial,
                 ", ".join(request.identifiers), bundle.not_after.isoformat(), len(bundle.chain),
                 "" if len(bundle.chain) == 1 else "s")
        return bundle


def check_names(request: CertRequest, *, directory: str, profile: Optional[str],
                challenge: str = "http-01") -> list[str]:
    """Before any network call (pure): HTTP-01 cannot prove a wildcard, DNS-01 cannot prove an
    IP address; Let's Encrypt issues for IP addresses only under its ``shortlived`` profile.
    Returns the warnings."""
    for name in request.names:
        normalize_domain(name, allow_wildcard=wildcard_allowed(challenge))
    if request.ips and challenge == "dns-01":
        raise UsageError(f"`ip` {request.ips[0]}: an IP address cannot be validated over DNS-01 (it has no zone); "
                         "use `challenge` http-01 for addresses")
    if request.ips and directory in (LETSENCRYPT, LETSENCRYPT_STAGING) and profile != "shortlived":
        return [
            (
                "Let's Encrypt issues certificates for IP addresses only under its 'shortlived' profile "
                "(6 days): add `profile` shortlived"
            )
        ]
    return []


# --- revocation -----------------------------------------------------------------------------


def revoke(
    cert: Any,
    *,
    state_dir: Path,
    directory: str,
    ca_bundle: Optional[str] = None,
    reason: str = "unspecified",
    cert_key: Any = None,
) -> None:
    """Revoke ``cert`` at ``directory``, signed by the node's account, or by ``cert_key``
    (the certificate's own key: proof of possession, as a CA wants for ``keyCompromise``)."""
    from acme import errors as acme_errors

    from .acme_account import ensure_account, jwk_for

    if reason not in REVOCATION_REASONS:
        raise UsageError(f"unknown revocation reason {reason!r}: choose one of {', '.join(REVOCATION_REASONS)}")
    conn = Connection(directory, ca_bundle=ca_bundle)
    with wire_errors(conn, "revoking the certificate"):
        if cert_key is not None:
            conn.use_key(jwk_for(cert_key))
        else:
            store = AccountStore(Path(state_dir), directory)
            if store.load_meta() is None:
                raise UsageError(f"no ACME account for {directory} in {state_dir}: cannot sign the revocation")
            ensure_account(conn, store)
        log.info("revoking certificate serial %x (reason %s)", cert.serial_number, reason)
        try:
            conn.client().revoke(cert, REVOCATION_REASONS[reason])
        except acme_errors.ClientError as exc:
            raise IssuanceError(f"the CA did not confirm the revocation: {exc}") from exc


# --- helpers -----------------------------------------------------------------------------------


def _status(resource: Any) -> str:
    """``Status`` constants compare by identity and print as ``Status(valid)``; use the name."""
    body = getattr(resource, "body", resource)
    return str(getattr(body.status, "name", body.status))


def _authz_stub(url: str) -> Any:
    from acme import messages

    return messages.AuthorizationResource(uri=url, body=messages.Authorization())


def _offers(directory: Any, field: str) -> bool:
    try:
        directory[field]
    except KeyError:
        return False
    return True


def _ident(authz: Any) -> str:
    return str(authz.body.identifier.value)


def _names(authzs: Any) -> str:
    names = [_ident(a) for a in authzs]
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _challenge(authz: Any, kind: str) -> Any:
    from acme import challenges

    wanted = {"http-01": challenges.HTTP01, "dns-01": challenges.DNS01}[kind]
    for challb in authz.body.challenges:
        if isinstance(challb.chall, wanted):
            return challb
    offered = ", ".join(str(c.typ) for c in authz.body.challenges) or "none"
    raise IssuanceError(f"the CA offers no {kind.upper()} challenge for {_ident(authz)} (it offers: {offered})")


class _Answer:
    """The body of a challenge answer: ``{}`` (what acme's ``HTTP01Response`` and
    ``DNS01Response`` serialise to), as ``ClientNetwork.post`` wants it: with ``json_dumps``."""

    @staticmethod
    def json_dumps(**_: Any) -> str:
        return "{}"


_ANSWER = _Answer()


def _thumbprint(jwk: Any) -> str:
    """The account key's RFC 7638 thumbprint, base64url: the second half of every key
    authorization (RFC 8555 8.1), computed once a run rather than once a name."""
    import josepy as jose
    from cryptography.hazmat.primitives import hashes

    return jose.b64encode(jwk.thumbprint(hash_function=hashes.SHA256)).decode()


def _authz_problem(authz: Any) -> Any:
    for challb in authz.body.challenges:
        if challb.error is not None:
            return challb.error
    return None


def _deactivate_quietly(conn: Connection, authz: Any) -> None:
    """Do not leave pending authorizations behind after a failed self-check (CAs limit them)."""
    try:
        conn.client().deactivate_authorization(authz)
    except Exception as exc:  # noqa: BLE001 - best effort: the real error is being raised already
        log.debug("acme: could not deactivate the authorization for %s: %s", _ident(authz), exc)


def poll_pace(directory: str) -> dict[str, Any]:
    """How to poll a CA at ``directory`` (pure): 1 ms first, doubling up to ``MAX_POLL``; for a CA
    that is not on this machine (by its URL's host: ``localhost``, 127/8, ``::1``), no more than
    about one poll a second after the first second, as Let's Encrypt asks of clients."""
    host = (urlsplit(directory).hostname or "").rstrip(".").lower()
    try:
        local = ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = host == "localhost" or host.endswith(".localhost")
    return {"first": FIRST_POLL, "growth": POLL_GROWTH, "cap": MAX_POLL,
            "slow_after": None if local else SLOW_AFTER, "slow_every": SLOW_EVERY}


def _await_order(conn: Connection, order_uri: str, waiting: tuple[str, ...], deadline: Deadline, what: str) -> Any:
    """Poll the order until its status leaves ``waiting`` at :func:`poll_pace`, Retry-After honoured."""
    from acme import messages

    def attempt() -> tuple[bool, Any, Optional[float]]:
        response = conn.post(order_uri)
        order = messages.Order.from_json(response.json())
        return _status(order) not in waiting, order, retry_after_seconds(response.headers.get("Retry-After"))

    return poll(attempt, deadline, f"waiting for {what}", **poll_pace(conn.url))


def _csr(key: Any, request: CertRequest) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in request.names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in request.ips]
    first = (request.names or ("",))[0]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first)] if 0 < len(first) <= 64 else [])
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )


class _Workers:
    """Threads for the per-name work (CA requests, self-checks, DNS updates), kept for the whole
    issuance. They share the connection's one client: at most ``CA_CONNECTIONS`` of them talk to
    the CA at a time, over connections kept open, so a thread costs no handshake of its own."""

    def __init__(self, size: int = MAX_THREADS) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=size, thread_name_prefix="acme")
        #: Requests to the CA go one after another (see ``SERIAL_BELOW``).
        self.serial_at_ca = False

    def at_ca(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``fn`` over ``items``, each a request to the CA: in this thread when ``serial_at_ca``
        (a CA that answers faster than a request costs us), else as :meth:`each`."""
        return [fn(item) for item in items] if self.serial_at_ca else self.each(fn, items)

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True)

    def each(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``fn`` over ``items`` concurrently; the first error is raised once all have ended.

        One item runs in the calling thread: no hand-over, no extra connection.
        """
        if len(items) <= 1:
            return [fn(item) for item in items]
        futures = [self._pool.submit(fn, item) for item in items]
        concurrent.futures.wait(futures)
        for future in futures:
            error = future.exception()
            if error is not None:
                raise error
        return [future.result() for future in futures]
