"""Bring your own certificate: the operator's files become a bundle, if they pass every check.

The provider reads the files (at most 1 MiB each), decodes them by content
(:mod:`sesam_tls.pemio`) and checks them (:mod:`sesam_tls.validate`). Like
every provider it writes nothing; the deploy pipeline writes the key
unencrypted (nginx cannot ask for a passphrase) with mode 0600.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import Any, Callable, Optional, Union

from ..bundle import Bundle
from ..errors import InputError
from ..fsutil import describe_oserror, read_bounded
from ..pemio import MAX_INPUT, Decoded, PasswordSource, decode
from ..validate import ERROR, Finding, Report, Sourced, validate
from .base import CertRequest

__all__ = ["Imported", "read_input"]

log = logging.getLogger("sesam_tls")

Password = Union[bytes, PasswordSource, None]


def read_input(path: Path) -> bytes:
    """The file's bytes; InputError when it cannot be read or is larger than 1 MiB.

    A FIFO or pipe is read with a deadline (:func:`~sesam_tls.fsutil.read_bounded`).
    """
    try:
        data, _ = read_bounded(path, MAX_INPUT)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: a folder, not a file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it: {describe_oserror(exc)}") from None
    if len(data) > MAX_INPUT:
        raise InputError(f"{path}: larger than 1 MiB; not a certificate or key file")
    return data


class Imported:
    """A provider over the operator's own files: ``cert_file`` (PEM, DER or PKCS#12),
    optional ``key_file`` and ``chain_file``.

    ``password`` is bytes, or a callable that gets the file's name and
    returns bytes (or None), called only when a file turns out to be
    encrypted. It is used for decoding and then forgotten.
    """

    name = "import"
    #: a bundle the gate refuses is an unusable input file (exit 3), as every import refusal
    refused_as = InputError

    def __init__(
        self,
        cert_file: Union[str, os.PathLike[str]],
        *,
        key_file: Union[str, os.PathLike[str], None] = None,
        chain_file: Union[str, os.PathLike[str], None] = None,
        password: Password = None,
        expiry_warning_days: int = 14,
        names_origin: str = "given with --domain",
        clock: Optional[Callable[[], dt.datetime]] = None,
    ) -> None:
        self.files = tuple(Path(p) for p in (cert_file, key_file, chain_file) if p is not None)
        self._cert_file = Path(cert_file)
        self._key_file = Path(key_file) if key_file is not None else None
        self._chain_file = Path(chain_file) if chain_file is not None else None
        self._password = password
        self._asked = False
        self._secret: Optional[bytes] = None
        self.expiry_warning_days = expiry_warning_days
        self.names_origin = names_origin
        self._clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self._decoded: Optional[tuple[list[Decoded], list[Finding]]] = None
        #: The one validation of a run: the names it was made for, and its report.
        self._report: Optional[tuple[tuple[str, ...], Report]] = None

    def __repr__(self) -> str:  # never the password
        return f"Imported({', '.join(str(p) for p in self.files)})"

    @property
    def origin(self) -> str:
        """Where the bundle comes from, for the gate's messages."""
        return ", ".join(str(p) for p in self.files)

    def settings(self) -> dict[str, Any]:
        """Where the certificate came from, for the metadata. No secret."""
        return {
            "cert_file": str(self._cert_file.absolute()),
            "key_file": str(self._key_file.absolute()) if self._key_file else None,
            "chain_file": str(self._chain_file.absolute()) if self._chain_file else None,
        }

    # the two verbs -----------------------------------------------------------
    def check(self, request: CertRequest) -> Report:
        """Every finding for these files and ``request``'s names; raises nothing for bad input.

        Validated once for the same names: ``import`` checks before the node lock and
        :meth:`issue` deploys that same report, which the gate takes as it is (:meth:`report_for`).
        """
        names = tuple(request.identifiers)
        if self._report is not None and self._report[0] == names:
            return self._report[1]
        report = self._validate(request)
        self._report = (names, report)
        return report

    def report_for(self, bundle: Bundle, request: CertRequest) -> Optional[Report]:
        """The report of the validation that gave ``bundle`` for ``request``'s names, or None: the
        gate's checks (:func:`~sesam_tls.validate.gate`) are :func:`validate`'s, run there already."""
        if self._report is None or self._report[0] != tuple(request.identifiers):
            return None
        report = self._report[1]
        return report if report.leaf is bundle.leaf and report.key is bundle.key else None

    def _validate(self, request: CertRequest) -> Report:
        decoded, failures = self._decode_all()
        certs = [Sourced(c, d.source) for d in decoded for c in d.certificates]
        keys = [Sourced(k, d.source) for d in decoded for k in d.keys]
        report = validate(
            certs,
            keys,
            now=self._clock(),
            names=request.identifiers,
            names_origin=self.names_origin,
            expiry_warning_days=self.expiry_warning_days,
        )
        if failures:
            # An unreadable file may be the one that held the key or the
            # certificate: "no key" on top of its own error would only confuse.
            kept = tuple(f for f in report.findings if f.code not in ("no-key", "no-certificate"))
            report = Report(
                kept, report.key, report.leaf, report.chain, report.dropped_root, report.names
            )
        ignored = [
            Finding("warning", "ignored-block", f"{d.source}: ignored a PEM block: {why}")
            for d in decoded
            for why in d.ignored
        ]
        return report.with_findings(failures, first=True).with_findings(ignored)

    def issue(self, request: CertRequest) -> Bundle:
        report = self.check(request)
        bundle = report.bundle()  # raises InputError with the first refusal
        for finding in report.warnings:
            log.warning("%s", finding.message)
        log.info(
            "imported %s (%s) with %d intermediate(s)%s",
            bundle.leaf.subject.rfc4514_string() or "the certificate",
            bundle.key_type,
            len(bundle.chain),
            "; dropped the self-signed root" if report.dropped_root is not None else "",
        )
        return bundle

    # reading -----------------------------------------------------------------
    def _decode_all(self) -> tuple[list[Decoded], list[Finding]]:
        """Each file once (a password prompt must not come twice, even for a check with other
        names), then the password is forgotten."""
        if self._decoded is None:
            decoded: list[Decoded] = []
            failures: list[Finding] = []
            try:
                for path in self.files:
                    try:
                        decoded.append(
                            decode(read_input(path), source=str(path), password=self._password_for)
                        )
                    except InputError as exc:
                        failures.append(Finding(ERROR, "unreadable", str(exc)))
            finally:
                self._password = None
                self._secret = None
            self._decoded = (decoded, failures)
        return self._decoded

    def _password_for(self, source: str) -> Optional[bytes]:
        if not self._asked:
            self._asked = True
            given = self._password
            self._secret = given(source) if callable(given) else given
        return self._secret
