"""Replayed settings: what the watched run was told, the unattended run does (pure decisions).

``issue``/``import`` record the deployment settings they were given (verify
address, reload mode, restart, timeout, metrics file, container, Docker host)
and the outbound proxy of their environment in the node record
(``NodeRecord.settings``); ``configure`` changes them; plain ``renew`` and the
timer replay them. The latest ``issue``/``import`` replaces them all (as
certbot keeps its latest run's options); a flag given to ``renew`` wins for
that run only, so a one-off run never changes what the timer does.

Nothing here reads the disk or the environment: the environment comes in as
a mapping, and the CLI applies the results at its edge.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from typing import Any, Mapping, Optional

from .options import DeployOptions
from .state import DeploySettings, NodeRecord, Proxy

__all__ = ["PROXY_VARIABLES", "deploy_options", "merge", "missing_secrets", "proxy_environment", "proxy_from_env"]

#: The record's proxy fields and the variables they come from (upper case first, as curl and requests read them).
PROXY_VARIABLES = {"https_proxy": "HTTPS_PROXY", "http_proxy": "HTTP_PROXY", "no_proxy": "NO_PROXY"}


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
                "(only a new ACME account needs it: issue again with --eab-hmac-file FILE to record a file)"]
    return []
