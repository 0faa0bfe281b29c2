"""What sesam-tls keeps in its state folder: the managed certificate's metadata, the lock.

``certificate.json`` describes what the certificate *is* (provider, names,
key type, validity, where it is deployed), never the command line that made
it, and never a secret. Its ``schema`` number changes whenever a field's
meaning does; readers refuse a schema newer than they know.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import logging
import os
import stat
import time
from pathlib import Path
from typing import Any, Iterator, Optional

from .errors import LockError, StorageError
from .fsutil import TMP_MARK, atomic_write, describe_oserror, make_dirs, sweep_temp_siblings

__all__ = ["SCHEMA", "load_metadata", "save_metadata", "node_lock"]

SCHEMA = 1

log = logging.getLogger("sesam_tls")


def load_metadata(path: Path) -> Optional[dict[str, Any]]:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: "[[[[..." nested too deeply
        raise StorageError(f"cannot read {path}: {exc.__class__.__name__}; move it aside to start afresh") from None
    if not isinstance(data, dict) or not isinstance(data.get("schema"), int):
        raise StorageError(f"{path} is not a sesam-tls metadata file; move it aside to start afresh")
    if data["schema"] > SCHEMA:
        raise StorageError(f"{path} has schema {data['schema']}, newer than this sesam-tls knows ({SCHEMA})")
    problem = _shape_problem(data)
    if problem:
        raise StorageError(f"{path}: {problem}; fix it or move it aside to start afresh")
    return data


#: Sections and the fields the renewal decision reads: a hand-edited file must
#: fail here with one line, not later in ``renew`` or ``status`` with a traceback.
_SECTIONS = ("request", "certificate", "deployment", "renewal", "hooks", "provider_settings")
_TIMES = {"certificate": ("not_before", "not_after"), "renewal": ("last_attempt", "last_failure", "last_success")}
_ARI_TIMES = ("start", "end", "chosen", "next_poll")


def _shape_problem(data: dict[str, Any]) -> Optional[str]:
    for name in _SECTIONS:
        if data.get(name) is not None and not isinstance(data[name], dict):
            return f"'{name}' is not an object"
    if data.get("history") is not None and not isinstance(data["history"], list):
        return "'history' is not a list"
    if data.get("provider") is not None and not isinstance(data["provider"], str):
        return "'provider' is not a string"
    renewal = data.get("renewal") or {}
    failures = renewal.get("failures")
    if failures is not None and (type(failures) is not int or not 0 <= failures < 1_000_000):
        return "'renewal.failures' is not a small whole number"
    ari = renewal.get("ari")
    if ari is not None and not isinstance(ari, dict):
        return "'renewal.ari' is not an object"
    fields = [(f"{section}.{key}", (data.get(section) or {}).get(key)) for section, keys in _TIMES.items() for key in keys]
    fields += [(f"renewal.ari.{key}", (ari or {}).get(key)) for key in _ARI_TIMES]
    for name, value in fields:
        if value is not None and value != "" and not _is_time(value):
            return f"'{name}' is not a date and time"
    return None


def _is_time(value: Any) -> bool:
    """An ISO 8601 time far enough from the calendar's ends to add a backoff or a window to."""
    if not isinstance(value, str):
        return False
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return 100 <= parsed.year <= 9000


def save_metadata(path: Path, data: dict[str, Any]) -> None:
    _ensure_dir(path.parent)
    body = json.dumps({"schema": SCHEMA, **data}, indent=2, sort_keys=False) + "\n"
    sweep_temp_siblings(path)
    atomic_write(path, body.encode(), 0o644, what=f"metadata {path}", point="metadata")


#: What sesam-tls keeps in its state folder; a folder holding anything else is not tightened.
_OURS = ("lock", "certificate.json", "accounts")
_WARNED: set[Path] = set()  # once per run, not at every write


def _ensure_dir(path: Path) -> None:
    """The state folder, 0700: it holds the hook commands (certificate.json) and the ACME account keys."""
    try:
        make_dirs(path, 0o700)
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            _tighten(path, mode)
    except OSError as exc:
        raise StorageError(f"cannot create state folder {path}: {describe_oserror(exc)}") from None


def _tighten(path: Path, mode: int) -> None:
    """An older or hand-made state folder open to others becomes 0700, unless it is not only ours."""
    foreign = [name for name in os.listdir(path) if name not in _OURS and TMP_MARK not in name]
    if foreign:
        if path in _WARNED:
            return
        _WARNED.add(path)
        log.warning("the state folder %s is open to others (mode %04o) and holds files sesam-tls did not make "
                    "(%s); not changing it: chmod 700 it, or choose another --state-dir", path, mode, foreign[0])
        return
    os.chmod(path, 0o700)
    log.warning("tightened the state folder %s from mode %04o to 0700 (it holds the hook commands)", path, mode)


@contextlib.contextmanager
def node_lock(state_dir: Path, *, wait: float = 10.0) -> Iterator[None]:
    """One sesam-tls run at a time per node; a second one waits ``wait`` s, then fails."""
    _ensure_dir(state_dir)
    path = state_dir / "lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StorageError(f"cannot open lock {path}: {describe_oserror(exc)}") from None
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                    raise LockError(f"another sesam-tls run (pid {holder}) holds {path}; try again later") from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
