"""``sesam-tls issue``: get a certificate and deploy it."""

from __future__ import annotations

import argparse

from .common import add_deploy_arguments, add_node_arguments, deploy_options_from_args, node_from_args, print_outcome


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..keys import DEFAULT_KEY_TYPE, KEY_TYPES

    g = parser.add_argument_group("certificate")
    g.add_argument("--domain", "-d", action="append", default=[], metavar="NAME", help="a DNS name (repeat for more)")
    g.add_argument("--ip", action="append", default=[], metavar="ADDRESS", help="an IP address (repeat for more)")
    g.add_argument(
        "--key-type", default=DEFAULT_KEY_TYPE, metavar="TYPE", help=f"{', '.join(KEY_TYPES)} (default {DEFAULT_KEY_TYPE})"
    )
    g.add_argument("--self-signed", action="store_true", help="make a self-signed certificate instead of asking a CA")
    g.add_argument("--days", type=int, metavar="N", help="validity of a self-signed certificate (default 365)")
    add_deploy_arguments(parser)
    add_node_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..api import issue
    from ..errors import UsageError
    from ..providers.base import CertRequest

    node = node_from_args(args)
    options = deploy_options_from_args(args)
    if not args.self_signed:
        raise UsageError("ACME issuance is not available in this build; use --self-signed")
    from ..providers.selfsigned import SelfSigned

    request = CertRequest.build(args.domain, args.ip, key_type=args.key_type, days=args.days)
    outcome = issue(request, SelfSigned(), node=node, options=options)
    print_outcome(args, outcome)
    return 0
