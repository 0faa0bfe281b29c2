"""What ``import`` takes besides the files and what its check gives back: the password, the report.

The password never comes from a command line (``ps`` would show it): it is
read from a file, an environment variable or a stream (the first line of
standard input), or asked of a person by a callable the caller gives (the
CLI's no-echo prompt), and only when a file turns out to be encrypted.
:class:`Password` is a :data:`~sesam_tls.pemio.PasswordSource`, so
:func:`sesam_tls.import_certificate` takes it as it takes bytes or a callable.

:class:`ImportReport` is the check-only answer (a
:class:`~sesam_tls.validate.Report`) with its JSON form, so a caller prints
it without reaching below the public API.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Mapping, Optional, Union

from .errors import UsageError
from .validate import Report

if TYPE_CHECKING:  # pragma: no cover
    from .bundle import Bundle

__all__ = ["MAX_PASSWORD", "ImportReport", "Password"]

log = logging.getLogger("sesam_tls")

#: A password longer than this is a mistake (the wrong file), not a password.
MAX_PASSWORD = 64 * 1024


@dataclass(frozen=True)
class Password:
    """The password of an encrypted key or PKCS#12 file: ``value``, else what ``ask`` answers.

    Called with a file's name only when that file is encrypted; ``ask`` (a
    prompt) is then asked at most once. Neither is shown by ``repr``. Build
    it with :meth:`given` (or one of the ``from_*`` constructors): they read
    the secret now, so an unreadable password file fails before anything else.
    """

    value: Optional[bytes] = field(default=None, repr=False)
    ask: Optional[Callable[[str], Optional[bytes]]] = field(default=None, repr=False)

    def __call__(self, source: str) -> Optional[bytes]:
        if self.value is not None:
            return self.value
        return self.ask(source) if self.ask is not None else None

    @classmethod
    def from_file(cls, path: Union[str, os.PathLike[str]]) -> "Password":
        """The first line of ``path`` (its newline is not part of it); a FIFO or pipe
        (``<(pass show node)``) is read with a deadline. A file others may read is used, and said."""
        from .fsutil import read_bounded

        try:
            secret, st = read_bounded(path, MAX_PASSWORD)
        except OSError as exc:
            raise UsageError(f"`password_file` {path}: cannot read it ({exc.strerror or exc})") from None
        _warn_if_readable_by_others(str(path), st)
        if len(secret) > MAX_PASSWORD:
            raise UsageError(f"`password_file` {path}: larger than 64 KiB, not a password file")
        return cls(_one_line(secret))

    @classmethod
    def from_env(cls, name: str, env: Optional[Mapping[bytes, bytes]] = None) -> "Password":
        """The value of the environment variable ``name`` as it is (``env``: ``os.environb``)."""
        value = (os.environb if env is None else env).get(name.encode())
        if value is None:
            raise UsageError(f"`password_env` {name}: the environment variable is not set")
        return cls(value)

    @classmethod
    def from_stream(cls, stream: BinaryIO) -> "Password":
        """The first line of ``stream`` (standard input), at most 64 KiB."""
        return cls(_one_line(stream.readline(MAX_PASSWORD)))

    @classmethod
    def given(
        cls,
        *,
        file: Union[str, os.PathLike[str], None] = None,
        env: Optional[str] = None,
        stream: Optional[BinaryIO] = None,
        ask: Optional[Callable[[str], Optional[bytes]]] = None,
    ) -> "Password":
        """The password from the one source given (``file``, then ``env``, then ``stream``);
        else ``ask``, called only if a file is encrypted (None: an encrypted input is refused,
        naming the ways to give a password)."""
        if file:
            return cls.from_file(file)
        if env:
            return cls.from_env(env)
        if stream is not None:
            return cls.from_stream(stream)
        return cls(ask=ask)


def _warn_if_readable_by_others(path: str, st: os.stat_result) -> None:
    """Still used (refusing would break a working setup), but the operator is told."""
    if stat.S_ISREG(st.st_mode) and st.st_mode & 0o044:
        mode = stat.S_IMODE(st.st_mode)
        who = "everyone" if mode & 0o004 else "its group"
        log.warning("`password_file` %s is readable by %s (mode %04o); chmod 600 it", path, who, mode)


def _one_line(data: bytes) -> bytes:
    """A password file's trailing newline is not part of the password."""
    if data.endswith(b"\r\n"):
        return data[:-2]
    return data[:-1] if data.endswith(b"\n") else data


@dataclass(frozen=True)
class ImportReport(Report):
    """``import_certificate(check_only=True)``: every finding, and what would be deployed.

    A :class:`~sesam_tls.validate.Report` (``ok``, ``errors``, ``warnings``,
    ``bundle()``) with its JSON form: :meth:`to_json`.
    """

    @classmethod
    def of(cls, report: Report) -> "ImportReport":
        return cls(**{f.name: getattr(report, f.name) for f in fields(Report)})

    def certificate(self) -> dict[str, Any]:
        """What the certificate is, as JSON values (as ``status`` describes the deployed one)."""
        from .api import describe

        return describe(self.bundle())

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "result": "ok" if self.ok else "refused",
            "errors": [{"code": f.code, "message": f.message} for f in self.errors],
            "warnings": [{"code": f.code, "message": f.message} for f in self.warnings],
        }
        if self.ok:
            bundle: Bundle = self.bundle()
            out["certificate"] = self.certificate()
            out["chain"] = [c.subject.rfc4514_string() for c in bundle.chain]
            out["root_dropped"] = self.dropped_root is not None
        return out
