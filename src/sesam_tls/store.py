"""The ssl folder's layout, which makes key and certificate change together.

::

    ssl/
      fullchain.pem -> live/fullchain.pem     fixed links, created once
      privkey.pem   -> live/privkey.pem
      live          -> .versions/<id>          the only thing ever swapped
      .versions/<id>/fullchain.pem, privkey.pem (0600)
      set-aside/<time>/                         the operator's own entries, kept (0700)

Swapping ``live`` is one ``rename``, so a reader (nginx starting at any
moment, after a power cut too) sees either the old pair or the new pair,
never one of each. Every link is relative and stays inside the folder,
because the folder is bind-mounted into the nginx container at another
path. Earlier versions stay beside the live one for rollback.

The operator's pair is never deleted: a matching pair of plain files is
taken over as the first version; anything else at the three names (a pair
that does not load, a real ``live`` folder) is moved to ``set-aside/`` as
it is, and a failed deployment puts it back.
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
from .errors import SesamTLSError, StorageError, one_line
from .failpoints import failpoint
from .fsutil import TMP_MARK, describe_oserror, fsync_dir, make_dirs, set_dir_mode, write_new
from .node import CERT_NAME, KEY_NAME

__all__ = ["SslFolder", "write_probe"]

log = logging.getLogger("sesam_tls")

LIVE = "live"
VERSIONS = ".versions"
ADOPTED = "adopted"
SET_ASIDE = "set-aside"
#: The ssl folder, .versions and each version: nginx reads them through the container's mount.
FOLDER_MODE = 0o755


def write_probe(folder: Path) -> None:
    """Write an empty file in ``folder`` and remove it again: OSError when the folder cannot take
    a new file (read-only mount, full disk, wrong owner). The one write probe: the ssl folder's
    before a deployment, the state folder's in ``check``. Named as a temporary file (``TMP_MARK``),
    so that one left by a killed run is never taken for anything of the operator's."""
    probe = Path(folder) / f"{TMP_MARK}probe-{secrets.token_hex(4)}"
    write_new(probe, b"", 0o600)
    # `sesam-tls check` probes without the lock: a run's temp sweep may
    # have taken the probe already, which still proves the write worked.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(probe)


class SslFolder:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.versions = self.path / VERSIONS
        #: Where this run moved the operator's files that it could not take over, until put back.
        self.set_aside: Optional[Path] = None
        self._bridge: Optional[str] = None

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
            write_probe(self.versions)
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
        for folder in (self.path, self.versions, self.path / SET_ASIDE):
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

    def _inside(self, name: str) -> bool:
        """True when ``name`` resolves inside the folder (nginx cannot follow a link out of its mount)."""
        root = os.path.realpath(self.path)
        return os.path.commonpath([root, os.path.realpath(self.path / name)]) == root

    def _servable_pair(self) -> tuple[Optional[tuple[bytes, bytes]], str]:
        """The operator's pair when it can be taken over as a version: files inside the folder that match.

        A link out of the folder is not followed (nginx cannot follow it
        through the container's mount either, and the tool must never be
        steered into reading or writing elsewhere); a pair that does not load
        and match (an encrypted key nginx opens with ``ssl_password_file``, the
        intermediate before the leaf) is not taken over either: it is set
        aside. Returns the pair, or None and the reason.
        """
        for name in (CERT_NAME, KEY_NAME):
            if not os.path.lexists(self.path / name):
                return None, f"there is no {name}"
            if not self._inside(name):
                return None, f"{name} links outside {self.path}"
        pair = self.read_pair()
        if pair is None:
            return None, "they cannot be read"
        try:
            bundle = Bundle.from_pem(*pair, source=str(self.path))
            matches = key_matches_cert(bundle.key, bundle.leaf)
            reason = "the key does not match the certificate"
        except (SesamTLSError, ValueError, TypeError) as exc:
            matches, reason = False, f"they do not load as a matching pair ({one_line(exc, 120)})"
        return (pair, "") if matches else (None, reason)

    def adopt(self) -> Optional[str]:
        """Take the operator's existing pair into a version, so rollback can return to it.

        Done in an order that keeps the pair consistent at every step: the
        copy is made and ``live`` points at it before either file becomes a
        link. A pair that cannot be taken over, or a ``live`` that is not the
        tool's link, is moved aside instead (:meth:`set_aside_foreign`), never
        deleted. Returns the live version afterwards (None: there is no pair).
        """
        if self.set_aside is not None:  # done already in this run
            return self._bridge
        cert, key, live = self.path / CERT_NAME, self.path / KEY_NAME, self.path / LIVE
        ours = [p.is_symlink() and os.readlink(p) == f"{LIVE}/{p.name}" for p in (cert, key)]
        foreign_live = os.path.lexists(live) and self.live_version() is None
        if not foreign_live:
            if all(ours) or (any(ours) and self.live_version() is not None):
                return self.live_version()
            if not (os.path.lexists(cert) or os.path.lexists(key)):
                return None  # nothing to keep: the new pair simply takes over
        pair, reason = self._servable_pair() if not foreign_live else (None, f"{LIVE} is not sesam-tls's link")
        if pair is None:
            return self.set_aside_foreign(reason)
        now = dt.datetime.now(dt.timezone.utc)
        version = self._stage_bytes(f"{now:%Y%m%dT%H%M%SZ}-{ADOPTED}", *pair, point="store.adopt")
        try:
            self._swap_link(LIVE, f"{VERSIONS}/{version}", "store.adopt.after-live-swap")
            self._link_pair("store.adopt")
        except OSError as exc:
            raise StorageError(f"cannot switch certificates in {self.path}: {describe_oserror(exc)}") from exc
        return version

    # the operator's files that cannot be taken over -----------------------------
    def set_aside_foreign(self, reason: str) -> Optional[str]:
        """Move what the operator has at ``fullchain.pem``, ``privkey.pem`` and ``live`` aside, kept exactly.

        Each entry keeps its name, mode, owner and content inside
        ``set-aside/<time>/`` (a hard link, or for a folder a rename: the very
        same file). While the names change, ``live`` points at a bridge
        version holding a copy of the bytes nginx reads now, so a reader sees
        the operator's pair or the new pair at every moment, never one of
        each. :meth:`put_back` undoes it; it stays aside once the new pair is
        deployed. Returns the bridge version (None when there was no readable
        pair inside the folder to bridge).
        """
        try:
            pair = None
            if all(os.path.lexists(self.path / n) and self._inside(n) for n in (CERT_NAME, KEY_NAME)):
                pair = self.read_pair()
            now = dt.datetime.now(dt.timezone.utc)
            self._bridge = self._stage_bytes(f"{now:%Y%m%dT%H%M%SZ}-{SET_ASIDE}", *pair,
                                             point="store.adopt") if pair else None
            self.set_aside = self._make_aside(f"{now:%Y%m%dT%H%M%SZ}")
        except BaseException as exc:
            self._drop_bridge()
            if isinstance(exc, OSError):
                raise StorageError(f"cannot set the existing pair in {self.path} aside: {describe_oserror(exc)}") from exc
            raise
        try:
            live = self.path / LIVE
            if os.path.lexists(live) and stat.S_ISDIR(os.lstat(live).st_mode):
                self._names_as_plain_copies()
                os.rename(live, self.set_aside / LIVE)
                fsync_dir(self.path)
            if self._bridge:
                self._swap_link(LIVE, f"{VERSIONS}/{self._bridge}", "store.adopt.after-live-swap")
                self._link_pair("store.adopt")
        except BaseException as exc:
            self.put_back()
            if isinstance(exc, OSError):
                raise StorageError(f"cannot set the existing pair in {self.path} aside: {describe_oserror(exc)}") from exc
            raise
        log.warning("the existing %s and %s in %s cannot be taken over (%s); not keeping them as a version: moved "
                    "them aside to %s (names, modes and content kept; a failed deployment puts them back)",
                    CERT_NAME, KEY_NAME, self.path, reason, self.set_aside)
        return self._bridge

    def put_back(self) -> Optional[str]:
        """Return what :meth:`set_aside_foreign` moved aside to its names, exactly; say what is served now.

        Names first, while ``live`` points at the bridge (the same bytes),
        then ``live`` itself; a folder that was ``live`` comes back after the
        names were made plain copies, so no name dangles meanwhile.
        """
        aside = self.set_aside
        if aside is None:
            return None
        live = self.path / LIVE
        if self._bridge and os.path.islink(live):
            self._swap_link(LIVE, f"{VERSIONS}/{self._bridge}", "store.adopt.after-live-swap")
        if os.path.isdir(aside / LIVE) and not os.path.islink(aside / LIVE):
            if self._bridge:
                self._names_as_plain_copies()
            if os.path.islink(live):
                os.unlink(live)
            os.rename(aside / LIVE, live)
        for name in (CERT_NAME, KEY_NAME, LIVE):
            if os.path.lexists(aside / name):
                os.replace(aside / name, self.path / name)
            elif name != LIVE or not os.path.isdir(live) or os.path.islink(live):
                if os.path.islink(self.path / name):  # the tool's link where the operator had nothing
                    os.unlink(self.path / name)
        fsync_dir(self.path)
        with contextlib.suppress(OSError):
            os.rmdir(aside)
            os.rmdir(aside.parent)  # only when no earlier run left anything there
        self._drop_bridge()
        self.set_aside = None
        return f"put back the operator's own {CERT_NAME} and {KEY_NAME}, as they were"

    def _make_aside(self, stamp: str) -> Path:
        """``set-aside/<stamp>/`` holding a hard link of every non-folder entry at the three names."""
        top = self.path / SET_ASIDE
        try:
            os.mkdir(top, 0o700)  # the operator's key may be in it: for root only
        except FileExistsError:
            pass
        if not stat.S_ISDIR(os.lstat(top).st_mode):
            raise StorageError(f"{top} is not a directory (a symbolic link?); refusing to use it")
        tmp = top / f"{TMP_MARK}{stamp}-{secrets.token_hex(3)}"
        os.mkdir(tmp, 0o700)
        for name in (CERT_NAME, KEY_NAME, LIVE):
            path = self.path / name
            if os.path.lexists(path) and not stat.S_ISDIR(os.lstat(path).st_mode):
                os.link(path, tmp / name, follow_symlinks=False)
        fsync_dir(tmp)
        final = top / stamp
        if os.path.lexists(final):
            final = top / f"{stamp}-{secrets.token_hex(3)}"
        os.rename(tmp, final)
        fsync_dir(top)
        return final

    def _names_as_plain_copies(self) -> None:
        """Replace both names by plain copies of the bridge's files: the same bytes, through no link."""
        if not self._bridge:
            return
        for name, mode in ((CERT_NAME, 0o644), (KEY_NAME, 0o600)):
            tmp = self.path / f".{name}{TMP_MARK}{secrets.token_hex(6)}"
            write_new(tmp, (self.versions / self._bridge / name).read_bytes(), mode)
            os.replace(tmp, self.path / name)
        fsync_dir(self.path)

    def _drop_bridge(self) -> None:
        if self._bridge:
            shutil.rmtree(self.versions / self._bridge, ignore_errors=True)
            self._bridge = None

    def discard(self, version: Optional[str]) -> None:
        """Remove a version this run staged and no longer needs (it holds a key): failed runs leave none."""
        if version and version != self.live_version():
            shutil.rmtree(self.versions / version, ignore_errors=True)
