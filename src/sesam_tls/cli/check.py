"""``sesam-tls check``: the preflight for ``issue`` and ``renew``. Orders nothing; one line per check, with the fix.

Parses argv, calls :func:`sesam_tls.check` once and prints its items as they come (``--json``: the
report at the end); every check itself is the library's (:mod:`sesam_tls.checks`).

Without ``--domain``/``--ip`` it checks the managed certificate's names, and
without ``--server``/``--http01``/... the CA and HTTP-01 settings recorded with
it: what the next ``renew`` will use.

Exit 0 when every check passes, else the exit code of the first failed
check's kind (2 usage, 4 agent config, 5 storage, 6 Docker, 8 CA/challenge).
"""

from __future__ import annotations

import argparse
from typing import Any

from .acme_args import (
    DNS01_ONLY,
    add_account_arguments,
    add_ca_arguments,
    add_challenge_arguments,
    add_http01_arguments,
    dns01_from_args,
    eab_from_args,
)
from .common import add_name_argument, add_node_arguments, emit_json, node_from_args
from ..text import printable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("certificate")
    add_name_argument(g, "a DNS name (default: the managed certificate's names)")
    g.add_argument("--ip", action="append", default=[], metavar="ADDRESS", help="an IP address (repeat for more)")
    add_ca_arguments(parser, remembered=True)
    add_account_arguments(parser)
    add_challenge_arguments(parser, remembered=True)
    add_http01_arguments(parser, remembered=True)
    parser.add_argument("--no-restart", action="store_true", help="nginx is left alone (as with issue --no-restart)")
    add_node_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from .. import check

    def say(item: Any) -> None:
        if not args.json:
            mark = "ok" if item.ok else "FAIL"
            print(printable(f"{mark:<4}  {item.check}: {item.detail}"), flush=True)

    # a `parameter` named in a detail reaches the terminal as its flag (main's in_flags on the streams)
    report = check(
        node_from_args(args),
        names=args.domain,
        ips=args.ip,
        directory=args.server,
        staging=args.staging,
        ca_bundle=args.ca_bundle,
        agree_tos=args.agree_tos,
        eab=eab_from_args(args),
        profile=args.profile,
        challenge=args.challenge,
        dns01=_dns01(args),
        http01=args.http01,
        http_port=args.http_port,
        webroot=args.webroot,
        http_address=args.http_address,
        restart=not args.no_restart,
        on_item=say,
    )
    if args.json:
        emit_json(report.to_json())
    return report.exit_code


def _dns01(args: argparse.Namespace) -> Any:
    """The DNS-01 options given on the command line, None when none is (then the library takes the
    managed certificate's). Given without --challenge, they mean DNS-01."""
    if all(getattr(args, name) == default for name, default in DNS01_ONLY.items()):
        return None
    return dns01_from_args(argparse.Namespace(**{**vars(args), "challenge": args.challenge or "dns-01"}))
