"""How a bundle reaches nginx: the deploy options (a plain value, cheap to import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .errors import UsageError
from .verify import parse_address

__all__ = ["DeployOptions", "RELOAD_MODES"]

RELOAD_MODES = ("auto", "reload", "restart")


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

    def __post_init__(self) -> None:
        if self.reload_mode not in RELOAD_MODES:
            raise UsageError(f"unknown reload mode {self.reload_mode!r}: choose one of {', '.join(RELOAD_MODES)}")
        if self.verify:
            parse_address(self.verify)
