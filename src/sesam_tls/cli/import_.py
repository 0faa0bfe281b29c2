"""``sesam-tls import``: deploy your own certificate (PEM, DER, PKCS#12), checked first.

The password never comes from the command line (``ps`` would show it): a
file, an environment variable, standard input, or a no-echo prompt when
standard input is a terminal and a file turns out to be encrypted.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any, Optional

from .common import (
    add_deploy_arguments,
    add_name_argument,
    add_node_arguments,
    new_certificate_settings,
    write_recorded_metrics,
    emit_json,
    node_from_args,
    print_outcome,
)

if TYPE_CHECKING:
    from ..providers.imported import Password
    from ..validate import Report

#: A password longer than this is a mistake (the wrong file), not a password.
MAX_PASSWORD = 64 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("input (recognised by content: PEM, DER, PKCS#12)")
    g.add_argument(
        "--cert",
        required=True,
        metavar="FILE",
        help="the certificate, a bundle, or a .p12/.pfx file",
    )
    g.add_argument("--key", metavar="FILE", help="the private key, unless --cert holds it")
    g.add_argument(
        "--chain", metavar="FILE", help="intermediates (and root), unless --cert holds them"
    )
    p = g.add_mutually_exclusive_group()
    p.add_argument(
        "--password-file", metavar="FILE", help="read the key's or .p12's password from FILE"
    )
    p.add_argument(
        "--password-env", metavar="VAR", help="read it from the environment variable VAR"
    )
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read it from the first line of standard input",
    )
    c = parser.add_argument_group("checks")
    add_name_argument(c, "a name the certificate must cover (default: the names of the certificate it replaces)")
    c.add_argument(
        "--expiry-warning-days",
        type=int,
        default=14,
        metavar="N",
        help="warn when the certificate expires within N days (default 14)",
    )
    c.add_argument(
        "--check-only", action="store_true", help="run every check and report; write nothing"
    )
    c.add_argument("--notify-url-file", metavar="FILE",
                   help="renewals POST a JSON event to the URL in FILE (recorded as the path, never the URL)")
    c.add_argument(
        "--replace",
        action="store_true",
        help="deploy even over a managed certificate from another provider (e.g. over an ACME one)",
    )
    add_deploy_arguments(parser)
    add_node_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..api import import_certificate
    from ..errors import UsageError
    from ..validate import Report

    if args.expiry_warning_days < 0:
        raise UsageError(
            f"invalid --expiry-warning-days {args.expiry_warning_days}: must be 0 or more"
        )
    from ..notify import check_url_file, remember_url_file

    url_from = check_url_file(args.notify_url_file) if args.notify_url_file else None
    node = node_from_args(args)
    settings, options = new_certificate_settings(args, node)
    result = import_certificate(
        args.cert,
        key_file=args.key,
        chain_file=args.chain,
        password=_password_source(args),
        node=node,
        options=options,
        settings=settings,
        domains=args.domain,
        check_only=args.check_only,
        expiry_warning_days=args.expiry_warning_days,
        replace=args.replace,
    )
    if isinstance(result, Report):
        return _print_report(args, result)
    write_recorded_metrics(result.record)
    if url_from is not None:
        remember_url_file(node, url_from)
    print_outcome(args, result)
    return 0


def _print_report(args: argparse.Namespace, report: "Report") -> int:
    """--check-only: every error on stderr (warnings went through the log), the verdict on stdout."""
    from ..errors import InputError
    from ..text import printable

    for finding in report.errors:
        print(f"sesam-tls: error: {printable(finding.message)}", file=sys.stderr)
    if args.json:
        emit_json(_report_summary(report))
    elif report.ok:
        print(printable(_report_line(report)))
    return 0 if report.ok else InputError.exit_code


def _password_source(args: argparse.Namespace) -> "Password":
    """Bytes from the option given; else a prompt, asked only if a file is encrypted."""
    from ..errors import UsageError

    if args.password_file:
        from ..fsutil import read_bounded

        try:
            # A FIFO or pipe (``<(pass show node)``) is read with a deadline.
            secret, st = read_bounded(args.password_file, MAX_PASSWORD)
        except OSError as exc:
            raise UsageError(
                f"--password-file {args.password_file}: cannot read it ({exc.strerror or exc})"
            ) from None
        _warn_if_readable_by_others(args.password_file, st)
        if len(secret) > MAX_PASSWORD:
            raise UsageError(
                f"--password-file {args.password_file}: larger than 64 KiB, not a password file"
            )
        return _one_line(secret)
    if args.password_env:
        value = os.environb.get(args.password_env.encode())
        if value is None:
            raise UsageError(
                f"--password-env {args.password_env}: the environment variable is not set"
            )
        return value
    if args.password_stdin:
        return _one_line(sys.stdin.buffer.readline(MAX_PASSWORD))
    if args.non_interactive:
        return _no_prompt  # an encrypted input is then refused, naming the options that give a password
    return _prompt


def _warn_if_readable_by_others(path: str, st: os.stat_result) -> None:
    """Still used (refusing would break a working setup), but the operator is told."""
    import logging
    import stat

    if stat.S_ISREG(st.st_mode) and st.st_mode & 0o044:
        mode = stat.S_IMODE(st.st_mode)
        who = "everyone" if mode & 0o004 else "its group"
        logging.getLogger("sesam_tls").warning(
            "--password-file %s is readable by %s (mode %04o); chmod 600 it", path, who, mode
        )


def _prompt(source: str) -> Optional[bytes]:
    if not sys.stdin or not sys.stdin.isatty():
        return None
    import getpass

    return getpass.getpass(f"password for {source}: ").encode()


def _no_prompt(source: str) -> Optional[bytes]:
    """``--non-interactive``: never ask, even on a terminal."""
    return None


def _one_line(data: bytes) -> bytes:
    """A password file's trailing newline is not part of the password."""
    if data.endswith(b"\r\n"):
        return data[:-2]
    return data[:-1] if data.endswith(b"\n") else data


def _report_summary(report: "Report") -> dict[str, Any]:
    from ..api import describe

    out: dict[str, Any] = {
        "result": "ok" if report.ok else "refused",
        "errors": [{"code": f.code, "message": f.message} for f in report.errors],
        "warnings": [{"code": f.code, "message": f.message} for f in report.warnings],
    }
    if report.ok:
        bundle = report.bundle()
        out["certificate"] = describe(bundle)
        out["chain"] = [c.subject.rfc4514_string() for c in bundle.chain]
        out["root_dropped"] = report.dropped_root is not None
    return out


def _report_line(report: "Report") -> str:
    bundle = report.bundle()
    names = ", ".join(bundle.dns_names + bundle.ip_addresses)
    chain = " -> ".join(
        [bundle.leaf.subject.rfc4514_string(), *(c.subject.rfc4514_string() for c in bundle.chain)]
    )
    dropped = "; the self-signed root is left out" if report.dropped_root is not None else ""
    return (
        f"ok: {bundle.key_type} certificate for {names}, expires {bundle.not_after.isoformat()}; "
        f"served chain: {chain}{dropped} (--check-only: nothing written)"
    )
