"""How a bundle reaches nginx: the deploy options (a plain value, cheap to import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .errors import UsageError
from .choices import RELOAD_MODES

__all__ = ["DeployOptions", "RELOAD_MODES"]



@dataclass(frozen=True)
class DeployOptions:
    """How a bundle reaches nginx.

    ``restart=False`` writes the files and the agent config only.
    ``reload_mode``: ``auto`` restarts when the agent config changed (the
    agent's settings are read at container start) and reloads otherwise.
    ``verify``: ``HOST:PORT`` where a TLS handshake must show the new certificate.
    """

    restart: bool = True
    reload_mode: str = "auto"
    verify: Optional[str] = None
    verify_name: Optional[str] = None
    timeout: float = 30.0
    #: Shell commands run after a successful deployment / a failed renewal;
    #: stored with the managed certificate so the renewal timer runs them too.
    deploy_hook: Optional[str] = None
    failure_hook: Optional[str] = None
    #: Environment variables the hooks may see, by name (None: keep what is recorded);
    #: stored with the certificate, never their values.
    hook_env: Optional[tuple[str, ...]] = None
    #: Variables this run read a secret from (--password-env, --eab-hmac-env): never given to a hook.
    secret_env: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.reload_mode not in RELOAD_MODES:
            raise UsageError(f"unknown reload mode {self.reload_mode!r}: choose one of {', '.join(RELOAD_MODES)}")
        # verify (ssl, socket) and hooks (subprocess) only when there is something to check:
        # a renewal with nothing due builds DeployOptions and must stay cheap to import
        if self.verify:
            from .verify import parse_address

            parse_address(self.verify)
        if not self.hook_env:
            return
        from .hooks import check_env_name

        for name in self.hook_env:
            problem = check_env_name(name)
            if problem:
                raise UsageError(f"`hook_env` {name}: {problem}")
