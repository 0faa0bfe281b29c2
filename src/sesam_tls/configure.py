"""``configure``: change what ``renew`` and the timer replay, without a new certificate.

The deployment settings that ``issue``/``import`` recorded (the verify
address, the metrics file, the reload mode, ...) and the hooks are changed in
the node record, under the node lock; ``unset`` forgets one (its default
applies again). Nothing is deployed and nginx is not touched.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Union

from .node import Node
from .state import DeploySettings, Hooks

__all__ = ["Configured", "configure"]

log = logging.getLogger("sesam_tls")


@dataclass(frozen=True)
class Configured:
    """The record's settings and hooks before and after; ``changed``: the record was rewritten."""

    record_path: Path
    settings_before: DeploySettings
    settings: DeploySettings
    hooks_before: Hooks
    hooks: Hooks

    @property
    def changed(self) -> bool:
        return (self.settings, self.hooks) != (self.settings_before, self.hooks_before)

    @property
    def changed_names(self) -> tuple[str, ...]:
        """The settings (record field names, as ``unset`` takes them) whose values changed."""
        names = [f.name for f in dataclasses.fields(DeploySettings)
                 if getattr(self.settings, f.name) != getattr(self.settings_before, f.name)]
        names += [f"{hook}_hook" for hook in ("deploy", "failure")
                  if getattr(self.hooks, hook) != getattr(self.hooks_before, hook)]
        return tuple(names)

    def to_json(self) -> dict[str, Any]:
        """What ``configure --json`` prints."""
        from .state import encode

        return {"result": "configured" if self.changed else "unchanged", "settings": encode(self.settings),
                "hooks": encode(self.hooks)}


def configure(
    node: Optional[Node] = None,
    *,
    verify: Optional[str] = None,
    verify_name: Optional[str] = None,
    reload_mode: Optional[str] = None,
    restart: Optional[bool] = None,
    timeout: Optional[float] = None,
    metrics_file: Union[str, os.PathLike[str], None] = None,
    container: Optional[str] = None,
    docker_host: Optional[str] = None,
    deploy_hook: Optional[str] = None,
    failure_hook: Optional[str] = None,
    proxy_env: Optional[Mapping[str, str]] = None,
    unset: Iterable[str] = (),
) -> Configured:
    """Put each setting given (not None) over the recorded one, forget those in ``unset``; save.

    ``proxy_env``: record the proxy of this environment (``HTTPS_PROXY``,
    ``HTTP_PROXY``, ``NO_PROXY``), all of it, replacing the recorded one; a
    value that cannot be recorded (a password in the URL) is a warning. A
    relative ``metrics_file`` is made absolute: the timer runs from ``/``.
    The values are checked as the deployment will read them before anything
    is written; a node with no managed certificate is refused.
    """
    from .choices import UNSETTABLE
    from .errors import UsageError
    from .options import DeployOptions
    from .replay import merge, proxy_from_env
    from .state import Proxy, load_record, node_lock, save_record

    node = node or Node.from_settings()
    unset = tuple(unset)
    unknown = [name for name in unset if name not in UNSETTABLE]
    if unknown:
        raise UsageError(f"`unset` {unknown[0]!r} is not a recorded setting: choose from {', '.join(UNSETTABLE)}")
    proxy = Proxy()
    if proxy_env is not None:
        proxy, notes = proxy_from_env(proxy_env)
        for note in notes:
            log.warning("%s", note)
    given = DeploySettings(verify=verify, verify_name=verify_name, reload_mode=reload_mode, restart=restart,
                           timeout=timeout, metrics_file=os.path.abspath(metrics_file) if metrics_file else None,
                           container=container, docker_host=docker_host, proxy=proxy)
    # the values are checked as the deployment will read them, before anything is written
    DeployOptions(reload_mode=given.reload_mode or "auto", verify=given.verify)
    if given.timeout is not None and not 0 < given.timeout <= 3600:
        raise UsageError(f"invalid `timeout` {given.timeout:g}: must be more than 0 and at most 3600 seconds")
    with node_lock(node.state_dir):
        record = load_record(node.metadata_path)
        if record is None:
            raise UsageError(f"no managed certificate in {node.state_dir}: run 'sesam-tls issue' or 'sesam-tls import' first")
        settings = merge(record.settings, given)
        if proxy_env is not None:
            settings = dataclasses.replace(settings, proxy=given.proxy)  # this environment's proxy, all of it
        blank = DeploySettings()
        for name in unset:
            if name in ("deploy_hook", "failure_hook"):
                continue
            cleared: Any = Proxy() if name == "proxy" else getattr(blank, name)  # each field's own "not set"
            settings = dataclasses.replace(settings, **{name: cleared})
        hooks = dataclasses.replace(
            record.hooks,
            deploy=None if "deploy_hook" in unset else (deploy_hook or record.hooks.deploy),
            failure=None if "failure_hook" in unset else (failure_hook or record.hooks.failure),
        )
        updated = record.replace(settings=settings, hooks=hooks)
        if updated != record:
            save_record(node.metadata_path, updated)
    return Configured(node.metadata_path, record.settings, settings, record.hooks, hooks)
