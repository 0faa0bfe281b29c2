"""``renew``: keep the managed certificate valid with nobody watching.

One run: read what is managed, ask the CA for its renewal window (ARI) when
it is time to ask, decide (pure, :mod:`sesam_tls.renewal`), and either say
"not due" in one line or renew through the same provider and the same
deploy pipeline as ``issue``, with rollback. Every attempt is recorded; a
failure runs the failure hook and starts the backoff. What was issued is
renewed with the same names, key type, profile and HTTP-01 strategy: the
metadata says what the certificate *is*, no command line is replayed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
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
from .state import load_metadata, node_lock, save_metadata

__all__ = ["RenewResult", "renew", "provider_from_metadata", "with_live_key"]

log = logging.getLogger("sesam_tls")

ProviderFactory = Callable[[dict[str, Any], Node, bool], Any]


@dataclass(frozen=True)
class RenewResult:
    """``status``: not-due, renewed, dry-run, attention, failed. ``exit_code`` for the CLI."""

    status: str
    message: str
    exit_code: int
    decision: Optional[Decision] = None
    metadata: Optional[dict[str, Any]] = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def provider_from_metadata(meta: dict[str, Any], node: Node, dry_run: bool = False) -> Any:
    """The provider that made the managed certificate, set up the same way again."""
    name = meta.get("provider")
    settings = meta.get("provider_settings") or {}
    if name == "selfsigned":
        from .providers.selfsigned import SelfSigned

        return SelfSigned()
    if name == "acme":
        from .http01 import Http01Options
        from .nginx import NginxContainer
        from .providers.acme import Acme
        from .providers.acme_net import LETSENCRYPT, LETSENCRYPT_STAGING

        directory = settings.get("directory") or LETSENCRYPT
        if dry_run and directory == LETSENCRYPT:
            directory = LETSENCRYPT_STAGING
        http01 = Http01Options(
            strategy=settings.get("http01") or "auto",
            port=int(settings.get("http_port") or 80),
            webroot=Path(settings["webroot"]) if settings.get("webroot") else None,
            listen=tuple(settings.get("http_address") or Http01Options.listen),
        )
        cert = meta.get("certificate") or {}
        return Acme(
            state_dir=node.state_dir,
            directory=directory,
            ca_bundle=settings.get("ca_bundle"),
            agree_tos=True,  # the account exists, so its terms were agreed to
            profile=settings.get("profile"),
            http01=http01,
            nginx=NginxContainer(node.container, node.docker_host),
            replaces=None if dry_run else cert.get("ari_cert_id"),
        )
    raise UsageError(f"the managed certificate's provider {name!r} cannot be renewed by this sesam-tls")


def _request(meta: dict[str, Any]) -> Any:
    from .providers.base import CertRequest

    req = meta.get("request") or {}
    return CertRequest.build(req.get("names") or [], req.get("ips") or [], key_type=req.get("key_type") or "ecdsa-p256",
                             days=req.get("days"))


def _key_for_run(request: Any, meta: dict[str, Any], node: Node, *, key_policy: Optional[str],
                 new_key: bool) -> Any:
    """The request with this run's key: the live one when the policy is ``reuse``.

    The policy is the one given (``--reuse-key``/``--no-reuse-key``, recorded
    for later renewals), else the recorded one, else the provider's default:
    a record from before key policies keeps a self-signed key too.
    ``new_key`` (``--new-key``) makes a new key for this run only.
    """
    from .keys import check_key_policy, default_key_policy

    policy = check_key_policy(key_policy) or _recorded_key_policy(meta) or default_key_policy(str(meta.get("provider")))
    request = dataclasses.replace(request, key_policy=policy)
    if new_key or policy != "reuse":
        return request
    return with_live_key(request, node)


def _recorded_key_policy(meta: dict[str, Any]) -> Optional[str]:
    """The record's key policy (``request.key_policy``), None in records older than it."""
    value = (meta.get("request") or {}).get("key_policy")
    return value if isinstance(value, str) else None


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


def _update_ari(meta: dict[str, Any], node: Node, now: dt.datetime, rng: random.Random) -> bool:
    """Ask the CA for its renewal window when the last answer's Retry-After has passed."""
    renewal = meta.setdefault("renewal", {})
    ari = dict(renewal.get("ari") or {})
    next_poll = parse_time(ari.get("next_poll"))
    if next_poll is not None and now < next_poll:
        return False
    settings = meta.get("provider_settings") or {}
    directory = settings.get("directory")
    if not directory or not (meta.get("certificate") or {}).get("ari_cert_id"):
        return False
    from cryptography import x509

    from .ari import DEFAULT_RETRY, fetch_window
    from .store import SslFolder

    pair = SslFolder(node.ssl_dir).read_pair()
    if pair is None:
        return False
    try:
        cert = x509.load_pem_x509_certificate(pair[0])
        window = fetch_window(directory, cert, ca_bundle=settings.get("ca_bundle"), now=now)
    except Exception as exc:  # any network or format trouble: fall back to the lifetime rule
        log.warning("could not get the renewal window from the CA (%s); using the certificate's lifetime", exc)
        ari["next_poll"] = (now + DEFAULT_RETRY).isoformat()
        renewal["ari"] = ari
        return True
    if window is None:
        renewal["ari"] = {"supported": False, "next_poll": (now + dt.timedelta(days=1)).isoformat()}
        return True
    same = parse_time(ari.get("start")) == window.start and parse_time(ari.get("end")) == window.end
    chosen = ari.get("chosen") if same and ari.get("chosen") else choose_in_window(window.start, window.end, rng).isoformat()
    renewal["ari"] = {
        "supported": True,
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "chosen": chosen,
        "explanation": window.explanation,
        "next_poll": (now + window.retry_after).isoformat(),
    }
    return True


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
    provider_factory: ProviderFactory = provider_from_metadata,
    lock_wait: float = 10.0,
    key_policy: Optional[str] = None,
    new_key: bool = False,
) -> RenewResult:
    """Renew the node's managed certificate when it is due; see the module docstring.

    ``key_policy`` (``reuse``/``new``) overrides the recorded one and is recorded;
    ``new_key`` makes a new key for this renewal only.
    """
    node = node or Node.from_settings()
    now = now or _now()
    rng = rng or random.Random()
    if load_metadata(node.metadata_path) is None:
        raise UsageError(
            f"no managed certificate in {node.state_dir}: run 'sesam-tls issue' or 'sesam-tls import' first"
        )
    with node_lock(node.state_dir, wait=lock_wait):
        meta = load_metadata(node.metadata_path) or {}
        if meta.get("provider") == "acme" and not force and days is None and _update_ari(meta, node, now, rng):
            save_metadata(node.metadata_path, _strip_schema(meta))
        decision = decide(meta, now, force=force, days=days)
        result = _result_without_renewal(decision, meta)
        if result is not None:
            _metrics(metrics_file, meta)
            return result

        log.info("renewing: %s", decision.reason)
        from .api import gate_bundle, hook_env, obtain_and_deploy, preflight
        from .hooks import run_hook

        provider = provider_factory(meta, node, dry_run)
        request = _request(meta)
        hooks = dict(meta.get("hooks") or {})
        for kind, command in (("deploy", options.deploy_hook), ("failure", options.failure_hook)):
            if command is not None:
                hooks[kind] = command
        try:
            request = _key_for_run(request, meta, node, key_policy=key_policy, new_key=new_key)
            if dry_run:
                bundle = gate_bundle(provider, request, provider.issue(request), now=now)
                log.info("dry run: got a certificate (sha256 %s…); deployed nothing", bundle.fingerprint[:16])
                return RenewResult("dry-run", f"dry run succeeded for {', '.join(request.identifiers)}", 0, decision, meta)
            preflight(node, options)
            outcome = obtain_and_deploy(request, provider, node, options, now=now)
        except SesamTLSError as exc:
            if dry_run:
                raise
            log.debug("traceback of the failed attempt:", exc_info=True)  # shown with --debug only
            meta = _record_failure(node, {**meta, "hooks": hooks}, now, exc, provider)
            failpoint("renew.after-failure-recorded")
            run_hook("failure", hooks.get("failure"), hook_env(node, meta, "failed", str(exc)))
            _metrics(metrics_file, meta)
            return RenewResult("failed", f"renewal failed: {exc}", exc.exit_code, decision, meta)
    _metrics(metrics_file, outcome.metadata)
    cert = outcome.metadata["certificate"]
    return RenewResult(
        "renewed",
        f"renewed {', '.join(cert['names'] + cert['ips'])}: serial {cert['serial']}, expires {cert['not_after']}",
        0,
        decision,
        outcome.metadata,
    )


def _result_without_renewal(decision: Decision, meta: dict[str, Any]) -> Optional[RenewResult]:
    if decision.due:  # due and attention: a certificate clients refuse, which a renewal fixes
        return None
    if decision.attention:
        return RenewResult("attention", decision.reason, AttentionNeeded.exit_code, decision, meta)
    if decision.backing_off:
        return RenewResult("attention", decision.reason, AttentionNeeded.exit_code, decision, meta)
    return RenewResult("not-due", f"not due: {decision.reason}", 0, decision, meta)


def _record_failure(node: Node, meta: dict[str, Any], now: dt.datetime, exc: SesamTLSError,
                    provider: Any = None) -> dict[str, Any]:
    from .api import replaces_note

    renewal = {**dict(meta.get("renewal") or {}), **replaces_note(provider, now)}
    renewal["failures"] = int(renewal.get("failures") or 0) + 1
    # A refused certificate was issued all the same: count them, so the next order waits (renewal.REFUSED_BACKOFF).
    renewal["refusals"] = int(renewal.get("refusals") or 0) + 1 if isinstance(exc, RefusedCertificate) else 0
    renewal["last_attempt"] = now.isoformat()
    renewal["last_failure"] = now.isoformat()
    renewal["last_result"] = f"failed: {exc}"
    meta = {**meta, "renewal": renewal}
    save_metadata(node.metadata_path, _strip_schema(meta))
    return meta


def _strip_schema(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k != "schema"}


def _metrics(path: Optional[Path], meta: Optional[dict[str, Any]]) -> None:
    if path is None:
        return
    from .metrics import write_metrics

    write_metrics(path, meta)
