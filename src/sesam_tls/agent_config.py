"""Read and patch the sesam-agent config (``/etc/sesam-agent/config.json``), nothing else.

The file holds secrets (``docker_password``): its content is never printed,
logged or put into an error message. Only the ``nginx.ssl_cert`` and
``nginx.ssl_key`` values are ever changed; every other key keeps its value
and its place.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .errors import AgentConfigError
from .fsutil import atomic_write, describe_oserror

__all__ = ["AgentConfig", "plan_patch"]

MAX_SIZE = 1 << 20


def _parse(text: str, source: Path) -> dict[str, Any]:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        dup = {k for k in keys if keys.count(k) > 1}
        if dup:
            raise AgentConfigError(
                f"agent config {source} has the key {sorted(dup)[0]!r} twice; fix it by hand, nothing was changed"
            )
        return dict(pairs)

    def not_json(what: str) -> Any:
        # Python reads NaN, Infinity and 1e999 but would write them back as
        # NaN/Infinity, which is not JSON: the agent could not read its config.
        raise AgentConfigError(
            f"agent config {source} holds the number {what[:20]}, which JSON cannot carry; fix it by hand, "
            "nothing was changed"
        )

    def finite(value: str) -> float:
        number = float(value)
        return number if math.isfinite(number) else not_json(value)

    try:
        data = json.loads(text, object_pairs_hook=no_duplicates, parse_constant=not_json, parse_float=finite)
    except json.JSONDecodeError as exc:
        # exc.msg and the position only: the document itself holds secrets.
        raise AgentConfigError(
            f"agent config {source} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "nothing was changed"
        ) from None
    except RecursionError:
        raise AgentConfigError(f"agent config {source} is nested too deeply to be a config; nothing was changed") from None
    if not isinstance(data, dict):
        raise AgentConfigError(f"agent config {source} is not a JSON object; nothing was changed")
    nginx = data.get("nginx")
    if nginx is not None and not isinstance(nginx, dict):
        raise AgentConfigError(f"agent config {source}: the 'nginx' entry is not an object; nothing was changed")
    return data


def _indent_of(text: str) -> Any:
    match = re.search(r"\n([ \t]+)\S", text)
    if not match:
        return 2 if "\n" in text.strip() or not text.strip() else None
    ws = match.group(1)
    return "\t" if ws.startswith("\t") else len(ws)


def plan_patch(text: str, cert_path: str, key_path: str, *, source: Path) -> Optional[str]:
    """The new config text, or None when it already names ``cert_path``/``key_path``.

    Pure: parses, checks, and returns what should be written.
    """
    data = _parse(text, source)
    nginx = data.get("nginx") or {}
    if nginx.get("ssl_cert") == cert_path and nginx.get("ssl_key") == key_path:
        return None
    nginx = dict(nginx)
    nginx["ssl_cert"] = cert_path
    nginx["ssl_key"] = key_path
    data["nginx"] = nginx  # an existing key keeps its place; a new one goes last
    return json.dumps(data, indent=_indent_of(text), ensure_ascii=False) + "\n"


@dataclass
class AgentConfig:
    """One read of the config file, so the write can tell if someone else changed it."""

    path: Path
    raw: bytes
    mode: int
    uid: int
    gid: int

    @classmethod
    def read(cls, path: Path) -> "AgentConfig":
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                raw = f.read(MAX_SIZE + 1)
        except FileNotFoundError:
            raise AgentConfigError(
                f"agent config {path} not found (is the sesam-agent installed? another file is named by "
                "the node's agent_config: --agent-config or SESAM_TLS_AGENT_CONFIG)"
            ) from None
        except OSError as exc:
            raise AgentConfigError(f"cannot read agent config {path}: {describe_oserror(exc)}") from None
        if len(raw) > MAX_SIZE:
            raise AgentConfigError(f"agent config {path} is larger than 1 MiB; refusing to touch it")
        return cls(path=Path(path), raw=raw, mode=st.st_mode & 0o7777, uid=st.st_uid, gid=st.st_gid)

    def text(self) -> str:
        try:
            return self.raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise AgentConfigError(f"agent config {self.path} is not UTF-8 text; nothing was changed") from None

    def values(self) -> dict[str, Any]:
        return _parse(self.text(), self.path)

    def ssl_paths(self) -> tuple[Optional[str], Optional[str]]:
        nginx = self.values().get("nginx") or {}
        return nginx.get("ssl_cert"), nginx.get("ssl_key")

    def plan(self, cert_path: str, key_path: str) -> Optional[bytes]:
        new = plan_patch(self.text(), cert_path, key_path, source=self.path)
        return None if new is None else new.encode("utf-8")

    def write(self, data: bytes) -> None:
        """Replace the file with ``data``, keeping mode and owner; refuse if it changed meanwhile."""
        try:
            current = self.path.read_bytes()
        except OSError as exc:
            raise AgentConfigError(f"cannot read agent config {self.path}: {describe_oserror(exc)}") from None
        if current != self.raw:
            raise AgentConfigError(
                f"agent config {self.path} was changed by someone else while sesam-tls ran; "
                "not overwriting it, run the command again"
            )
        atomic_write(
            self.path, data, self.mode, uid=self.uid, gid=self.gid, what=f"agent config {self.path}", point="agent-config"
        )
        self.raw = data
