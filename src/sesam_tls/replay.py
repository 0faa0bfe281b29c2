"""Replayed settings: what the watched run was told, the unattended run does (pure decisions).

``issue``/``import`` record the deployment settings they were given (verify
address, reload mode, restart, timeout, metrics file, container, Docker host)
and the outbound proxy of their environment in the node record
(``NodeRecord.settings``); ``configure`` changes them; plain ``renew`` and the
timer replay them. The latest ``issue``/``import`` replaces them all (as
certbot keeps its latest run's options); a flag given to ``renew`` wins for
that run only, so a one-off run never changes what the timer does.

Nothing here reads the disk or the environment: the environment comes in as
a mapping, and the operations apply the results at their edge
(:func:`sesam_tls.unattended.renew_replayed`). :class:`DeployGiven` is what
one run was given, as plain values: the CLI translates its flags into it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Optional

from .options import DeployOptions
from .state import DeploySettings, NodeRecord, Proxy

if TYPE_CHECKING:  # pragma: no cover
    from .node import Node

__all__ = ["PROXY_VARIABLES", "DeployGiven", "deploy_options", "merge", "missing_secrets", "proxy_environment", "proxy_from_env"]

#: The record's proxy fields and the variables they come from (upper case first, as curl and requests read them).
PROXY_VARIABLES = {"https_proxy": "HTTPS_PROXY", "http_proxy": "HTTP_PROXY", "no_proxy": "NO_PROXY"}


@dataclass(frozen=True)
class DeployGiven:
    """How one run was told to deploy, as plain values (None: not given), before the record and the defaults.

    ``issue``/``import`` record the settings (:meth:`settings`) and deploy
    with them alone (:meth:`for_new_certificate`): the latest command line is
    what the timer replays, all of it. ``renew`` puts them over the recorded
    ones for its run only (:meth:`options`). ``container``/``docker_host``:
    the node's, when given (a flag or its environment variable), which then
    win over the recorded ones. ``hook_env``: the variables hooks may see
    (None: keep the recorded list); ``secret_env``: the variables this run
    read a secret from, never given to a hook.
    """

    verify: Optional[str] = None
    verify_name: Optional[str] = None
    reload_mode: Optional[str] = None
    restart: Optional[bool] = None
    timeout: Optional[float] = None
    metrics_file: Optional[str] = None
    container: Optional[str] = None
    docker_host: Optional[str] = None
    deploy_hook: Optional[str] = None
    failure_hook: Optional[str] = None
    hook_env: Optional[tuple[str, ...]] = None
    secret_env: tuple[str, ...] = ()

    def settings(self, node: "Optional[Node]" = None, env: Optional[Mapping[str, str]] = None) -> DeploySettings:
        """The settings as the record keeps them; the metrics file's path made absolute.

        With ``node``, its container and Docker host (given, from the
        environment or the default) are recorded; with ``env``, its proxy (a
        value that cannot be recorded is said in one warning line).
        """
        proxy = Proxy()
        if env is not None:
            proxy, notes = proxy_from_env(env)
            for note in notes:
                logging.getLogger("sesam_tls").warning("%s", note)
        return DeploySettings(
            verify=self.verify,
            verify_name=self.verify_name,
            reload_mode=self.reload_mode,
            restart=self.restart,
            timeout=self.timeout,
            metrics_file=os.path.abspath(self.metrics_file) if self.metrics_file else None,
            container=node.container if node is not None else self.container,
            docker_host=node.docker_host if node is not None else self.docker_host,
            proxy=proxy,
        )

    def options(self, recorded: Optional[DeploySettings] = None) -> DeployOptions:
        """This run's deploy options: what was given, over ``recorded``, over the defaults."""
        given = dataclasses.replace(self.settings(), container=None, docker_host=None)
        options = deploy_options(merge(recorded or DeploySettings(), given), deploy_hook=self.deploy_hook,
                                 failure_hook=self.failure_hook)
        return dataclasses.replace(options, hook_env=self.hook_env, secret_env=self.secret_env)

    def for_new_certificate(self, node: "Node", env: Mapping[str, str]) -> tuple[DeploySettings, DeployOptions]:
        """For ``issue``/``import``: the settings to record (``node``'s container, ``env``'s proxy) and
        the deploy options of the run (what was given, over the defaults only).

        The latest ``issue``/``import`` is what the timer replays, all of it
        (as certbot keeps its latest run's options): a setting not given there
        is not recorded, and the run itself uses only what it was given.
        ``configure`` changes the record between runs.
        """
        return self.settings(node, env), self.options()


def merge(recorded: DeploySettings, given: DeploySettings) -> DeploySettings:
    """``recorded`` with every setting ``given`` names (not None) put over it; the proxy field by field."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(given):
        value = getattr(given, f.name)
        if f.name == "proxy":
            proxy = {p.name: getattr(value, p.name) for p in dataclasses.fields(value) if getattr(value, p.name)}
            changes["proxy"] = dataclasses.replace(recorded.proxy, **proxy)
        elif value is not None:
            changes[f.name] = value
    return dataclasses.replace(recorded, **changes)


def deploy_options(settings: DeploySettings, *, deploy_hook: Optional[str] = None,
                   failure_hook: Optional[str] = None) -> DeployOptions:
    """The deploy options the settings say, with today's defaults for what was never given."""
    default = DeployOptions()
    return DeployOptions(
        restart=default.restart if settings.restart is None else settings.restart,
        reload_mode=settings.reload_mode or default.reload_mode,
        verify=settings.verify,
        verify_name=settings.verify_name,
        timeout=default.timeout if settings.timeout is None else settings.timeout,
        deploy_hook=deploy_hook,
        failure_hook=failure_hook,
    )


def proxy_from_env(env: Mapping[str, str]) -> tuple[Proxy, list[str]]:
    """The proxy of an environment, and one line for each value not recorded (a URL with a password).

    A proxy password is a secret: it is not written to the record, the unit
    or the cron file; the line says the unattended run will not have it.
    """
    values: dict[str, Optional[str]] = {}
    notes: list[str] = []
    for field, name in PROXY_VARIABLES.items():
        value = env.get(name) or env.get(name.lower())
        if not value:
            continue
        if any(ord(c) < 0x20 or c == "\x7f" for c in value):
            notes.append(f"{name} holds a control character: not recorded; the unattended run will not have it")
            continue
        if field != "no_proxy" and _has_password(value):
            notes.append(f"{name} carries a password: not recorded (no secret is); the unattended run will not "
                         "have it: give the timer's run the proxy another way (e.g. a drop-in with Environment=)")
            continue
        values[field] = value
    return Proxy(**values), notes


def _has_password(url: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    except ValueError:
        return True  # cannot tell: treat it as a secret
    return parts.password is not None


def proxy_environment(proxy: Proxy, env: Mapping[str, str]) -> dict[str, str]:
    """The variables to add to ``env`` so a run has the recorded proxy; none that ``env`` sets already."""
    out = {}
    for field, name in PROXY_VARIABLES.items():
        value = getattr(proxy, field)
        if value and not (env.get(name) or env.get(name.lower())):
            out[name] = value
    return out


def missing_secrets(record: Optional[NodeRecord]) -> list[str]:
    """One line per secret the unattended run needs but will not have (it came from an environment variable)."""
    if record is None:
        return []
    source = getattr(record.provider_settings, "eab_key_from", None)
    if source is not None and source.kind == "env":
        return [f"the EAB key came from ${source.name} in the watched run; the unattended run will not have it "
                "(only a new ACME account needs it: issue again with `eab_hmac_file` FILE to record a file)"]
    return []
