"""``sesam-tls import``: deploy your own certificate (PEM, DER, PKCS#12), checked first.

The password never comes from the command line (``ps`` would show it): a
file, an environment variable, standard input, or a no-echo prompt when
standard input is a terminal and a file turns out to be encrypted.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Optional

from .common import (
    add_deploy_arguments,
    add_name_argument,
    add_node_arguments,
    new_certificate_settings,
    emit_json,
    node_from_args,
    print_outcome,
)

if TYPE_CHECKING:
    from .. import ImportReport


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
    from .. import ImportReport, Password, import_certificate
    from ..errors import UsageError

    if args.expiry_warning_days < 0:
        raise UsageError(
            f"invalid --expiry-warning-days {args.expiry_warning_days}: must be 0 or more"
        )
    node = node_from_args(args)
    settings, options = new_certificate_settings(args, node)
    result = import_certificate(
        args.cert,
        key_file=args.key,
        chain_file=args.chain,
        # bytes from the option given; else a prompt, asked only if a file is encrypted
        password=Password.given(
            file=args.password_file,
            env=args.password_env,
            stream=sys.stdin.buffer if args.password_stdin else None,
            # --non-interactive: an encrypted input is refused, naming the options that give a password
            ask=None if args.non_interactive else _prompt,
        ),
        node=node,
        options=options,
        settings=settings,
        domains=args.domain,
        check_only=args.check_only,
        expiry_warning_days=args.expiry_warning_days,
        replace=args.replace,
        notify_url_file=args.notify_url_file,
    )
    if isinstance(result, ImportReport):
        return _print_report(args, result)
    print_outcome(args, result)
    return 0


def _print_report(args: argparse.Namespace, report: "ImportReport") -> int:
    """--check-only: every error on stderr (warnings went through the log), the verdict on stdout."""
    from ..errors import InputError
    from ..text import printable

    for finding in report.errors:
        print(f"sesam-tls: error: {printable(finding.message)}", file=sys.stderr)
    if args.json:
        emit_json(report.to_json())
    elif report.ok:
        print(printable(_report_line(report)))
    return 0 if report.ok else InputError.exit_code


def _prompt(source: str) -> Optional[bytes]:
    if not sys.stdin or not sys.stdin.isatty():
        return None
    import getpass

    return getpass.getpass(f"password for {source}: ").encode()


def _report_line(report: "ImportReport") -> str:
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
