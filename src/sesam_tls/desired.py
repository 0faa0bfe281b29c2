"""``sesam_tls.ensure``: make a node's certificate what a desired state says, doing only what is needed.

(The module is not named ``ensure``: importing it would then shadow the function on the package.)

Fleets are run by configuration management (Ansible): an operator describes
the wanted certificate of every node and runs the same description again and
again. So ``ensure`` compares the desired state with what is managed (the
node record), deployed (the ssl folder) and configured (the agent config),
and does the least that makes them agree: nothing, ``reconfigure`` (the
recorded settings only), ``issue``, ``import`` or ``renew``. A second run in
a row finds nothing to do and writes nothing, so a playbook can tell
"changed" from "already fine".

``check=True`` only reads: no ACME order or challenge, no nginx stop, no write
(not even the lock file), so ``--check`` on a fleet is safe. Its ``after`` is
what the run would lead to (for a new certificate, its names and provider;
the serial and expiry are known only once it exists).

The comparison (:func:`plan`) is pure; reading the node and acting are at the
edges (:func:`observe`, :func:`ensure`). Secrets (the EAB HMAC key, the
PKCS#12 password) live only in the desired state in memory: they reach the
provider and are never recorded, logged or returned.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .errors import SesamTLSError, UsageError
from .node import Node
from .state import DeploySettings, NodeRecord, ShapeError, decode, encode, load_record, node_lock, save_record

__all__ = ["AcmeDesired", "DeployDesired", "Desired", "EnsureResult", "ImportDesired", "Observed", "desired_from_json",
           "ensure", "observe", "plan"]

log = logging.getLogger("sesam_tls")

PROVIDERS = ("selfsigned", "acme", "import")
#: Desired states are small; more than this is not one.
MAX_DESIRED = 1024 * 1024
#: A caller that opens stdin and never writes is refused after this long.
STDIN_TIMEOUT = 30.0


@dataclass(frozen=True)
class AcmeDesired:
    """The ACME CA and how HTTP-01 is answered (DNS-01 is not offered by ``ensure`` yet).

    ``eab_hmac`` is a secret: used once to register the account, never recorded.
    """

    directory: Optional[str] = None
    staging: bool = False
    email: Optional[str] = None
    agree_tos: bool = False
    ca_bundle: Optional[str] = None
    profile: Optional[str] = None
    http01: Optional[str] = None
    http_port: Optional[int] = None
    http_address: tuple[str, ...] = ()
    webroot: Optional[str] = None
    eab_kid: Optional[str] = None
    eab_hmac: Optional[str] = field(default=None, repr=False)

    @property
    def effective_directory(self) -> str:
        from .providers.acme_net import LETSENCRYPT, LETSENCRYPT_STAGING

        return self.directory or (LETSENCRYPT_STAGING if self.staging else LETSENCRYPT)


@dataclass(frozen=True)
class ImportDesired:
    """The operator's own files; ``password`` (a secret) decrypts a key or a PKCS#12 file."""

    cert_file: str = ""
    key_file: Optional[str] = None
    chain_file: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)


@dataclass(frozen=True)
class DeployDesired:
    """What the record replays (:class:`sesam_tls.state.DeploySettings`); None: the default."""

    verify: Optional[str] = None
    verify_name: Optional[str] = None
    reload_mode: Optional[str] = None
    restart: Optional[bool] = None
    timeout: Optional[float] = None
    metrics_file: Optional[str] = None


@dataclass(frozen=True)
class Desired:
    """The wanted certificate of one node: the fields the node record keeps.

    ``renew_before_days``: renew when fewer days are left (else the record's
    own rule: ARI, or a third of the lifetime). ``replace``: a certificate
    from another provider than the managed one may be replaced (as
    ``--replace``); without it, ``ensure`` refuses the switch.
    """

    provider: str
    names: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    key_type: str = "ecdsa-p256"
    days: Optional[int] = None
    key_policy: Optional[str] = None
    renew_before_days: Optional[int] = None
    replace: bool = False
    acme: AcmeDesired = field(default_factory=AcmeDesired)
    import_files: ImportDesired = field(default_factory=ImportDesired)
    deploy: DeployDesired = field(default_factory=DeployDesired)

    @classmethod
    def from_json(cls, data: Any) -> "Desired":
        """From JSON values (``import`` for ``import_files``); a wrong field is one UsageError naming it."""
        return desired_from_json(data)

    @classmethod
    def from_bytes(cls, data: bytes, *, where: str = "given") -> "Desired":
        """From the bytes of one JSON object; ``where`` says where they came from (``on stdin``) in errors,
        which never quote the text: it may hold a secret."""
        import json

        if len(data) > MAX_DESIRED:
            raise UsageError(f"the desired state {where} is larger than {MAX_DESIRED // 1024} KiB")
        if not data.strip():
            raise UsageError(f"no desired state {where}: give it as one JSON object")
        try:
            value = json.loads(data)
        except (ValueError, RecursionError) as exc:
            reason = getattr(exc, "msg", type(exc).__name__)  # never the text itself: it may hold a secret
            raise UsageError(f"the desired state {where} is not JSON ({reason})") from None
        return desired_from_json(value)

    @classmethod
    def from_file(cls, path: str = "-", *, timeout: float = STDIN_TIMEOUT) -> "Desired":
        """From a file, or standard input (``-`` or ``/dev/stdin``), read with a size cap and a deadline
        (a caller that opens stdin and never writes is refused after ``timeout`` seconds)."""
        from .fsutil import read_bounded

        stdin = path in ("-", "/dev/stdin")
        try:
            data, _ = read_bounded("/dev/stdin" if stdin else path, MAX_DESIRED, timeout=timeout)
        except OSError as exc:
            raise UsageError(f"cannot read the desired state from {'stdin' if stdin else path}: "
                             f"{exc.strerror or exc}") from None
        return cls.from_bytes(data, where="on stdin" if stdin else f"in {path}")


@dataclass(frozen=True)
class Observed:
    """What the node has, read without writing: the record, the live pair's fingerprint,
    whether the agent config names the node's pair, and (for ``import``) the files' certificate."""

    record: Optional[NodeRecord]
    live_fingerprint: Optional[str]
    config_points_here: bool
    wanted: Optional[dict[str, Any]] = None  # import: the desired files' certificate, described


@dataclass(frozen=True)
class EnsureResult:
    """``changed``: something was (or, in check mode, would be) done. ``actions`` in order;
    ``reasons`` one line each; ``before``/``after``: summaries for a diff (None: nothing managed)."""

    changed: bool
    actions: tuple[str, ...]
    reasons: tuple[str, ...]
    check: bool
    before: Optional[dict[str, Any]]
    after: Optional[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"changed": self.changed, "actions": list(self.actions), "reasons": list(self.reasons),
                "check": self.check, "before": self.before, "after": self.after}


# reading the desired state ------------------------------------------------------------------------


def desired_from_json(data: Any) -> Desired:
    """The desired state from JSON values; a wrong field is one UsageError line naming it (never its value)."""
    if isinstance(data, dict) and "import" in data and "import_files" not in data:
        data = {("import_files" if k == "import" else k): v for k, v in data.items()}
    if not isinstance(data, dict) or not isinstance(data.get("provider"), str):
        raise UsageError("the desired state is not an object with a 'provider' (selfsigned, acme or import)")
    try:
        desired = decode(Desired, data, "")
    except ShapeError as exc:
        raise UsageError(f"desired state: {exc}") from None
    return validate(desired)


def validate(desired: Desired) -> Desired:
    """The desired state checked as the operations will read it, names normalized; before anything is read."""
    from .keys import check_key_policy, check_key_type
    from .providers.base import CertRequest

    if desired.provider not in PROVIDERS:
        raise UsageError(f"desired provider {desired.provider!r}: choose one of {', '.join(PROVIDERS)}")
    if not desired.names and not desired.ips:
        raise UsageError("desired names: none given (a certificate needs at least one name or IP address)")
    check_key_type(desired.key_type)
    check_key_policy(desired.key_policy)
    if desired.days is not None and desired.provider != "selfsigned":
        raise UsageError("desired days: only for a self-signed certificate (a CA chooses the lifetime)")
    if desired.renew_before_days is not None and not 1 <= desired.renew_before_days <= 3650:
        raise UsageError(f"desired renew_before_days {desired.renew_before_days}: must be between 1 and 3650")
    if desired.provider == "import" and not desired.import_files.cert_file:
        raise UsageError("desired import.cert_file: the certificate file to import is missing")
    if desired.provider == "acme" and desired.acme.http01 not in (None, "auto", "standalone", "webroot", "stop-nginx"):
        raise UsageError(f"desired acme.http01 {desired.acme.http01!r}: choose auto, standalone, webroot or stop-nginx")
    if bool(desired.acme.eab_kid) != bool(desired.acme.eab_hmac) and desired.provider == "acme":
        raise UsageError("desired acme: eab_kid and eab_hmac go together")
    d = desired.deploy
    if d.reload_mode not in (None, "auto", "reload", "restart"):
        raise UsageError(f"desired deploy.reload_mode {d.reload_mode!r}: choose auto, reload or restart")
    if d.timeout is not None and not 0 < d.timeout <= 3600:
        raise UsageError(f"desired deploy.timeout {d.timeout:g}: must be more than 0 and at most 3600 seconds")
    if d.verify is not None:
        from .verify import parse_address

        parse_address(d.verify)
    request = CertRequest.build(desired.names, desired.ips, key_type=desired.key_type, days=desired.days,
                                allow_wildcard=False, key_policy=desired.key_policy)
    return dataclasses.replace(desired, names=tuple(request.names), ips=tuple(str(ip) for ip in request.ips))


# the decision (pure) ------------------------------------------------------------------------------


def deploy_settings(desired: Desired, node: Node) -> DeploySettings:
    """The settings the record will keep, as ``issue`` records them (the node's container and Docker host)."""
    d = desired.deploy
    metrics = str(Path(d.metrics_file).absolute()) if d.metrics_file else None
    return DeploySettings(verify=d.verify, verify_name=d.verify_name, reload_mode=d.reload_mode, restart=d.restart,
                          timeout=d.timeout, metrics_file=metrics, container=node.container,
                          docker_host=node.docker_host)


def _acme_http(desired: Desired) -> dict[str, Any]:
    """The recorded ACME fields a renewal reads that need no new certificate when they change."""
    from .http01 import Http01Options

    a = desired.acme
    return {
        "http01": a.http01 or "auto",
        "http_port": int(a.http_port or 80),
        "webroot": str(Path(a.webroot).absolute()) if a.webroot else None,
        "http_address": tuple(a.http_address or Http01Options.listen),
        "ca_bundle": str(Path(a.ca_bundle).absolute()) if a.ca_bundle else None,
    }


def _key_policy(desired: Desired) -> Optional[str]:
    from .keys import default_key_policy

    return desired.key_policy or default_key_policy(desired.provider)


def plan(desired: Desired, seen: Observed, node: Node, now: dt.datetime) -> tuple[list[str], list[str]]:
    """The actions that make ``seen`` what ``desired`` says, and why, one line each. Pure.

    A new certificate (``issue``, or ``import`` of other files) when what the
    certificate *is* differs: provider, names, key type, lifetime, CA,
    profile, or the pair is not deployed. ``renew`` when the record's own rule
    (or ``renew_before_days``) says it is due. Otherwise ``reconfigure`` when
    only recorded settings differ. A new certificate records the settings too.
    """
    rec = seen.record
    new = "import" if desired.provider == "import" else "issue"
    if rec is None:
        return [new], ["no certificate is managed on this node"]
    if rec.provider != desired.provider:
        if not desired.replace:
            raise UsageError(
                f"the node serves a {rec.provider} certificate managed by sesam-tls; the desired provider is "
                f"{desired.provider}: set replace to true to switch (the current one is kept for rollback), "
                "nothing was changed")
        return [new], [f"the provider changes from {rec.provider} to {desired.provider}"]
    reasons: list[str] = []
    if set(rec.request.names) != set(desired.names) or set(rec.request.ips) != set(desired.ips):
        reasons.append(f"the names change from {', '.join(rec.certificate.identifiers) or 'none'} to "
                       f"{', '.join([*desired.names, *desired.ips])}")
    if desired.provider != "import" and rec.request.key_type != desired.key_type:
        reasons.append(f"the key type changes from {rec.request.key_type} to {desired.key_type}")
    if desired.provider == "selfsigned" and rec.request.days != desired.days:
        reasons.append(f"the lifetime changes from {rec.request.days or 'the default'} to {desired.days or 'the default'} days")
    if desired.provider == "acme":
        ps = rec.provider_settings
        if ps.directory != desired.acme.effective_directory:
            reasons.append(f"the CA changes from {ps.directory} to {desired.acme.effective_directory}")
        if ps.profile != desired.acme.profile:
            reasons.append(f"the ACME profile changes from {ps.profile} to {desired.acme.profile}")
        if ps.challenge not in (None, "http-01"):
            reasons.append(f"the challenge changes from {ps.challenge} to http-01")
    if desired.provider == "import" and seen.wanted is not None \
            and seen.wanted.get("fingerprint_sha256") != rec.certificate.fingerprint_sha256:
        reasons.append(f"the files hold another certificate (serial {seen.wanted.get('serial')})")
    if seen.live_fingerprint != rec.certificate.fingerprint_sha256:
        reasons.append("the ssl folder does not hold the managed certificate")
    elif not seen.config_points_here:
        reasons.append("the agent config does not name the node's pair")
    if reasons:
        return [new], reasons
    actions: list[str] = []
    if desired.provider != "import":
        from .renewal import decide

        decision = decide(rec, now, days=desired.renew_before_days)
        if decision.due:
            actions.append("renew")
            reasons.append(f"due for renewal: {decision.reason}")
    changed = _reconfigured(rec, desired, node)
    if changed != rec:
        diff = [f.name for f in dataclasses.fields(rec.settings)
                if getattr(rec.settings, f.name) != getattr(changed.settings, f.name)]
        if rec.request.key_policy != changed.request.key_policy:
            diff.append("key_policy")
        if rec.provider_settings != changed.provider_settings:
            diff.append("acme http-01 settings")
        actions.insert(0, "reconfigure")
        reasons.insert(0, f"recorded settings change: {', '.join(diff)}")
    return actions, reasons


def _reconfigured(rec: NodeRecord, desired: Desired, node: Node) -> NodeRecord:
    """The record with the desired settings: deployment, key policy, ACME HTTP-01 (no new certificate)."""
    settings = dataclasses.replace(deploy_settings(desired, node), proxy=rec.settings.proxy)
    changed = rec.replace(settings=settings,
                          request=dataclasses.replace(rec.request, key_policy=_key_policy(desired)))
    if desired.provider == "acme":
        changed = changed.replace(provider_settings=dataclasses.replace(rec.provider_settings, **_acme_http(desired)))
    return changed


def summary(rec: Optional[NodeRecord]) -> Optional[dict[str, Any]]:
    """What a diff shows: provider, CA, names, key type, expiry, fingerprint, the replayed settings."""
    if rec is None:
        return None
    cert = rec.certificate
    return {
        "provider": rec.provider,
        "directory": getattr(rec.provider_settings, "directory", None),
        "names": list(rec.request.names) + list(rec.request.ips),
        "key_type": cert.key_type,
        "serial": cert.serial,
        "not_after": cert.not_after,
        "fingerprint_sha256": cert.fingerprint_sha256,
        "key_policy": rec.request.key_policy,
        "settings": {k: v for k, v in encode(rec.settings).items() if v not in (None, {}) and k != "proxy"},
    }


def _predicted(seen: Observed, desired: Desired, node: Node, actions: list[str]) -> Optional[dict[str, Any]]:
    """``after`` in check mode: what is known before the certificate exists (``(new)`` for the rest)."""
    rec = seen.record
    if not actions:
        return summary(rec)
    if actions == ["reconfigure"] and rec is not None:
        return summary(_reconfigured(rec, desired, node))
    new = "(new)"
    after = {
        "provider": desired.provider,
        "directory": desired.acme.effective_directory if desired.provider == "acme" else None,
        "names": [*desired.names, *desired.ips],
        "key_type": desired.key_type,
        "serial": new,
        "not_after": new,
        "fingerprint_sha256": new,
        "key_policy": _key_policy(desired),
        "settings": {k: v for k, v in encode(deploy_settings(desired, node)).items()
                     if v not in (None, {}) and k != "proxy"},
    }
    if desired.provider == "import" and seen.wanted is not None:
        after.update({k: seen.wanted.get(k) for k in ("key_type", "serial", "not_after", "fingerprint_sha256")})
        after["key_policy"] = None
    return after


# the edges ----------------------------------------------------------------------------------------


def observe(node: Node, desired: Desired, now: dt.datetime) -> Observed:
    """Read what the node has; writes nothing. An unreadable record or agent config is its own error."""
    from .agent_config import AgentConfig
    from .bundle import Bundle
    from .store import SslFolder

    rec = load_record(node.metadata_path)
    live = None
    pair = SslFolder(node.ssl_dir).read_pair()
    if pair is not None:
        try:
            live = Bundle.from_pem(pair[0], pair[1], source=str(node.ssl_dir)).fingerprint
        except SesamTLSError:
            live = None  # an unusable pair: a new deployment replaces it (kept aside, as always)
    points = AgentConfig.read(node.agent_config).ssl_paths() == (node.container_cert_path, node.container_key_path)
    wanted = _import_wanted(desired, now) if desired.provider == "import" else None
    return Observed(rec, live, points, wanted)


def _imported(desired: Desired, now: Optional[dt.datetime] = None) -> Any:
    from .providers.imported import Imported

    files = desired.import_files
    password = files.password.encode() if files.password is not None else None
    return Imported(files.cert_file, key_file=files.key_file, chain_file=files.chain_file, password=password,
                    names_origin="the desired names", clock=(lambda: now) if now is not None else None)


def _import_wanted(desired: Desired, now: dt.datetime) -> dict[str, Any]:
    """The desired files' certificate, checked as ``import`` checks it (a refusal is its InputError)."""
    from .api import _check, describe
    from .providers.base import CertRequest

    request = CertRequest.build(desired.names, desired.ips)
    bundle = _check(_imported(desired, now), request).bundle()
    return describe(bundle)


def ensure(node: Optional[Node] = None, desired: Optional[Desired] = None, *, check: bool = False,
           now: Optional[dt.datetime] = None) -> EnsureResult:
    """Make ``node``'s certificate what ``desired`` says; see the module docstring.

    Errors are the operations' own (:mod:`sesam_tls.errors`, one line, their
    exit code); bad input and a check run change nothing.
    """
    if desired is None:
        raise UsageError("no desired state given")
    node = node or Node.from_settings()
    desired = validate(desired)
    now = now or dt.datetime.now(dt.timezone.utc)
    seen = observe(node, desired, now)
    actions, reasons = plan(desired, seen, node, now)
    before = summary(seen.record)
    if check or not actions:
        return EnsureResult(bool(actions), tuple(actions), tuple(reasons), check, before,
                            _predicted(seen, desired, node, actions))
    for line in reasons:
        log.info("ensure: %s", line)
    for action in actions:
        _ACTIONS[action](node, desired, now)
    rec = load_record(node.metadata_path)
    if rec is not None and rec.settings.metrics_file:  # after a reconfigure or a renewal too, as issue and import do
        from .metrics import write_metrics

        write_metrics(Path(rec.settings.metrics_file), rec)
    after = summary(rec)
    return EnsureResult(True, tuple(actions), tuple(reasons), False, before, after)


def _options(desired: Desired, node: Node) -> Any:
    from .replay import deploy_options

    return deploy_options(deploy_settings(desired, node))


def _reconfigure(node: Node, desired: Desired, now: dt.datetime) -> None:
    with node_lock(node.state_dir):
        rec = load_record(node.metadata_path)
        if rec is None:  # moved aside meanwhile
            raise UsageError(f"no managed certificate in {node.state_dir} any more; run ensure again")
        updated = _reconfigured(rec, desired, node)
        if updated != rec:
            save_record(node.metadata_path, updated)


def _issue(node: Node, desired: Desired, now: dt.datetime) -> None:
    from .api import issue_with
    from .deploy import DeployPlan
    from .providers.base import CertRequest

    request = CertRequest.build(desired.names, desired.ips, key_type=desired.key_type, days=desired.days,
                                key_policy=desired.key_policy, allow_wildcard=False)
    options = _options(desired, node)
    plan = DeployPlan(node, options)  # the run's one nginx container, lent to the ACME provider
    if desired.provider == "selfsigned":
        from .providers.selfsigned import SelfSigned

        provider: Any = SelfSigned()
    else:
        provider = _acme(desired, node, options, nginx=plan.container)
    plan.check(probe=False)  # the probe after the lock (issue_with)
    issue_with(request, provider, plan, settings=deploy_settings(desired, node), replace=desired.replace)


def _acme(desired: Desired, node: Node, options: Any, *, nginx: Any = None) -> Any:
    from .http01 import Http01Options
    from .providers.acme import Acme
    from .providers.acme_account import Eab

    a = desired.acme
    http = _acme_http(desired)
    if not options.restart and http["http01"] == "stop-nginx":
        raise UsageError("desired acme.http01 stop-nginx stops the nginx container; deploy.restart false asks to "
                         "leave it alone")
    nginx = nginx if options.restart else None
    return Acme(
        state_dir=node.state_dir,
        directory=a.effective_directory,
        ca_bundle=http["ca_bundle"],
        email=a.email,
        agree_tos=a.agree_tos,
        eab=Eab(kid=a.eab_kid, hmac_key=a.eab_hmac) if a.eab_kid and a.eab_hmac else None,
        profile=a.profile,
        http01=Http01Options(strategy=http["http01"], port=http["http_port"],
                             webroot=Path(http["webroot"]) if http["webroot"] else None, listen=http["http_address"]),
        nginx=nginx,
    )


def _import(node: Node, desired: Desired, now: dt.datetime) -> None:
    from .api import import_certificate

    files = desired.import_files
    import_certificate(files.cert_file, key_file=files.key_file, chain_file=files.chain_file,
                       password=files.password.encode() if files.password is not None else None, node=node,
                       options=_options(desired, node), domains=[*desired.names, *desired.ips],
                       settings=deploy_settings(desired, node), replace=desired.replace)


def _renew(node: Node, desired: Desired, now: dt.datetime) -> None:
    from .renew import renew

    result = renew(node, force=True, options=_options(desired, node))
    if result.exit_code != 0:
        raise _error_for(result.exit_code)(result.message)


def _error_for(code: int) -> type[SesamTLSError]:
    """The error class of an exit code, so a failed renewal keeps its own code."""
    from . import errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        if isinstance(cls, type) and issubclass(cls, SesamTLSError) and cls.exit_code == code:
            return cls
    return SesamTLSError


_ACTIONS = {"reconfigure": _reconfigure, "issue": _issue, "import": _import, "renew": _renew}
