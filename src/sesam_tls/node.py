"""The Sesam node's TLS target: where files go, which config and container (pure)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Mapping, Optional

__all__ = ["Node"]

# Defaults from Sesam's self-hosted installation guide.
DEFAULT_SSL_DIR = "/sesam/nginx/conf/ssl"
DEFAULT_CONTAINER_SSL_DIR = "/etc/nginx/includes.d/ssl"
DEFAULT_AGENT_CONFIG = "/etc/sesam-agent/config.json"
DEFAULT_CONTAINER = "nginx"
DEFAULT_STATE_DIR = "/var/lib/sesam-tls"
CERT_NAME = "fullchain.pem"
KEY_NAME = "privkey.pem"

#: Environment variables read by :meth:`Node.from_settings`, by field.
ENV = {
    "root": "SESAM_TLS_ROOT",
    "ssl_dir": "SESAM_TLS_SSL_DIR",
    "container_ssl_dir": "SESAM_TLS_CONTAINER_SSL_DIR",
    "agent_config": "SESAM_TLS_AGENT_CONFIG",
    "container": "SESAM_TLS_CONTAINER",
    "state_dir": "SESAM_TLS_STATE_DIR",
    "docker_host": "DOCKER_HOST",
}


def _under(root: Optional[Path], default: str) -> Path:
    return Path(root, default.lstrip("/")) if root else Path(default)


@dataclass(frozen=True)
class Node:
    """One Sesam node as sesam-tls sees it.

    ``ssl_dir`` is the host folder that the nginx container mounts at
    ``container_ssl_dir``; the agent config must name the *container* paths.
    """

    ssl_dir: Path = Path(DEFAULT_SSL_DIR)
    container_ssl_dir: PurePosixPath = PurePosixPath(DEFAULT_CONTAINER_SSL_DIR)
    agent_config: Path = Path(DEFAULT_AGENT_CONFIG)
    container: str = DEFAULT_CONTAINER
    state_dir: Path = Path(DEFAULT_STATE_DIR)
    docker_host: Optional[str] = None
    root: Optional[Path] = None

    @classmethod
    def from_settings(
        cls,
        *,
        env: Optional[Mapping[str, str]] = None,
        **given: Optional[str],
    ) -> "Node":
        """Build a node from explicit values, then environment, then defaults.

        Keywords (each a string or None; None falls back to the environment
        variable, then to Sesam's default):

        - ``root`` (``SESAM_TLS_ROOT``): prefixes every *default* path (never
          an explicit one), so the whole tool can rehearse against a scratch
          folder;
        - ``ssl_dir`` (``SESAM_TLS_SSL_DIR``; ``/sesam/nginx/conf/ssl``): the
          host folder the nginx container mounts;
        - ``container_ssl_dir`` (``SESAM_TLS_CONTAINER_SSL_DIR``;
          ``/etc/nginx/includes.d/ssl``): that folder inside the container,
          the paths the agent config must name;
        - ``agent_config`` (``SESAM_TLS_AGENT_CONFIG``;
          ``/etc/sesam-agent/config.json``);
        - ``container`` (``SESAM_TLS_CONTAINER``; ``nginx``);
        - ``state_dir`` (``SESAM_TLS_STATE_DIR``; ``/var/lib/sesam-tls``):
          metadata, ACME accounts, the lock;
        - ``docker_host`` (``DOCKER_HOST``; the local socket).

        ``env`` replaces ``os.environ`` (pass ``{}`` to ignore the
        environment). An unknown keyword is a TypeError.
        """
        env = os.environ if env is None else env
        unknown = set(given) - set(ENV)
        if unknown:
            raise TypeError(f"unknown node settings: {sorted(unknown)}")

        def pick(field: str) -> Optional[str]:
            value = given.get(field)
            if value is None:
                value = env.get(ENV[field]) or None
            return value

        root = Path(pick("root")).absolute() if pick("root") else None  # type: ignore[arg-type]  # pick() is Optional; the condition checked it
        return cls(
            ssl_dir=Path(pick("ssl_dir") or _under(root, DEFAULT_SSL_DIR)),
            container_ssl_dir=PurePosixPath(pick("container_ssl_dir") or DEFAULT_CONTAINER_SSL_DIR),
            agent_config=Path(pick("agent_config") or _under(root, DEFAULT_AGENT_CONFIG)),
            container=pick("container") or DEFAULT_CONTAINER,
            state_dir=Path(pick("state_dir") or _under(root, DEFAULT_STATE_DIR)),
            docker_host=pick("docker_host"),
            root=root,
        )

    def with_(self, **changes: object) -> "Node":
        return replace(self, **changes)  # type: ignore[arg-type]  # changes are Node fields by name, each checked by dataclasses.replace at run time

    # the files nginx reads ----------------------------------------------------
    @property
    def cert_path(self) -> Path:
        return self.ssl_dir / CERT_NAME

    @property
    def key_path(self) -> Path:
        return self.ssl_dir / KEY_NAME

    @property
    def container_cert_path(self) -> str:
        return str(self.container_ssl_dir / CERT_NAME)

    @property
    def container_key_path(self) -> str:
        return str(self.container_ssl_dir / KEY_NAME)

    @property
    def metadata_path(self) -> Path:
        return self.state_dir / "certificate.json"
