"""Durable, atomic file writes. The final mode is set when the file is created."""

from __future__ import annotations

import errno
import os
import select
import stat
import time
from pathlib import Path
from typing import Mapping, Optional, Union

from .errors import StorageError
from .failpoints import failpoint

__all__ = [
    "atomic_write",
    "fsync_dir",
    "write_new",
    "sweep_temp_siblings",
    "TMP_MARK",
    "describe_oserror",
    "read_bounded",
    "input_timeout",
    "make_dirs",
    "set_dir_mode",
]

#: Every temporary name we create contains this, so a later run can sweep them.
TMP_MARK = ".sesam-tls-tmp-"


def describe_oserror(exc: OSError) -> str:
    reason = {
        errno.EROFS: "read-only file system",
        errno.ENOSPC: "no space left on device",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
        errno.ELOOP: "refusing to follow a symbolic link",
        errno.EEXIST: "already exists",
        errno.EISDIR: "a folder, not a file",
    }.get(exc.errno or 0)
    if isinstance(exc, TimeoutError) and exc.strerror:
        return exc.strerror
    return reason or (exc.strerror or str(exc)).lower()


#: How long an input that is not a regular file (a FIFO, a pipe from
#: ``<(pass show ...)``, a device) may take to deliver, in seconds.
INPUT_TIMEOUT = 10.0
INPUT_TIMEOUT_ENV = "SESAM_TLS_INPUT_TIMEOUT"


def input_timeout(environ: Mapping[str, str] = os.environ) -> float:
    """:data:`INPUT_TIMEOUT`, or ``$SESAM_TLS_INPUT_TIMEOUT`` when it is a positive number."""
    try:
        value = float(environ.get(INPUT_TIMEOUT_ENV, ""))
    except ValueError:
        return INPUT_TIMEOUT
    return value if 0 < value < 3600 else INPUT_TIMEOUT


def read_bounded(
    path: Union[str, os.PathLike[str]], limit: int, *, timeout: Optional[float] = None
) -> tuple[bytes, os.stat_result]:
    """At most ``limit + 1`` bytes of ``path`` (so the caller can tell "too large") and its stat.

    A regular file is read as usual. Anything else (a FIFO no program ever
    writes to, a terminal, ``/dev/zero``) is opened without blocking and read
    with poll() until end of file, ``limit + 1`` bytes or ``timeout``
    (default :func:`input_timeout`); the deadline raises TimeoutError (an
    OSError, whose message says how long it waited). A pipe that delivers,
    as from ``--password-file <(pass show node)``, is read in full.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        if stat.S_ISREG(st.st_mode):
            os.set_blocking(fd, True)
            return _read_all(fd, limit + 1), st
        wait = input_timeout() if timeout is None else timeout
        return _read_until(fd, limit + 1, time.monotonic() + wait, wait), st
    finally:
        os.close(fd)


def _read_all(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    while size > 0:
        chunk = os.read(fd, min(size, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _read_until(fd: int, size: int, deadline: float, wait: float) -> bytes:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    chunks: list[bytes] = []
    while size > 0:
        left = deadline - time.monotonic()
        # A FIFO that no writer has opened yet reports nothing (Linux), so
        # poll() waits for the first writer too, not only for its data.
        if left <= 0 or not poller.poll(max(1, int(left * 1000))):
            if time.monotonic() < deadline:
                continue
            what = "no end of file" if chunks else "nothing to read"
            raise TimeoutError(
                errno.ETIMEDOUT, f"{what} within {wait:g} s (a named pipe no program writes to, or never closes?)"
            )
        try:
            chunk = os.read(fd, min(size, 1 << 16))
        except BlockingIOError:
            continue
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new(path: Path, data: bytes, mode: int, *, uid: int = -1, gid: int = -1) -> None:
    """Create ``path`` (which must not exist) with ``mode`` from its first byte.

    O_EXCL|O_NOFOLLOW: never write through a planted symlink or an old file.
    The umask can only take bits away, and the fchmod afterwards only
    widens to exactly ``mode``, so a secret is never readable by others.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
        if (uid != -1 or gid != -1) and os.geteuid() == 0:
            os.fchown(fd, uid, gid)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(path)
        raise
    os.close(fd)


def atomic_write(
    path: Path,
    data: bytes,
    mode: int = 0o644,
    *,
    uid: int = -1,
    gid: int = -1,
    what: Optional[str] = None,
    point: Optional[str] = None,
) -> None:
    """Replace ``path`` with ``data``: temp file in the same folder, fsync, rename, fsync folder.

    ``point`` names the failpoints after the temp file and after the rename.
    """
    import secrets  # here, not at the top: it loads hmac and hashlib, and most runs write nothing

    path = Path(path)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{secrets.token_hex(6)}")
    try:
        write_new(tmp, data, mode, uid=uid, gid=gid)
        if point:
            failpoint(f"{point}.after-temp-write")
        try:
            os.replace(tmp, path)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        fsync_dir(path.parent)
        if point:
            failpoint(f"{point}.after-rename")
    except OSError as exc:
        raise StorageError(f"cannot write {what or path}: {describe_oserror(exc)}") from exc


def sweep_temp_siblings(path: Path) -> None:
    """Remove the temp files an interrupted :func:`atomic_write` of ``path`` left behind.

    Only for files written under the node lock: another writer's temp file
    would be taken away from under it otherwise. The temp file of the agent
    config holds its secrets, so it must not linger.
    """
    path = Path(path)
    try:
        entries = os.listdir(path.parent)
    except OSError:
        return
    prefix = f".{path.name}{TMP_MARK}"
    for entry in entries:
        if entry.startswith(prefix):
            _unlink_quietly(path.parent / entry)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def make_dirs(path: Path, mode: int, *, parent_mode: int = 0o755) -> None:
    """Create ``path`` (``mode``) and its missing parents (``parent_mode``), whatever the umask.

    ``mkdir`` takes the umask off the mode (``umask 000`` made a 0777 ssl
    folder, ``umask 077`` a 0700 one); each folder made here gets its mode
    set exactly, through a descriptor that refuses a link planted meanwhile.
    Folders that exist already are left as they are.
    """
    path = Path(path)
    missing = []
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        wanted = mode if folder == path else parent_mode
        try:
            os.mkdir(folder, wanted)
        except FileExistsError:
            continue  # another process made it a moment ago
        set_dir_mode(folder, wanted)


def set_dir_mode(folder: Path, mode: int) -> None:
    """``chmod`` a folder without following a link planted at its name."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
