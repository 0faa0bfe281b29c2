"""``sesam-tls issue``: get a certificate (from an ACME CA, or self-signed) and deploy it."""

from __future__ import annotations

import argparse

from .acme_args import (
    DNS01_ONLY,
    acme_provider,
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
    write_recorded_metrics,
)

#: Options that only mean something to the ACME path, with their defaults.
ACME_ONLY: dict[str, object] = {
    "email": None, "agree_tos": False, "server": None, "staging": False, "ca_bundle": None, "eab_kid": None,
    "eab_hmac_file": None, "eab_hmac_env": None, "profile": None, "http01": None, "webroot": None,
    "http_port": 80, "http_address": [], "challenge": "http-01", **DNS01_ONLY,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..keys import DEFAULT_KEY_TYPE, KEY_TYPE_ALIASES, KEY_TYPES

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
    from ..api import issue
    from ..errors import UsageError
    from ..providers.base import CertRequest

    from ..notify import check_url_file, remember_url_file

    node = node_from_args(args)
    settings, options = new_certificate_settings(args, node)
    url_from = check_url_file(args.notify_url_file) if args.notify_url_file else None
    if args.self_signed:
        given = [k for k, default in ACME_ONLY.items() if getattr(args, k) != default]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise UsageError(f"{flag} is an ACME option; it has no meaning with --self-signed")
        from ..providers.selfsigned import SelfSigned

        request = CertRequest.build(args.domain, args.ip, key_type=args.key_type, days=args.days,
                                    key_policy=args.key_policy)
        provider = SelfSigned()
    else:
        if args.days is not None:
            raise UsageError("--days is for --self-signed; the CA chooses an ACME certificate's lifetime")
        from ..nginx import NginxContainer

        # HTTP-01 cannot prove a wildcard: refuse it here, before any network call.
        request = CertRequest.build(args.domain, args.ip, key_type=args.key_type,
                                    challenge=args.challenge,
                                    key_policy=args.key_policy)
        if not options.restart and args.http01 == "stop-nginx":
            raise UsageError("--http01 stop-nginx stops the nginx container; --no-restart asks to leave it alone")
        nginx = None if not options.restart else NginxContainer(node.container, node.docker_host, timeout=options.timeout)
        provider = acme_provider(args, node, nginx=nginx)
    if args.key_policy == "reuse":
        from ..renew import with_live_key
        from ..store import SslFolder

        if SslFolder(node.ssl_dir).read_pair() is not None:  # else there is no key to keep yet
            request = with_live_key(request, node)
    if args.dry_run:
        from ..api import rehearse_issue
        from .common import emit_json

        rehearsal = rehearse_issue(request, provider, node=node, options=options)
        message = f"dry run succeeded for {', '.join(request.identifiers)}: {rehearsal.message}"
        if args.json:
            emit_json({"result": "dry-run", "message": message, "exit_code": 0})
        else:
            from ..text import printable

            print(printable(message))
        return 0
    outcome = issue(request, provider, node=node, options=options, settings=settings, replace=args.replace)
    write_recorded_metrics(outcome.record)
    if url_from is not None:
        remember_url_file(node, url_from)
    print_outcome(args, outcome)
    return 0
