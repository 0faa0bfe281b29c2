"""The ssl folder's layout, which makes key and certificate change together.

::

    ssl/
      fullchain.pem -> live/fullchain.pem     fixed links, created once
      privkey.pem   -> live/privkey.pem
      live          -> .versions/<id>          the only thing ever swapped
      .versions/<id>/fullchain.pem, privkey.pem (0600)

Swapping ``live`` is one ``rename``, so a reader (nginx starting at any
moment, after a power cut too) sees either the old pair or the new pair,
never one of each. Every link is relative and stays inside the folder,
because the folder is bind-mounted into the nginx container at another
path. Earlier versions stay beside the live one for rollback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import Iterable, Optional

from .bundle import Bundle, key_matches_cert
from .errors import SesamTLSError, StorageError
from .failpoints import failpoint
from .fsutil import TMP_MARK, describe_oserror, fsync_dir, make_dirs, set_dir_mode, write_new
from .node import CERT_NAME, KEY_NAME

__all__ = ["SslFolder"]

log = logging.getLogger("sesam_tls")

LIVE = "live"
VERSIONS = ".versions"
ADOPTED = "adopted"
#: The ssl folder, .versions and each version: nginx reads them through the container's mount.
FOLDER_MODE = 0o755


class SslFolder:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.versions = self.path / VERSIONS

    # reading ------------------------------------------------------------------
    def live_version(self) -> Optional[str]:
        """The version ``live`` points at, or None before the first deployment."""
        try:
            target = os.readlink(self.path / LIVE)
        except OSError:
            return None
        parts = Path(target).parts
        if len(parts) == 2 and parts[0] == VERSIONS:
            return parts[1]
        return None

    def read_pair(self) -> Optional[tuple[bytes, bytes]]:
        """The certificate and key bytes as nginx would read them now."""
        try:
            return (self.path / CERT_NAME).read_bytes(), (self.path / KEY_NAME).read_bytes()
        except OSError:
            return None

    def version_ids(self) -> list[str]:
        """Version folders, oldest first (by creation, then name)."""
        try:
            found = [p for p in self.versions.iterdir() if TMP_MARK not in p.name]
            return [p.name for p in sorted(found, key=lambda p: (p.lstat().st_mtime_ns, p.name))]
        except OSError:
            return []

    def read_version(self, version: str) -> tuple[bytes, bytes]:
        folder = self.versions / version
        return (folder / CERT_NAME).read_bytes(), (folder / KEY_NAME).read_bytes()

    # writing --------------------------------------------------------------------
    def check_access(self) -> None:
        """Without writing anything: the folder, or the nearest one above it that exists, is writable."""
        path = self.path
        while not os.path.lexists(path) and path != path.parent:
            path = path.parent
        if os.access(path, os.W_OK):
            return
        try:
            read_only = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
        except OSError:
            read_only = False
        reason = "read-only file system" if read_only else "permission denied"
        raise StorageError(f"cannot write to the ssl folder {self.path}: {reason}")

    def check_writable(self) -> None:
        """Fail before anything is written when the folder cannot take a new version."""
        try:
            make_dirs(self.path, FOLDER_MODE)
            self._versions_dir()
            probe = self.versions / f"{TMP_MARK}probe-{secrets.token_hex(4)}"
            write_new(probe, b"", 0o600)
            # `sesam-tls check` probes without the lock: a run's temp sweep may
            # have taken the probe already, which still proves the write worked.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(probe)
        except OSError as exc:
            raise StorageError(f"cannot write to the ssl folder {self.path}: {describe_oserror(exc)}") from exc

    def stage(self, bundle: Bundle, *, now: Optional[dt.datetime] = None) -> str:
        """Write ``bundle`` as a new version folder; nothing nginx reads changes yet."""
        now = now or dt.datetime.now(dt.timezone.utc)
        version = f"{now:%Y%m%dT%H%M%SZ}-{bundle.fingerprint[:12]}"
        return self._stage_bytes(version, bundle.fullchain_pem(), bundle.key_pem())

    def activate(self, version: Optional[str]) -> Optional[str]:
        """Point ``live`` at ``version`` atomically; ``None`` removes the pair again.

        Returns the version that was live before (the operator's own pair,
        taken into a version folder first, counts as one).
        """
        try:
            if version is None:
                for name in (CERT_NAME, KEY_NAME, LIVE):
                    if (self.path / name).is_symlink():
                        os.unlink(self.path / name)
                fsync_dir(self.path)
                return None
            if not (self.versions / version).is_dir():
                raise StorageError(f"no version {version} in {self.versions}")
            previous = self.adopt()
            # On a fresh folder the links come first and dangle until `live`
            # exists: the pair then appears with one rename, never one half.
            self._link_pair("store")
            self._swap_link(LIVE, f"{VERSIONS}/{version}", "store.after-live-swap")
            return previous
        except OSError as exc:
            raise StorageError(f"cannot switch certificates in {self.path}: {describe_oserror(exc)}") from exc

    def prune(self, keep: Iterable[Optional[str]], *, retain: int = 3) -> None:
        """Delete old versions, keeping ``keep`` and the ``retain`` newest."""
        wanted = {k for k in keep if k} | set(self.version_ids()[-retain:])
        for version in self.version_ids():
            if version not in wanted:
                shutil.rmtree(self.versions / version, ignore_errors=True)
        self.sweep_temp()

    def sweep_temp(self) -> None:
        """Remove temp files and half-written versions left by an interrupted run."""
        for folder in (self.path, self.versions):
            try:
                entries = list(folder.iterdir())
            except OSError:
                continue
            for entry in entries:
                if TMP_MARK in entry.name:
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        try:
                            os.unlink(entry)
                        except OSError:
                            pass

    # internals ------------------------------------------------------------------
    def _versions_dir(self) -> None:
        try:
            st = os.lstat(self.versions)
        except FileNotFoundError:
            try:
                os.mkdir(self.versions, FOLDER_MODE)
                set_dir_mode(self.versions, FOLDER_MODE)
            except FileExistsError:  # another process made it a moment ago
                pass
            st = os.lstat(self.versions)
        if not stat.S_ISDIR(st.st_mode):
            raise StorageError(f"{self.versions} is not a directory (a symbolic link?); refusing to use it")

    def _stage_bytes(self, version: str, cert: bytes, key: bytes, point: str = "store") -> str:
        try:
            make_dirs(self.path, FOLDER_MODE)
            self._versions_dir()
            if (self.versions / version).exists():
                version = f"{version}-{secrets.token_hex(3)}"
            # Build under a temp name, then rename: a crash never leaves a
            # half-written version that looks complete.
            tmp = self.versions / f"{TMP_MARK}{version}"
            os.mkdir(tmp, FOLDER_MODE)
            set_dir_mode(tmp, FOLDER_MODE)
            write_new(tmp / CERT_NAME, cert, 0o644)
            failpoint(f"{point}.after-stage-cert")
            write_new(tmp / KEY_NAME, key, 0o600)
            failpoint(f"{point}.after-stage-key")
            fsync_dir(tmp)
            os.rename(tmp, self.versions / version)
            fsync_dir(self.versions)
            failpoint(f"{point}.after-version-rename")
        except OSError as exc:
            raise StorageError(f"cannot write to the ssl folder {self.path}: {describe_oserror(exc)}") from exc
        return version

    def _link_pair(self, point: str) -> None:
        """Make the two fixed links (certificate first: it matches ``live`` already)."""
        for name, step in ((CERT_NAME, "cert-link"), (KEY_NAME, "key-link")):
            if os.path.islink(self.path / name) and os.readlink(self.path / name) == f"{LIVE}/{name}":
                continue
            self._swap_link(name, f"{LIVE}/{name}", f"{point}.after-{step}")

    def _swap_link(self, name: str, target: str, point: str) -> None:
        tmp = self.path / f".{name}{TMP_MARK}{secrets.token_hex(6)}"
        os.symlink(target, tmp)
        try:
            os.replace(tmp, self.path / name)
        except BaseException:
            os.unlink(tmp)
            raise
        fsync_dir(self.path)
        failpoint(point)

    def _servable_pair(self) -> Optional[tuple[bytes, bytes]]:
        """The operator's pair when it is worth keeping: files inside the folder that match.

        A link out of the folder is not followed (nginx cannot follow it
        through the container's mount either, and the tool must never be
        steered into reading or writing elsewhere); a key that does not match
        its certificate is not a pair to roll back to.
        """
        root = os.path.realpath(self.path)
        for name in (CERT_NAME, KEY_NAME):
            if not os.path.lexists(self.path / name):
                return None
            if os.path.commonpath([root, os.path.realpath(self.path / name)]) != root:
                log.warning("%s links outside %s; not keeping it, the new pair replaces the link", name, self.path)
                return None
        pair = self.read_pair()
        if pair is None:
            return None
        try:
            bundle = Bundle.from_pem(*pair, source=str(self.path))
            matches = key_matches_cert(bundle.key, bundle.leaf)
        except (SesamTLSError, ValueError, TypeError):
            matches = False
        if not matches:
            log.warning("the existing %s and %s in %s are not a matching pair; not keeping them", CERT_NAME, KEY_NAME,
                        self.path)
            return None
        return pair

    def adopt(self) -> Optional[str]:
        """Take the operator's existing pair into a version, so rollback can return to it.

        Done in an order that keeps the pair consistent at every step: the
        copy is made and ``live`` points at it before either file becomes a
        link. Returns the live version afterwards (None: there is no pair).
        """
        cert, key = self.path / CERT_NAME, self.path / KEY_NAME
        ours = [p.is_symlink() and os.readlink(p) == f"{LIVE}/{p.name}" for p in (cert, key)]
        if all(ours) or (any(ours) and self.live_version() is not None):
            return self.live_version()
        pair = self._servable_pair()
        if pair is None:
            return None  # nothing usable to keep: the new pair simply takes over
        now = dt.datetime.now(dt.timezone.utc)
        version = self._stage_bytes(f"{now:%Y%m%dT%H%M%SZ}-{ADOPTED}", *pair, point="store.adopt")
        try:
            self._swap_link(LIVE, f"{VERSIONS}/{version}", "store.adopt.after-live-swap")
            self._link_pair("store.adopt")
        except OSError as exc:
            raise StorageError(f"cannot switch certificates in {self.path}: {describe_oserror(exc)}") from exc
        return version
