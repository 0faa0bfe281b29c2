"""``sesam-tls issue``: get a certificate (from an ACME CA, or self-signed) and deploy it."""

from __future__ import annotations

import argparse

from .acme_args import (
    DNS01_ONLY,
    acme_source_from_args,
    add_account_arguments,
    add_ca_arguments,
    add_challenge_arguments,
    add_http01_arguments,
)
from .common import (
    add_deploy_arguments,
    add_name_argument,
    key_type_arg,
    add_key_policy_arguments,
    add_node_arguments,
    new_certificate_settings,
    node_from_args,
    print_outcome,
)

#: Options that only mean something to the ACME path, with their defaults.
ACME_ONLY: dict[str, object] = {
    "email": None, "agree_tos": False, "server": None, "staging": False, "ca_bundle": None, "eab_kid": None,
    "eab_hmac_file": None, "eab_hmac_env": None, "profile": None, "http01": None, "webroot": None,
    "http_port": 80, "http_address": [], "challenge": "http-01", **DNS01_ONLY,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..choices import DEFAULT_KEY_TYPE, KEY_TYPE_ALIASES, KEY_TYPES

    g = parser.add_argument_group("certificate")
    add_name_argument(g, "a DNS name")
    g.add_argument("--ip", action="append", default=[], metavar="ADDRESS", help="an IP address (repeat for more)")
    g.add_argument(
        "--key-type", type=key_type_arg, default=DEFAULT_KEY_TYPE, metavar="TYPE",
        help=f"{', '.join(KEY_TYPES)} (default {DEFAULT_KEY_TYPE}); lego's and certbot's names too: "
        f"{', '.join(KEY_TYPE_ALIASES)}"
    )
    g.add_argument("--self-signed", action="store_true", help="make a self-signed certificate instead of asking a CA")
    g.add_argument("--days", type=int, metavar="N", help="validity of a self-signed certificate (default 365)")
    g.add_argument("--dry-run", action="store_true",
                   help="rehearse: order at the CA (Let's Encrypt: its staging CA; others: validated, not finalized), "
                        "nginx -t on a copy of the new pair; deploy, record and stop nothing")
    add_key_policy_arguments(g)
    g.add_argument("--notify-url-file", metavar="FILE",
                   help="renewals POST a JSON event to the URL in FILE (recorded as the path, never the URL)")
    g.add_argument("--replace", action="store_true",
                   help="deploy even over a managed certificate from another provider (e.g. self-signed over imported)")
    add_ca_arguments(parser)
    add_account_arguments(parser)
    add_challenge_arguments(parser)
    add_http01_arguments(parser)
    add_deploy_arguments(parser)
    add_node_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from .. import issue_certificate, rehearse_certificate
    from ..errors import UsageError

    node = node_from_args(args)
    settings, options = new_certificate_settings(args, node)
    acme = None
    if args.self_signed:
        given = [k for k, default in ACME_ONLY.items() if getattr(args, k) != default]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise UsageError(f"{flag} is an ACME option; it has no meaning with --self-signed")
    else:
        acme = acme_source_from_args(args)
    order = dict(self_signed=args.self_signed, acme=acme, key_type=args.key_type, days=args.days,
                 key_policy=args.key_policy, node=node, options=options, notify_url_file=args.notify_url_file)
    if args.dry_run:
        from .common import emit_json

        rehearsal = rehearse_certificate(args.domain, args.ip, **order)
        if args.json:
            emit_json(rehearsal.to_json())
        else:
            from ..text import printable

            print(printable(rehearsal.message))
        return 0
    outcome = issue_certificate(args.domain, args.ip, settings=settings, replace=args.replace, **order)
    print_outcome(args, outcome)
    return 0
