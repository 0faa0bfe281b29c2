"""The operations, for Python callers and the CLI alike: issue and import (status, rollback: their own modules).

Each operation checks what it can before doing anything costly, holds the
node's lock while it changes things, and records what it deployed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

from cryptography.exceptions import UnsupportedAlgorithm

from .ari import cert_id
from .hooks import recordable_names, run_hook
from .bundle import Bundle
from .deploy import DeployPlan, DeployResult, prepare
from .options import DeployOptions
from .errors import InputError, RefusedCertificate, SesamTLSError, UsageError, one_line
from .failpoints import failpoint
from .names import normalize_domain
from .node import Node
from .providers.base import CertRequest, Provider
from .state import CertificateInfo, DeploySettings, Deployment, HistoryEntry, Hooks, NodeRecord, Notify, RenewalState, ReplacesDropped, Request, Timestamp, load_record, node_lock, save_record
from .store import SslFolder

if TYPE_CHECKING:  # pragma: no cover - the import path loads these when it runs
    from .importing import ImportReport
    from .providers.imported import Imported, Password
    from .validate import Report

__all__ = ["Outcome", "check_provider_switch", "gate_bundle", "import_certificate", "issue"]

log = logging.getLogger("sesam_tls")

HISTORY = 10


@dataclass(frozen=True)
class Outcome:
    bundle: Bundle
    deployment: DeployResult
    record: NodeRecord

    @property
    def metadata(self) -> dict[str, Any]:
        """The record as JSON values (what ``certificate.json`` holds)."""
        return self.record.to_json()

    def to_json(self) -> dict[str, Any]:
        """The result as the CLI prints it under ``--json``: the certificate, its deployment."""
        from .state import encode

        return {
            "result": "deployed",
            "provider": self.record.provider,
            **encode(self.record.certificate),
            "deployment": encode(self.record.deployment),
            "config_changed": self.deployment.config_changed,
        }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def issue(
    request: CertRequest,
    provider: Provider,
    *,
    node: Optional[Node] = None,
    options: DeployOptions = DeployOptions(),
    now: Optional[dt.datetime] = None,
    settings: Optional[DeploySettings] = None,
    replace: bool = False,
    notify_url_file: Optional[str] = None,
) -> Outcome:
    """Get a certificate from ``provider`` and deploy it to ``node``.

    ``settings``: what a later unattended renewal replays; they replace the
    recorded ones, as a new command line does in certbot (None keeps them).
    After the deployment the metrics file the record names is rewritten;
    ``notify_url_file`` (the webhook URL's file, checked first) is recorded
    for the renewals (:mod:`sesam_tls.notify`).

    The lock comes first: the preflight writes a probe into the ssl folder,
    and a run holding the lock sweeps temp files there, so checking before
    the lock let one run remove another's probe (exit 5 instead of a wait).
    What needs no write is checked before, so bad input changes nothing.

    A certificate from another provider than the managed one is refused
    unless ``replace`` (:func:`check_provider_switch`).
    """
    url_from = _notify_source(notify_url_file)  # checked before anything
    node = node or Node.from_settings()
    outcome = issue_with(request, provider, prepare(node, options, probe=False), now=now, settings=settings,
                         replace=replace)
    _after_deployment(node, outcome, url_from)
    return outcome


def issue_with(
    request: CertRequest,
    provider: Provider,
    plan: DeployPlan,
    *,
    now: Optional[dt.datetime] = None,
    settings: Optional[DeploySettings] = None,
    replace: bool = False,
) -> Outcome:
    """:func:`issue` with the run's plan made already (checked without the probe): a provider
    that stops nginx was given ``plan.container``, so the run has one Docker client."""
    node = plan.node
    with node_lock(node.state_dir):
        check_provider_switch(node, provider, replace=replace)
        plan.lock_checks()
        return obtain_and_deploy(request, provider, plan, now=now, settings=settings)


# After a deployment: the recorded metrics file, the webhook's source -------------------


def _notify_source(notify_url_file: Optional[str]) -> Any:
    """The webhook URL's source for ``notify_url_file``, checked now (None: not given)."""
    if not notify_url_file:
        return None
    from .notify import check_url_file

    return check_url_file(notify_url_file)


def _after_deployment(node: Node, outcome: Outcome, url_from: Any) -> None:
    """What follows a deployment, the node lock released: metrics, the webhook's source recorded."""
    from .metrics import write_recorded_metrics

    write_recorded_metrics(outcome.record)
    _remember_notify(node, url_from)


def _remember_notify(node: Node, url_from: Any) -> None:
    if url_from is not None:
        from .notify import remember_url_file

        remember_url_file(node, url_from)


def rehearse_issue(
    request: CertRequest,
    provider: Provider,
    *,
    node: Optional[Node] = None,
    options: DeployOptions = DeployOptions(),
    now: Optional[dt.datetime] = None,
) -> Any:
    """``issue --dry-run``: the first issuance rehearsed (:mod:`sesam_tls.rehearse`); nothing is
    deployed or recorded, and the live nginx is never stopped. A Let's Encrypt provider is
    pointed at the staging directory first."""
    node = node or Node.from_settings()
    return rehearse_issue_with(request, provider, prepare(node, options, probe=False), now=now)


def rehearse_issue_with(request: CertRequest, provider: Provider, plan: DeployPlan, *,
                        now: Optional[dt.datetime] = None) -> Any:
    """:func:`rehearse_issue` with the run's plan made already (checked without the probe: a
    rehearsal leaves the ssl folder as it was)."""
    from .providers.acme_net import LETSENCRYPT, LETSENCRYPT_STAGING
    from .rehearse import rehearse

    if getattr(provider, "directory", None) == LETSENCRYPT:
        provider.directory = LETSENCRYPT_STAGING  # type: ignore[attr-defined]  # only the ACME provider has .directory (checked by getattr above)
    with node_lock(plan.node.state_dir):
        return rehearse(plan.node, request, provider, plan.options, now=now, nginx=plan.container)


#: How a provider's certificate is named to the operator.
PROVIDER_WORDS = {"import": "imported", "selfsigned": "self-signed", "acme": "ACME"}


def check_provider_switch(node: Node, provider: Provider, *, replace: bool = False) -> None:
    """Refuse to put one provider's certificate over another's, unless ``replace``.

    A self-signed certificate over the commercial one an operator imported
    breaks every client, and nothing in a successful run would show it: so
    the switch is asked for (``--replace``). Before anything is written, and
    before an ACME order is placed. A node without a record (the operator's
    own pair, adopted on this first run) is not managed: it is replaced as
    always, kept for rollback, and the log says so.
    """
    rec = load_record(node.metadata_path)
    if rec is None:
        _say_adopted(node)
        return
    managed = rec.provider
    if not managed or managed == provider.name:
        return
    names = ", ".join(rec.certificate.identifiers) or "no names"
    expires = str(rec.certificate.not_after or "unknown")[:10]
    served = f"{PROVIDER_WORDS.get(managed, managed)} certificate for {names} (expires {expires})"
    if managed == "acme":
        served += f" from {getattr(rec.provider_settings, 'directory', None) or 'an ACME CA'}"
    new = PROVIDER_WORDS.get(provider.name, provider.name)
    if replace:
        log.warning("replacing the %s with a %s certificate (--replace); the old one is kept for rollback",
                    served, new)
        return
    raise UsageError(
        f"the node serves the {served}, managed by sesam-tls; refusing to replace it with "
        f"{'an' if new[0] in 'AEIOUaeiou' else 'a'} {new} "
        f"certificate: give --replace to do so (the current one is kept for rollback), nothing was changed"
    )


def _say_adopted(node: Node) -> None:
    """The first run on a node with the operator's own pair: say it is replaced and where it is kept."""
    pair = SslFolder(node.ssl_dir).read_pair()
    if pair is None:
        return
    from .bundle import key_matches_cert

    try:
        own = Bundle.from_pem(pair[0], pair[1], source=str(node.ssl_dir))
        what = (f"the node's own certificate (serial {own.serial}, for "
                f"{', '.join(own.dns_names + own.ip_addresses) or 'no names'}, expires {own.not_after:%Y-%m-%d})")
        kept = node.ssl_dir / (".versions" if key_matches_cert(own.key, own.leaf) else "set-aside")
    except (SesamTLSError, ValueError, TypeError):
        what, kept = f"the pair in {node.ssl_dir}", node.ssl_dir / "set-aside"
    log.info("%s is not managed by sesam-tls: this first run replaces it; it is kept in %s for rollback",
             what, kept)


def obtain_and_deploy(
    request: CertRequest, provider: Provider, plan: DeployPlan, *, now: Optional[dt.datetime] = None,
    settings: Optional[DeploySettings] = None,
) -> Outcome:
    """The body of :func:`issue`, for callers that already hold the node lock and made the plan.

    Whether nginx is restarted rather than reloaded after an interrupted run is
    the deployment's decision (:meth:`~sesam_tls.deploy.DeployPlan.apply`).
    """
    node, options = plan.node, plan.options
    bundle = gate_bundle(provider, request, provider.issue(request), now=now)
    recorded: list[NodeRecord] = []

    def commit(result: DeployResult) -> None:
        # Inside the deployment: metadata that cannot be written (state folder
        # full) takes the new pair back instead of leaving it live, unrecorded.
        recorded.append(record(node, provider, request, bundle, result, now=now or _now(), options=options,
                               settings=settings))

    result = plan.apply(bundle, now=now, on_deployed=commit, recorded_version=recorded_version(node))
    rec = recorded[-1]
    run_hook("deploy", rec.hooks.deploy, hook_env(node, rec, "deployed"), allow=rec.hooks.env,
             secret=options.secret_env)
    return Outcome(bundle, result, rec)


def gate_bundle(
    provider: Provider, request: CertRequest, bundle: Bundle, *, now: Optional[dt.datetime] = None
) -> Bundle:
    """The bundle to deploy, after the checks ``import`` applies; refused with the provider's error.

    Every provider's bundle passes here before anything is written, so an
    ACME CA, the self-signed maker or a library caller's provider can never
    replace a good pair with one clients refuse. The error starts with where
    the bundle came from (``provider.origin``: the CA's directory URL, the
    files) and is the provider's own (``provider.refused_as``): exit 8, or 3
    for import. The chain comes back in order, a root the CA sent left out.
    """
    from .validate import gate

    origin = str(getattr(provider, "origin", None) or f"the {provider.name} provider")
    refused_as = getattr(provider, "refused_as", RefusedCertificate)
    from .providers.registry import settings_class

    from_ca = settings_class(provider.name).from_ca
    checked = getattr(provider, "report_for", None)  # the import provider validated this very bundle
    report = checked(bundle, request) if callable(checked) and not from_ca else None
    try:
        if report is None:
            report = gate(bundle, request.identifiers, now=now or _now(), source=origin, from_ca=from_ca)
    except (ValueError, UnsupportedAlgorithm) as exc:  # a field damaged inside, read only now (see _check)
        raise refused_as(f"{origin}: the certificate is damaged inside ({one_line(exc, 160)}); not deployed") from None
    if report.errors:
        more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
        raise refused_as(f"{report.errors[0].message}{more}; not deployed, nothing was changed")
    if provider.name != "import":  # the import provider has logged its own findings already
        for finding in report.warnings:
            if not (finding.code == "self-signed" and provider.name == "selfsigned"):
                log.warning("%s", finding.message)
    if report.leaf is bundle.leaf and report.chain == bundle.chain:
        return bundle
    return Bundle(key=bundle.key, leaf=report.leaf, chain=report.chain)  # type: ignore[arg-type]  # report.leaf is Optional; validation raised when there is none


def recorded_version(node: Node) -> Optional[str]:
    """The version the node record says was deployed (None: no record), for the deployment's
    decision after an interrupted run (:meth:`~sesam_tls.deploy.DeployPlan.apply`)."""
    from .deploy import UNREADABLE

    try:
        rec = load_record(node.metadata_path)
    except SesamTLSError:
        return UNREADABLE
    return rec.deployment.version if rec else None


def hook_env(node: Node, rec: NodeRecord, event: str, error: str = "") -> dict[str, str]:
    """What a hook learns about the certificate: facts and paths, never key material."""
    cert = rec.certificate
    return {
        "SESAM_TLS_EVENT": event,
        "SESAM_TLS_PROVIDER": rec.provider,
        "SESAM_TLS_NAMES": " ".join(cert.identifiers),
        "SESAM_TLS_SERIAL": cert.serial or "",
        "SESAM_TLS_FINGERPRINT": cert.fingerprint_sha256 or "",
        "SESAM_TLS_NOT_AFTER": cert.not_after or "",
        "SESAM_TLS_CERT_PATH": str(node.cert_path),
        "SESAM_TLS_KEY_PATH": str(node.key_path),
        "SESAM_TLS_CONTAINER": node.container,
        "SESAM_TLS_ERROR": error,
    }


def import_certificate(
    cert_file: Union[str, os.PathLike[str]],
    *,
    key_file: Union[str, os.PathLike[str], None] = None,
    chain_file: Union[str, os.PathLike[str], None] = None,
    password: Password = None,
    node: Optional[Node] = None,
    options: DeployOptions = DeployOptions(),
    domains: Sequence[str] = (),
    check_only: bool = False,
    expiry_warning_days: int = 14,
    now: Optional[dt.datetime] = None,
    settings: Optional[DeploySettings] = None,
    replace: bool = False,
    notify_url_file: Optional[str] = None,
) -> Union[Outcome, ImportReport]:
    """Deploy the operator's own certificate, after checking everything about it.

    ``password`` (bytes, or a callable asked only when a file is encrypted)
    decrypts the key or the PKCS#12 file; it is never logged or stored.
    The names to cover are ``domains``, or else those of the managed
    certificate being replaced. Every check runs before the first write:
    a refusal raises InputError and leaves the node untouched. Over a
    certificate another provider made, only with ``replace``.

    ``check_only`` returns the validation report (an
    :class:`~sesam_tls.importing.ImportReport`, errors included, nothing
    raised for them) and writes nothing. ``password``: a
    :class:`~sesam_tls.importing.Password` says where it comes from.
    ``notify_url_file``: as for :func:`issue` (checked with ``check_only`` too).
    """
    url_from = _notify_source(notify_url_file)  # a bad file fails first, even with check_only
    node = node or Node.from_settings()
    request, origin = _import_request(node, domains)
    from .providers.imported import Imported

    provider = Imported(
        cert_file,
        key_file=key_file,
        chain_file=chain_file,
        password=password,
        expiry_warning_days=expiry_warning_days,
        names_origin=origin,
        clock=(lambda: now) if now is not None else None,
    )
    report = _check(provider, request)
    if check_only:
        for finding in report.warnings:
            log.warning("%s", finding.message)
        from .importing import ImportReport

        return ImportReport.of(report)
    bundle = report.bundle()  # refuses here, before Docker is asked or a folder is made
    request = dataclasses.replace(request, key_type=bundle.key_type)
    outcome = issue(request, provider, node=node, options=options, now=now, settings=settings, replace=replace)
    _remember_notify(node, url_from)
    return outcome


def _check(provider: Imported, request: CertRequest) -> Report:
    """``provider.check``, with a certificate damaged inside turned into one InputError line.

    cryptography reads a certificate's fields only when they are asked for: a
    file whose outer structure is sound but whose subject or an extension is
    broken decodes, then fails in validation with ValueError (found by fuzzing).
    """
    try:
        return provider.check(request)
    except (ValueError, UnsupportedAlgorithm) as exc:  # a public key on a curve nobody knows, too
        reason = one_line(exc, 160)
        files = ", ".join(str(p) for p in provider.files)
        raise InputError(f"{files}: a certificate is damaged inside ({reason}); nothing was changed") from None


def _import_request(node: Node, domains: Sequence[str]) -> tuple[CertRequest, str]:
    """The names the imported certificate must cover, and where they come from (for messages)."""
    if domains:
        names: list[str] = []
        ips: list[Any] = []
        for value in domains:
            try:
                ips.append(ipaddress.ip_address(value.strip().strip("[]")))
            except ValueError:
                names.append(normalize_domain(value))
        origin = "given with --domain"
    else:
        old = load_record(node.metadata_path)
        names = list(old.certificate.names) if old else []
        ips = [ipaddress.ip_address(ip) for ip in old.certificate.ips] if old else []
        origin = f"a name of the certificate it replaces, from {node.metadata_path}; --domain overrides"
    return CertRequest(names=tuple(dict.fromkeys(names)), ips=tuple(dict.fromkeys(ips))), origin


def certificate_info(bundle: Bundle) -> CertificateInfo:
    """What a certificate is, for the record and ``status``: no secrets."""
    return CertificateInfo(
        names=tuple(bundle.dns_names),
        ips=tuple(bundle.ip_addresses),
        key_type=bundle.key_type,
        serial=bundle.serial,
        fingerprint_sha256=bundle.fingerprint,
        issuer=bundle.leaf.issuer.rfc4514_string(),
        not_before=Timestamp(bundle.not_before.isoformat()),
        not_after=Timestamp(bundle.not_after.isoformat()),
        ari_cert_id=cert_id(bundle.leaf),
    )


def describe(bundle: Bundle) -> dict[str, Any]:
    """What a certificate is, as JSON values (``status``)."""
    from .state import encode

    return dict(encode(certificate_info(bundle)))


def record(
    node: Node,
    provider: Provider,
    request: CertRequest,
    bundle: Bundle,
    result: DeployResult,
    *,
    now: dt.datetime,
    options: DeployOptions = DeployOptions(),
    settings: Optional[DeploySettings] = None,
) -> NodeRecord:
    from .providers.registry import settings_of

    old = load_record(node.metadata_path)
    hooks = old.hooks if old else Hooks()
    hooks = Hooks(
        deploy=options.deploy_hook if options.deploy_hook is not None else hooks.deploy,
        failure=options.failure_hook if options.failure_hook is not None else hooks.failure,
        env=tuple(recordable_names(options.hook_env, options.secret_env))
        if options.hook_env is not None else hooks.env,
    )
    replayed = settings if settings is not None else (
        old.settings if old else DeploySettings(container=node.container, docker_host=node.docker_host))
    history: tuple[HistoryEntry, ...] = old.history if old else ()
    if old and old.certificate != CertificateInfo():
        entry = HistoryEntry(serial=old.certificate.serial, fingerprint_sha256=old.certificate.fingerprint_sha256,
                             not_after=old.certificate.not_after, version=old.deployment.version)
        history = (entry, *history)[:HISTORY]
    rec = NodeRecord(
        provider=provider.name,
        provider_settings=settings_of(provider),
        request=Request(names=tuple(request.names), ips=tuple(str(ip) for ip in request.ips),
                        key_type=request.key_type, days=request.days, key_policy=_key_policy(provider, request)),
        certificate=certificate_info(bundle),
        deployment=Deployment(
            version=result.version,
            previous_version=result.previous_version,
            deployed_at=Timestamp(now.isoformat()),
            action=result.action,
            verified=result.verified,
            ssl_dir=str(node.ssl_dir),
            agent_config=str(node.agent_config),
            container=node.container,
        ),
        settings=replayed,
        hooks=hooks,
        renewal=RenewalState(
            last_attempt=Timestamp(now.isoformat()),
            last_result="success",
            last_success=Timestamp(now.isoformat()),
            last_failure=old.renewal.last_failure if old else None,
            replaces_dropped=replaces_note(provider, now),
        ),
        history=history,
        notify=old.notify if old else Notify(),  # the webhook's source, undelivered events, alert times
    )
    failpoint("api.before-metadata-save")
    save_record(node.metadata_path, rec)
    failpoint("api.after-metadata-save")
    return rec


def replaces_note(provider: Any, now: dt.datetime) -> Optional[ReplacesDropped]:
    """``renewal.replaces_dropped`` when the CA refused ``replaces`` and the order went without it."""
    reason = getattr(provider, "replaces_dropped", None)
    if not reason:
        return None
    return ReplacesDropped(at=Timestamp(now.isoformat()), replaces=getattr(provider, "replaces", None),
                           reason=str(reason))


def _key_policy(provider: Provider, request: CertRequest) -> Optional[str]:
    """What later renewals do with the key: the request's choice, or the provider's default."""
    from .keys import default_key_policy

    return request.key_policy or default_key_policy(provider.name)

