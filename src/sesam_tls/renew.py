"""``renew``: keep the managed certificate valid with nobody watching.

One run: read what is managed, ask the CA for its renewal window (ARI) when
it is time to ask, decide (pure, :mod:`sesam_tls.renewal`), and either say
"not due" in one line or renew through the same provider and the same
deploy pipeline as ``issue``, with rollback. Every attempt is recorded; a
failure runs the failure hook and starts the backoff. What was issued is
renewed with the same names, key type, profile and HTTP-01 strategy: the
record says what the certificate *is*, and the provider registry rebuilds
its provider. How it is deployed (verify address, reload mode, metrics file,
container, proxy) is replayed from the record's settings by the CLI
(:mod:`sesam_tls.replay`), so the timer's run does what the watched run did.
A DNS-01 certificate is renewed over DNS-01 with the recorded server, key
name and secret *file* (a secret given through the environment was for that run).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from .options import DeployOptions
from .errors import AttentionNeeded, RefusedCertificate, SesamTLSError, UsageError
from .failpoints import failpoint
from .node import Node
from .renewal import Decision, choose_in_window, decide, parse_time
from .state import AriWindow, Count, Hooks, NodeRecord, Timestamp, decode, load_record, node_lock, save_record

__all__ = ["RenewResult", "RenewStatus", "renew", "provider_from_metadata", "provider_from_record", "with_live_key"]

log = logging.getLogger("sesam_tls")

ProviderFactory = Callable[[NodeRecord, Node, bool], Any]


class RenewStatus(str, enum.Enum):
    """What a renewal run did. A ``str``: it compares equal to its value (``"renewed"``) and is
    printed as that value in JSON, as the plain strings of earlier versions were."""

    NOT_DUE = "not-due"
    RENEWED = "renewed"
    DRY_RUN = "dry-run"
    ATTENTION = "attention"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class RenewResult:
    """``status``: a :class:`RenewStatus`. ``exit_code`` for the CLI."""

    status: RenewStatus
    message: str
    exit_code: int
    decision: Optional[Decision] = None
    record: Optional[NodeRecord] = None

    @property
    def metadata(self) -> Optional[dict[str, Any]]:
        """The record as JSON values (what ``certificate.json`` holds)."""
        return None if self.record is None else self.record.to_json()

    def to_json(self) -> dict[str, Any]:
        """The result as the CLI prints it under ``--json``."""
        return {"result": self.status, "message": self.message, "exit_code": self.exit_code}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def provider_from_record(record: NodeRecord, node: Node, dry_run: bool = False, *, nginx: Any = None) -> Any:
    """The provider that made the managed certificate, set up the same way again (the registry builds it).

    ``nginx``: the run's container (its deploy plan's), for an HTTP-01 strategy that stops nginx;
    a handle for the node's container when not given (making it opens no connection).
    """
    from .nginx import NginxContainer
    from .providers.registry import build_provider

    if nginx is None:
        nginx = NginxContainer(node.container, node.docker_host)
    return build_provider(record, node, dry_run=dry_run, nginx=nginx)


def _provider(factory: ProviderFactory, record: NodeRecord, node: Node, dry_run: bool, plan: Any) -> Any:
    """The run's provider; the default factory gets the plan's container (one Docker client a run),
    a caller's own factory is called as it always was."""
    if factory is provider_from_record:
        return provider_from_record(record, node, dry_run, nginx=plan.container)
    return factory(record, node, dry_run)


provider_from_metadata = provider_from_record  # the name of earlier versions


def _request(record: NodeRecord) -> Any:
    from .providers.base import CertRequest

    req = record.request
    return CertRequest.build(req.names, req.ips, key_type=req.key_type or "ecdsa-p256", days=req.days)


def _key_for_run(request: Any, record: NodeRecord, node: Node, *, key_policy: Optional[str],
                 new_key: bool) -> Any:
    """The request with this run's key: the live one when the policy is ``reuse``.

    The policy is the one given (``--reuse-key``/``--no-reuse-key``, recorded
    for later renewals), else the recorded one, else the provider's default:
    a record from before key policies keeps a self-signed key too.
    ``new_key`` (``--new-key``) makes a new key for this run only.
    """
    from .keys import check_key_policy, default_key_policy

    policy = check_key_policy(key_policy) or record.request.key_policy or default_key_policy(record.provider)
    request = dataclasses.replace(request, key_policy=policy)
    if new_key or policy != "reuse":
        return request
    return with_live_key(request, node)


def with_live_key(request: Any, node: Node) -> Any:
    """``request`` for the key nginx serves now: the pinned public key survives the renewal.

    A live key that cannot be read fails the run (exit 5) rather than quietly
    making a new one, which would break every client that pinned it.
    """
    from .bundle import Bundle
    from .errors import StorageError
    from .keys import KEY_TYPES, key_type_of
    from .store import SslFolder

    advice = "renew with --new-key to make a new one (clients that pinned the old key must be told)"
    pair = SslFolder(node.ssl_dir).read_pair()
    if pair is None:
        raise StorageError(f"cannot keep the key: {node.ssl_dir} holds no live pair; {advice}")
    try:
        bundle = Bundle.from_pem(pair[0], pair[1], source=str(node.ssl_dir))
    except SesamTLSError as exc:
        raise StorageError(f"cannot keep the live key: {exc}; {advice}") from None
    kind = key_type_of(bundle.key)
    if kind not in KEY_TYPES:
        raise StorageError(f"cannot keep the live key in {node.ssl_dir}: sesam-tls does not make {kind} keys; {advice}")
    if kind != request.key_type:
        log.warning("keeping the live %s key, not the recorded key type %s", kind, request.key_type)
    log.info("keeping the live %s key (its public key, which clients may pin, stays the same)", kind)
    return dataclasses.replace(request, key=bundle.key, key_type=kind)


def _update_ari(record: NodeRecord, node: Node, now: dt.datetime, rng: random.Random) -> Optional[NodeRecord]:
    """Ask the CA for its renewal window when the last answer's Retry-After has passed; the changed record, or None."""
    ari = record.renewal.ari or AriWindow()
    next_poll = parse_time(ari.next_poll)
    if next_poll is not None and now < next_poll:
        return None
    directory = getattr(record.provider_settings, "directory", None)
    if not directory or not record.certificate.ari_cert_id:
        return None
    from cryptography import x509

    from .ari import DEFAULT_RETRY, fetch_window
    from .store import SslFolder

    pair = SslFolder(node.ssl_dir).read_pair()
    if pair is None:
        return None

    def with_ari(window: AriWindow) -> NodeRecord:
        return record.replace(renewal=dataclasses.replace(record.renewal, ari=window))

    try:
        cert = x509.load_pem_x509_certificate(pair[0])
        window = fetch_window(directory, cert, ca_bundle=getattr(record.provider_settings, "ca_bundle", None), now=now)
        if window is None:
            return with_ari(AriWindow(supported=False, next_poll=Timestamp((now + dt.timedelta(days=1)).isoformat())))
        same = parse_time(ari.start) == window.start and parse_time(ari.end) == window.end
        chosen = ari.chosen if same and ari.chosen else choose_in_window(window.start, window.end, rng).isoformat()
        answer = {
            "supported": True,
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
            "chosen": chosen,
            "explanation": window.explanation,
            "next_poll": (now + window.retry_after).isoformat(),
        }
        # What the record could not read back (a window in the year 99, an explanation that is
        # not a string) is refused here, not saved to fail every later run.
        return with_ari(decode(AriWindow, answer, "the CA's renewal window"))
    except Exception as exc:  # any network or format trouble: fall back to the lifetime rule
        log.warning("could not get the renewal window from the CA (%s); using the certificate's lifetime", exc)
        return with_ari(dataclasses.replace(ari, next_poll=Timestamp((now + DEFAULT_RETRY).isoformat())))


def renew(
    node: Optional[Node] = None,
    *,
    force: bool = False,
    dry_run: bool = False,
    days: Optional[int] = None,
    options: DeployOptions = DeployOptions(),
    now: Optional[dt.datetime] = None,
    rng: Optional[random.Random] = None,
    metrics_file: Optional[Path] = None,
    provider_factory: ProviderFactory = provider_from_record,
    lock_wait: float = 10.0,
    key_policy: Optional[str] = None,
    new_key: bool = False,
    notify_url_file: Optional[str] = None,
) -> RenewResult:
    """Renew the node's managed certificate when it is due; see the module docstring.

    ``key_policy`` (``reuse``/``new``) overrides the recorded one and is recorded;
    ``new_key`` makes a new key for this renewal only. ``notify_url_file``: the
    file holding the webhook URL, recorded for later runs (see :mod:`sesam_tls.notify`);
    every run but a dry run ends by telling (attention hooks, webhook events).
    """
    node = node or Node.from_settings()
    now = now or _now()
    rng = rng or random.Random()
    if load_record(node.metadata_path) is None:
        raise UsageError(
            f"no managed certificate in {node.state_dir}: run 'sesam-tls issue' or 'sesam-tls import' first"
        )
    from . import notify

    if notify_url_file is not None:  # checked before anything changes; recorded for every later run
        notify.remember_url_file(node, notify.check_url_file(notify_url_file), lock_wait=lock_wait)
    with node_lock(node.state_dir, wait=lock_wait):
        record = load_record(node.metadata_path)
        if record is None:  # moved aside while this run waited for the lock
            raise UsageError(f"no managed certificate in {node.state_dir}: run 'sesam-tls issue' or 'sesam-tls import' first")
        if dry_run:
            return _rehearse(node, record, options, now, provider_factory)
        if record.provider == "acme" and not force and days is None:
            updated = _update_ari(record, node, now, rng)
            if updated is not None:
                record = updated
                save_record(node.metadata_path, record)
        result = _renew_locked(node, record, force=force, days=days, options=options, now=now,
                               metrics_file=metrics_file, provider_factory=provider_factory,
                               key_policy=key_policy, new_key=new_key)
        reason = result.message if result.status is RenewStatus.FAILED else (result.decision.reason if result.decision else "")
        notify.after_renewal(node, record, result.status.value, result.decision, options=options, now=now, reason=reason)
        return result


def _renew_locked(
    node: Node,
    record: NodeRecord,
    *,
    force: bool,
    days: Optional[int],
    options: DeployOptions,
    now: dt.datetime,
    metrics_file: Optional[Path],
    provider_factory: ProviderFactory,
    key_policy: Optional[str],
    new_key: bool,
) -> RenewResult:
    """The body of :func:`renew`, under the node lock (a dry run took another way: :func:`_rehearse`)."""
    decision = decide(record, now, force=force, days=days)
    result = _result_without_renewal(decision, record)
    if result is not None:
        _metrics(metrics_file, record, now)
        return result

    log.info("renewing: %s", decision.reason)
    from .api import hook_env, obtain_and_deploy
    from .deploy import DeployPlan
    from .hooks import recordable_names, run_hook

    plan = DeployPlan(node, options)  # checked below, where a failure is recorded
    provider = _provider(provider_factory, record, node, False, plan)
    request = _request(record)
    hooks = Hooks(
        deploy=options.deploy_hook if options.deploy_hook is not None else record.hooks.deploy,
        failure=options.failure_hook if options.failure_hook is not None else record.hooks.failure,
        env=tuple(recordable_names(options.hook_env, options.secret_env))
        if options.hook_env is not None else record.hooks.env,
    )
    try:
        request = _key_for_run(request, record, node, key_policy=key_policy, new_key=new_key)
        plan.check()  # under the lock, so with the write probe
        outcome = obtain_and_deploy(request, provider, plan, now=now)
    except SesamTLSError as exc:
        log.debug("traceback of the failed attempt:", exc_info=True)  # shown with --debug only
        record = _record_failure(node, record.replace(hooks=hooks), now, exc, provider)
        failpoint("renew.after-failure-recorded")
        run_hook("failure", hooks.failure, hook_env(node, record, "failed", str(exc)),
                 allow=hooks.env, secret=options.secret_env)
        _metrics(metrics_file, record, now)
        return RenewResult(RenewStatus.FAILED, f"renewal failed: {exc}", exc.exit_code, decision, record)
    _metrics(metrics_file, outcome.record, now)
    cert = outcome.record.certificate
    return RenewResult(
        RenewStatus.RENEWED,
        f"renewed {', '.join(cert.identifiers)}: serial {cert.serial}, expires {cert.not_after}",
        0,
        decision,
        outcome.record,
    )


def _rehearse(
    node: Node, record: NodeRecord, options: DeployOptions, now: dt.datetime, provider_factory: ProviderFactory
) -> RenewResult:
    """``--dry-run``: the renewal as if it were due, due or not (:mod:`sesam_tls.rehearse`).

    Errors are raised as they are (the CLI prints one line, with the error's
    exit code), not recorded: a failed rehearsal is not a failed renewal and
    starts no backoff. An imported certificate is not renewed by sesam-tls,
    so there is nothing to rehearse: the answer is what ``renew`` says.
    """
    from .deploy import prepare
    from .rehearse import rehearse

    decision = decide(record, now)
    if record.provider == "import":
        said = _result_without_renewal(decision, record) or RenewResult(RenewStatus.NOT_DUE, decision.reason, 0, decision, record)
        message = f"dry run: an imported certificate is not renewed by sesam-tls, nothing to rehearse; {said.message}"
        return RenewResult(said.status, message, said.exit_code, decision, record)
    plan = prepare(node, options, probe=False)  # no probe: a rehearsal leaves the ssl folder as it was
    provider = _provider(provider_factory, record, node, True, plan)
    request = _request(record)
    log.info("dry run: rehearsing the renewal of %s as if it were due (%s)", ", ".join(request.identifiers),
             decision.reason)
    rehearsal = rehearse(node, request, provider, options, now=now, nginx=plan.container)
    return RenewResult(RenewStatus.DRY_RUN, f"dry run succeeded for {', '.join(request.identifiers)}: {rehearsal.message}", 0,
                       decision, record)


def _result_without_renewal(decision: Decision, record: NodeRecord) -> Optional[RenewResult]:
    if decision.due:  # due and attention: a certificate clients refuse, which a renewal fixes
        return None
    if decision.attention or decision.backing_off:
        return RenewResult(RenewStatus.ATTENTION, decision.reason, AttentionNeeded.exit_code, decision, record)
    return RenewResult(RenewStatus.NOT_DUE, f"not due: {decision.reason}", 0, decision, record)


def _record_failure(node: Node, record: NodeRecord, now: dt.datetime, exc: SesamTLSError,
                    provider: Any = None) -> NodeRecord:
    from .api import replaces_note

    old = record.renewal
    renewal = dataclasses.replace(
        old,
        failures=Count(old.failures + 1),
        # A refused certificate was issued all the same: count them, so the next order waits (renewal.REFUSED_BACKOFF).
        refusals=Count(old.refusals + 1 if isinstance(exc, RefusedCertificate) else 0),
        last_attempt=Timestamp(now.isoformat()),
        last_failure=Timestamp(now.isoformat()),
        last_result=f"failed: {exc}",
        replaces_dropped=replaces_note(provider, now) or old.replaces_dropped,
    )
    record = record.replace(renewal=renewal)
    save_record(node.metadata_path, record)
    return record


def _metrics(path: Optional[Path], record: Optional[NodeRecord], now: dt.datetime) -> None:
    if path is None:
        return
    from .metrics import write_metrics

    write_metrics(path, record, now=now, last_run=now)
