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

__all__ = ["RenewResult", "renew", "provider_from_metadata"]

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
) -> RenewResult:
    """Renew the node's managed certificate when it is due; see the module docstring."""
    node = node or Node.from_settings()
    now = now or _now()
    rng = rng or random.Random()
    if load_metadata(node.metadata_path) is None:
        raise UsageError(
            f"no managed certificate in {node.state_dir}: run 'sesam-tls issue' or 'sesam-tls import' first"
        )
    with node_lock(node.state_dir, wait=lock_wait):
        meta = load_metadata(node.metadata_path) or {}
        if dry_run:
            return _rehearse(node, meta, options, now, provider_factory)
        if meta.get("provider") == "acme" and not force and days is None and _update_ari(meta, node, now, rng):
            save_metadata(node.metadata_path, _strip_schema(meta))
        decision = decide(meta, now, force=force, days=days)
        result = _result_without_renewal(decision, meta)
        if result is not None:
            _metrics(metrics_file, meta, now)
            return result

        log.info("renewing: %s", decision.reason)
        from .api import hook_env, obtain_and_deploy, preflight
        from .hooks import run_hook

        provider = provider_factory(meta, node, False)
        request = _request(meta)
        hooks = dict(meta.get("hooks") or {})
        for kind, command in (("deploy", options.deploy_hook), ("failure", options.failure_hook)):
            if command is not None:
                hooks[kind] = command
        try:
            preflight(node, options)
            outcome = obtain_and_deploy(request, provider, node, options, now=now)
        except SesamTLSError as exc:
            log.debug("traceback of the failed attempt:", exc_info=True)  # shown with --debug only
            meta = _record_failure(node, {**meta, "hooks": hooks}, now, exc)
            failpoint("renew.after-failure-recorded")
            run_hook("failure", hooks.get("failure"), hook_env(node, meta, "failed", str(exc)))
            _metrics(metrics_file, meta, now)
            return RenewResult("failed", f"renewal failed: {exc}", exc.exit_code, decision, meta)
    _metrics(metrics_file, outcome.metadata, now)
    cert = outcome.metadata["certificate"]
    return RenewResult(
        "renewed",
        f"renewed {', '.join(cert['names'] + cert['ips'])}: serial {cert['serial']}, expires {cert['not_after']}",
        0,
        decision,
        outcome.metadata,
    )


def _rehearse(
    node: Node, meta: dict[str, Any], options: DeployOptions, now: dt.datetime, provider_factory: ProviderFactory
) -> RenewResult:
    """``--dry-run``: the renewal as if it were due, due or not (:mod:`sesam_tls.rehearse`).

    Errors are raised as they are (the CLI prints one line, with the error's
    exit code), not recorded: a failed rehearsal is not a failed renewal and
    starts no backoff. An imported certificate is not renewed by sesam-tls,
    so there is nothing to rehearse: the answer is what ``renew`` says.
    """
    from .api import preflight
    from .rehearse import rehearse

    decision = decide(meta, now)
    if meta.get("provider") == "import":
        said = _result_without_renewal(decision, meta) or RenewResult("not-due", decision.reason, 0, decision, meta)
        message = f"dry run: an imported certificate is not renewed by sesam-tls, nothing to rehearse; {said.message}"
        return RenewResult(said.status, message, said.exit_code, decision, meta)
    preflight(node, options, probe=False)  # no probe: a rehearsal leaves the ssl folder as it was
    provider = provider_factory(meta, node, True)
    request = _request(meta)
    log.info("dry run: rehearsing the renewal of %s as if it were due (%s)", ", ".join(request.identifiers),
             decision.reason)
    rehearsal = rehearse(node, request, provider, options, now=now)
    return RenewResult("dry-run", f"dry run succeeded for {', '.join(request.identifiers)}: {rehearsal.message}", 0,
                       decision, meta)


def _result_without_renewal(decision: Decision, meta: dict[str, Any]) -> Optional[RenewResult]:
    if decision.due:  # due and attention: a certificate clients refuse, which a renewal fixes
        return None
    if decision.attention:
        return RenewResult("attention", decision.reason, AttentionNeeded.exit_code, decision, meta)
    if decision.backing_off:
        return RenewResult("attention", decision.reason, AttentionNeeded.exit_code, decision, meta)
    return RenewResult("not-due", f"not due: {decision.reason}", 0, decision, meta)


def _record_failure(node: Node, meta: dict[str, Any], now: dt.datetime, exc: SesamTLSError) -> dict[str, Any]:
    renewal = dict(meta.get("renewal") or {})
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


def _metrics(path: Optional[Path], meta: Optional[dict[str, Any]], now: dt.datetime) -> None:
    if path is None:
        return
    from .metrics import write_metrics

    write_metrics(path, meta, now=now, last_run=now)
