"""Read and patch the sesam-agent config (``/etc/sesam-agent/config.json``), nothing else.

The file holds secrets (``docker_password``): its content is never printed,
logged or put into an error message. Only the ``nginx.ssl_cert`` and
``nginx.ssl_key`` values are ever changed; every other key keeps its value
and its place.

A config that is a symbolic link (managed elsewhere and linked in) stays a
link: the new text replaces its target, atomically in the target's folder.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .errors import AgentConfigError
from .fsutil import atomic_write, describe_oserror, read_bounded

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
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        # "\ud800" is valid JSON syntax but no character: it could not be written back.
        raise AgentConfigError(
            f"agent config {source} holds a lone UTF-16 surrogate (an escape like \\ud800 that is no character); "
            "fix it by hand, nothing was changed"
        ) from None
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


def _written(path: Path) -> Path:
    """The file a write replaces: the end of ``path``'s chain of links, or ``path`` itself."""
    return Path(os.path.realpath(path)) if os.path.islink(path) else path


@dataclass
class AgentConfig:
    """One read of the config file, so the write can tell if someone else changed it."""

    path: Path
    raw: bytes
    mode: int
    uid: int
    gid: int
    #: The file written: ``path`` itself, or the end of its chain of symbolic links.
    target: Optional[Path] = None

    @classmethod
    def read(cls, path: Path) -> "AgentConfig":
        try:
            raw, st = read_bounded(path, MAX_SIZE)  # a FIFO that never delivers ends at a deadline
        except FileNotFoundError:
            if os.path.islink(path):
                raise AgentConfigError(
                    f"agent config {path} is a symbolic link to {os.path.realpath(path)}, which does not exist"
                ) from None
            raise AgentConfigError(
                f"agent config {path} not found (is the sesam-agent installed? another file is named by "
                "the node's agent_config: `agent_config` or SESAM_TLS_AGENT_CONFIG)"
            ) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise AgentConfigError(f"cannot read agent config {path}: a loop of symbolic links") from None
            raise AgentConfigError(f"cannot read agent config {path}: {describe_oserror(exc)}") from None
        if len(raw) > MAX_SIZE:
            raise AgentConfigError(f"agent config {path} is larger than 1 MiB; refusing to touch it")
        return cls(
            path=Path(path),
            raw=raw,
            mode=st.st_mode & 0o7777,
            uid=st.st_uid,
            gid=st.st_gid,
            target=_written(Path(path)),
        )

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
        """Replace the file with ``data``, keeping mode and owner; refuse if it changed meanwhile.

        Through a symbolic link, the target is replaced (temp file beside it,
        fsync, rename) and the link is left as it is.
        """
        target = self.target or self.path
        try:
            current = self.path.read_bytes()
            moved = _written(self.path) != target
        except OSError as exc:
            raise AgentConfigError(f"cannot read agent config {self.path}: {describe_oserror(exc)}") from None
        if current != self.raw or moved:
            raise AgentConfigError(
                f"agent config {self.path} was changed by someone else while sesam-tls ran; "
                "not overwriting it, run the command again"
            )
        what = f"agent config {self.path}" + (f" (link to {target})" if target != self.path else "")
        atomic_write(target, data, self.mode, uid=self.uid, gid=self.gid, what=what, point="agent-config")
        self.raw = data
