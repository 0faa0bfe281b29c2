"""``sesam-tls account show|rollover|deactivate``: the node's ACME account at one CA.

``rollover`` replaces the account key (RFC 8555 section 7.3.5); the
account, its URL and its certificates stay. ``deactivate`` is final: the
CA refuses the account from then on; the next ``issue`` registers a new one.
"""

from __future__ import annotations

import argparse

from .acme_args import add_ca_arguments
from .common import add_node_arguments, add_subcommand, emit_json, node_from_args


#: subcommand -> its help line
ACTIONS = {
    "show": "the account's URL, status, contact and key at the CA",
    "rollover": "replace the account key (RFC 8555 section 7.3.5); the account and its certificates stay",
    "deactivate": "deactivate the account at the CA, for good (needs --yes)",
}


def _add_yes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yes", action="store_true", help="confirm deactivate (it cannot be undone)")


def _add_ca(parser: argparse.ArgumentParser) -> None:
    add_ca_arguments(parser, remembered=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _add_yes(parser)
    _add_ca(parser)
    add_node_arguments(parser)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, help_text in ACTIONS.items():
        adders = (_add_yes, _add_ca, add_node_arguments) if action == "deactivate" else (_add_ca, add_node_arguments)
        add_subcommand(actions, action, help_text, parser.formatter_class, *adders)


def run(args: argparse.Namespace) -> int:
    from .. import Account

    account = Account(node_from_args(args), directory=args.server, staging=args.staging, ca_bundle=args.ca_bundle)
    if args.action == "show":
        info = account.info().to_json()
        if args.json:
            emit_json(info)
        else:
            from ..text import printable

            width = max(len(k) for k in info) + 1
            print("\n".join(f"{k + ':':<{width}} {printable(_text(v))}" for k, v in info.items()))
        return 0
    if args.action == "rollover":
        rolled = account.rollover()
        if args.json:
            emit_json(rolled.to_json())
        else:
            print(f"replaced the account key for {rolled.directory}; new key thumbprint {rolled.key_thumbprint}")
        return 0
    done = account.deactivate(confirm=args.yes)  # only deactivate has --yes
    if args.json:
        emit_json(done.to_json())
    else:
        print(f"deactivated the account at {done.directory}; its files are in {done.moved_to}; "
              "the next issue registers a new account")
    return 0


def _text(value: object) -> str:
    """A value as an operator reads it: lists comma-separated, nothing as '-' (never a Python repr)."""
    if value is None or value == [] or value == "":
        return "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
