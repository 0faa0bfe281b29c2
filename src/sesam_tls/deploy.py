"""Deployment: files -> agent config -> reload/restart -> verify -> (rollback).

Every provider's bundle goes through :func:`deploy`. Everything that can be
checked is checked before the first write (config parses, folder writable,
Docker answers), and once something is written, any failure, Ctrl-C
included, puts the previous pair and config back and restarts nginx on them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Callable, Optional

from .agent_config import AgentConfig
from .bundle import Bundle
from .errors import DeployError, DockerError, SesamTLSError, one_line
from .failpoints import failpoint
from .fsutil import sweep_temp_siblings
from .nginx import NginxContainer
from .options import DeployOptions
from .node import Node
from .store import SslFolder
from .verify import parse_address, served_certificate

__all__ = ["DeployResult", "deploy"]

log = logging.getLogger("sesam_tls")

@dataclass(frozen=True)
class DeployResult:
    version: str
    previous_version: Optional[str]
    config_changed: bool
    action: str  # "restart", "reload" or "none"
    verified: bool


def choose_action(options: DeployOptions, config_changed: bool) -> str:
    """Pure: what makes nginx take the new files."""
    if not options.restart:
        return "none"
    if options.reload_mode == "restart" or (options.reload_mode == "auto" and config_changed):
        return "restart"
    return "reload"


def deploy(
    node: Node,
    bundle: Bundle,
    options: DeployOptions = DeployOptions(),
    *,
    now: Optional[dt.datetime] = None,
    on_deployed: Optional[Callable[[DeployResult], None]] = None,
    version: Optional[str] = None,
) -> DeployResult:
    """Deploy ``bundle``; ``on_deployed`` records it (a failure there rolls the deployment back).

    ``version`` switches to a version already kept in the ssl folder
    (``sesam-tls rollback``) instead of staging ``bundle`` as a new one;
    ``bundle`` is then that version's pair, for ``--verify``. Everything
    else is the same pipeline, the way back on failure included; a kept
    version is never deleted by a failed switch.
    """
    folder = SslFolder(node.ssl_dir)
    if options.verify and not options.restart:
        # Not refused: --no-restart means nginx does not serve the new pair yet, so
        # there is nothing to verify; a stored timer command keeps working.
        log.warning("--verify %s skipped: with --no-restart nginx is left alone and does not serve the new "
                    "certificate yet", options.verify)

    # 1. Everything that can fail without a write, fails here.
    config = AgentConfig.read(node.agent_config)
    new_config = config.plan(node.container_cert_path, node.container_key_path)
    folder.check_writable()
    folder.sweep_temp()
    for written in dict.fromkeys((node.agent_config, config.target or node.agent_config)):
        sweep_temp_siblings(written)  # an interrupted run's copy holds the config's secrets (beside a link's target)
    container = NginxContainer(node.container, node.docker_host, timeout=options.timeout)
    if options.restart:
        container.check()

    # 2. The new version sits beside the live one; nginx sees nothing yet.
    previous = folder.adopt()
    staged = version is None
    if version is None:
        try:
            version = folder.stage(bundle, now=now)
        except BaseException:
            folder.put_back()  # the operator's files this run set aside, if any
            raise
        log.info("wrote %s and %s (version %s)", node.cert_path, node.key_path, version)

    old_config = config.raw
    action = choose_action(options, new_config is not None)
    verified = False
    try:
        # 3. Key and certificate change together: one rename of `live`.
        failpoint("deploy.before-activate")
        folder.activate(version)
        failpoint("deploy.after-activate")
        if new_config is not None:
            config.write(new_config)
            log.info("set nginx.ssl_cert and nginx.ssl_key in %s", node.agent_config)
            failpoint("deploy.after-config-write")
        # 4. nginx takes the pair.
        if action != "none":
            failpoint("deploy.before-nginx")
            action = _apply(container, action)
            failpoint("deploy.after-nginx")
            # 5. Proof: nginx serves it.
            if options.verify:
                _verify(options, bundle)
                verified = True
        result = DeployResult(
            version=version,
            previous_version=previous,
            config_changed=new_config is not None,
            action=action,
            verified=verified,
        )
        # 6. What was deployed is recorded, or the deployment is taken back: a
        # new pair with the old metadata would be renewed and rolled back wrongly.
        if on_deployed is not None:
            on_deployed(result)
    except BaseException as exc:
        restored, served_again = _rollback(folder, config, old_config, container, previous, action)
        if staged:
            folder.discard(version)  # it holds a key: failed runs must not pile them up
        if isinstance(exc, SesamTLSError):
            tail = f"; {restored}"
            if action != "none" and restored.startswith(("restored", "put")):
                them = "them" if restored.startswith("put") else "it"
                tail += f" and nginx serves {them} again" if served_again else ", but nginx did not come back up"
            raise DeployError(f"{exc}{tail}") from exc
        raise
    folder.prune(keep=(version, previous))
    return result


def _apply(container: NginxContainer, action: str) -> str:
    if action == "reload":
        try:
            container.test_config()
            container.reload()
            log.info("reloaded nginx in container %s", container.name)
            return "reload"
        except DockerError as exc:
            log.warning("reload failed (%s); restarting container %s instead", exc, container.name)
    container.restart()
    log.info("restarted container %s", container.name)
    return "restart"


def _verify(options: DeployOptions, bundle: Bundle) -> None:
    """A TLS handshake must show the new certificate before ``timeout`` runs out."""
    host, port = parse_address(options.verify or "")
    name = options.verify_name or (bundle.dns_names[0] if bundle.dns_names else None)
    deadline = time.monotonic() + options.timeout
    delay = 0.02
    while True:
        try:
            der = served_certificate(host, port, server_name=name, timeout=max(0.5, deadline - time.monotonic()))
        except ConnectionError as exc:
            raise DeployError(f"verification failed: {exc}") from None
        served = hashlib.sha256(der).hexdigest()  # fingerprint() without parsing what the server sent
        if served == bundle.fingerprint:
            log.info("verified: %s:%d serves the new certificate (sha256 %s…)", host, port, served[:16])
            return
        if time.monotonic() + delay > deadline:
            raise DeployError(
                f"verification failed: {host}:{port} serves certificate {served[:16]}…, "
                f"not the new {bundle.fingerprint[:16]}…"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def _rollback(
    folder: SslFolder,
    config: AgentConfig,
    old_config: bytes,
    container: NginxContainer,
    previous: Optional[str],
    action: str,
) -> tuple[str, bool]:
    """Put the previous pair and config back: what the error says is served now, and whether nginx runs on it."""
    log.warning("deployment failed; restoring the previous certificate")
    failpoint("deploy.rollback.before")
    try:
        folder.activate(previous)
        failpoint("deploy.rollback.after-activate")
        put_back = folder.put_back()
        if config.raw != old_config:
            config.write(old_config)
            failpoint("deploy.rollback.after-config-write")
    except (SesamTLSError, OSError) as exc:
        log.error("restoring the previous certificate failed: %s", exc)
        return f"restoring the previous certificate failed too ({one_line(exc)}): check {folder.path}", False
    if put_back:
        restored = put_back
    elif previous:
        restored = "restored the previous certificate"
    else:
        restored = "took the new certificate out again: there was none before, so none is in place now"
    if action == "none":
        return restored, True
    failpoint("deploy.rollback.before-restart")
    try:
        container.restart()
    except DockerError as exc:
        log.error("restarting container %s on the previous certificate failed too: %s", container.name, exc)
        return restored, False
    failpoint("deploy.rollback.after-restart")
    return restored, True
