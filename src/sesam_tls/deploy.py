"""Deployment: files -> agent config -> reload/restart -> verify -> (rollback).

Every provider's bundle goes through :func:`deploy`. Everything that can be
checked is checked before the first write (config parses, folder writable,
Docker answers), and once something is written, any failure, Ctrl-C
included, puts the previous pair and config back and restarts nginx on them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .agent_config import AgentConfig
from .bundle import Bundle
from .deadline import Deadline, poll
from .errors import DeployError, DockerError, SesamTLSError, one_line
from .failpoints import failpoint
from .fsutil import sweep_temp_siblings
from .nginx import NginxContainer
from .options import DeployOptions
from .node import Node
from .store import SslFolder
from .verify import parse_address, served_certificate

__all__ = ["NOT_ASKED", "UNREADABLE", "DeployPlan", "DeployResult", "deploy", "interrupted", "prepare"]

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


#: ``recorded_version`` when the record cannot be read: any live version counts as interrupted.
UNREADABLE = "<the record does not load>"
#: ``recorded_version`` not given: the deploy options are taken as they are.
NOT_ASKED = object()


def interrupted(live: Optional[str], recorded_version: object) -> bool:
    """Pure: an earlier run switched the pair (and maybe the agent config) but was stopped before it
    recorded the result, when the live version is not the one the record says was deployed."""
    return live is not None and live != recorded_version


class DeployPlan:
    """One run's deployment, checked once and then applied: the agent config read, the ssl
    folder checked, and the run's one :class:`NginxContainer` (one Docker client).

    :func:`prepare` makes it and checks everything that can be checked before any cost;
    :meth:`lock_checks` adds what needs the node lock (the write probe: a run holding
    the lock sweeps temp files in the ssl folder); :meth:`apply` deploys a bundle
    without checking again. A provider that stops nginx for HTTP-01 borrows
    :attr:`container`, so a run talks to Docker through one client.
    """

    def __init__(self, node: Node, options: DeployOptions = DeployOptions()) -> None:
        self.node = node
        self.options = options
        #: The run's nginx container; no Docker client is made until it is first asked.
        self.container = NginxContainer(node.container, node.docker_host, timeout=options.timeout)
        self._config: Optional[AgentConfig] = None
        self._config_stat: Optional[tuple[int, int, int, int, int]] = None
        self._probed = False
        self._checked = False

    # checks -----------------------------------------------------------------------------
    def check(self, *, probe: bool = True) -> "DeployPlan":
        """Fail before any cost or write: the agent config parses and can be patched, Docker and
        the container answer (when nginx is restarted), the ssl folder can be written.

        ``probe=False`` checks the ssl folder without writing to it, for the moment
        before the node lock is held (another run sweeps temp files there).
        """
        self._read_config()
        if self.options.restart:
            self.container.check()
        if probe:
            self.lock_checks()
        else:
            SslFolder(self.node.ssl_dir).check_access()
        self._checked = True
        return self

    def lock_checks(self) -> None:
        """Under the node lock: the write probe into the ssl folder (once per run)."""
        if not self._probed:
            SslFolder(self.node.ssl_dir).check_writable()
            self._probed = True

    def _read_config(self) -> AgentConfig:
        # The stat before the read: a change between the two then shows as a changed stat
        # (and a read again under the lock), never as stale bytes under a new stat.
        seen = _stat(self.node.agent_config)
        config = AgentConfig.read(self.node.agent_config)
        config.plan(self.node.container_cert_path, self.node.container_key_path)  # parses, can be patched
        self._config, self._config_stat = config, seen
        return config

    def _current_config(self) -> AgentConfig:
        """The config read by the checks; read again only when the file changed since (another
        run may have held the lock meanwhile), so what is written back is what is there."""
        if self._config is None or _stat(self.node.agent_config) != self._config_stat:
            return self._read_config()
        return self._config

    # decisions --------------------------------------------------------------------------
    def effective_options(self, recorded_version: object = NOT_ASKED) -> DeployOptions:
        """The options, with ``auto`` turned into ``restart`` after an interrupted run
        (:func:`interrupted`): nginx may never have been restarted on the config that run
        wrote, so a reload would not be enough. ``recorded_version``: see :meth:`apply`."""
        options = self.options
        if recorded_version is NOT_ASKED or not (options.restart and options.reload_mode == "auto"):
            return options
        if interrupted(SslFolder(self.node.ssl_dir).live_version(), recorded_version):
            log.info("the previous run was interrupted; restarting nginx rather than reloading")
            return dataclasses.replace(options, reload_mode="restart")
        return options

    # the deployment ---------------------------------------------------------------------
    def apply(
        self,
        bundle: Bundle,
        *,
        now: Optional[dt.datetime] = None,
        on_deployed: Optional[Callable[[DeployResult], None]] = None,
        version: Optional[str] = None,
        recorded_version: object = NOT_ASKED,
    ) -> DeployResult:
        """Deploy ``bundle``; ``on_deployed`` records it (a failure there rolls the deployment back).

        ``recorded_version``: the version the node record says was deployed (None: no
        record, :data:`UNREADABLE`: a record that does not load), from which the plan
        decides whether an earlier run was interrupted (:meth:`effective_options`);
        :data:`NOT_ASKED` leaves the options as they are.

        ``version`` switches to a version already kept in the ssl folder
        (``sesam-tls rollback``) instead of staging ``bundle`` as a new one;
        ``bundle`` is then that version's pair, for ``--verify``. Everything
        else is the same pipeline, the way back on failure included; a kept
        version is never deleted by a failed switch. The checks are not
        repeated: the caller made the plan with :func:`prepare` (a plan nobody checked is
        checked here first, so nothing is written before Docker answered).
        """
        if not self._checked:
            self.check()
        node = self.node
        options = self.effective_options(recorded_version)
        folder = SslFolder(node.ssl_dir)
        if options.verify and not options.restart:
            # Not refused: --no-restart means nginx does not serve the new pair yet, so
            # there is nothing to verify; a stored timer command keeps working.
            log.warning("--verify %s skipped: with --no-restart nginx is left alone and does not serve the new "
                        "certificate yet", options.verify)
        config = self._current_config()
        new_config = config.plan(node.container_cert_path, node.container_key_path)
        self.lock_checks()
        folder.sweep_temp()
        for written in dict.fromkeys((node.agent_config, config.target or node.agent_config)):
            sweep_temp_siblings(written)  # an interrupted run's copy holds the config's secrets (beside a link's target)
        container = self.container
        self._config = None  # used up: written below, so a second apply reads it again

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


def _stat(path: Path) -> Optional[tuple[int, int, int, int, int]]:
    """What tells a changed file (through links): an atomic write makes a new inode, a write in place a new mtime."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def prepare(node: Node, options: DeployOptions = DeployOptions(), *, probe: bool = True) -> DeployPlan:
    """The run's :class:`DeployPlan`, checked (:meth:`DeployPlan.check`): nothing costly happens
    before this, and nothing it checked is checked again when the plan is applied."""
    return DeployPlan(node, options).check(probe=probe)


def deploy(
    node: Node,
    bundle: Bundle,
    options: DeployOptions = DeployOptions(),
    *,
    now: Optional[dt.datetime] = None,
    on_deployed: Optional[Callable[[DeployResult], None]] = None,
    version: Optional[str] = None,
) -> DeployResult:
    """Prepare and apply in one call (:func:`prepare`, :meth:`DeployPlan.apply`), for a caller
    that holds the node lock and has no plan of its own."""
    return prepare(node, options).apply(bundle, now=now, on_deployed=on_deployed, version=version)


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


def _verify(options: DeployOptions, bundle: Bundle, *, clock: Callable[[], float] = time.monotonic,
            sleep: Callable[[float], None] = time.sleep) -> None:
    """A TLS handshake must show the new certificate before ``timeout`` runs out.

    Asked at once, then every 20 ms doubling to 250 ms: nginx's old workers may
    still answer for a moment after a reload. ``clock`` and ``sleep``: for tests."""
    host, port = parse_address(options.verify or "")
    name = options.verify_name or (bundle.dns_names[0] if bundle.dns_names else None)
    deadline = Deadline(options.timeout, f"the verification of {host}:{port}", error=DeployError, clock=clock)
    served = ""

    def serves_new() -> tuple[bool, None, None]:
        nonlocal served
        try:
            der = served_certificate(host, port, server_name=name, timeout=max(0.5, deadline.remaining()),
                                     clock=clock, sleep=sleep)
        except ConnectionError as exc:
            raise DeployError(f"verification failed: {exc}") from None
        served = hashlib.sha256(der).hexdigest()  # fingerprint() without parsing what the server sent
        return served == bundle.fingerprint, None, None

    def give_up() -> DeployError:
        return DeployError(
            f"verification failed: {host}:{port} serves certificate {served[:16]}…, "
            f"not the new {bundle.fingerprint[:16]}…"
        )

    poll(serves_new, deadline, "verifying", at_once=True, first=0.02, growth=2, cap=0.25, give_up=give_up,
         sleep=sleep)
    log.info("verified: %s:%d serves the new certificate (sha256 %s…)", host, port, served[:16])


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
