"""``sesam-tls account show|rollover|deactivate``: the node's ACME account at one CA.

``rollover`` replaces the account key (RFC 8555 section 7.3.5); the
account, its URL and its certificates stay. ``deactivate`` is final: the
CA refuses the account from then on; the next ``issue`` registers a new one.
"""

from __future__ import annotations

import argparse

from .acme_args import (
    add_ca_arguments,
    ca_bundle_from_args,
    directory_from_args,
    remembered_settings,
)
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
    from ..errors import UsageError
    from ..providers.acme_account import AccountStore, account_info, deactivate, rollover
    from ..providers.acme_net import Connection
    from ..state import node_lock

    node = node_from_args(args)
    settings = remembered_settings(node)
    url = directory_from_args(args, settings.directory if settings else None)
    conn = Connection(url, ca_bundle=ca_bundle_from_args(args, settings.ca_bundle if settings else None))
    store = AccountStore(node.state_dir, url)
    if args.action == "show":
        info = account_info(conn, store)
        if args.json:
            emit_json(info)
        else:
            width = max(len(k) for k in info) + 1
            from ..text import printable

            print("\n".join(f"{k + ':':<{width}} {printable(_text(v))}" for k, v in info.items()))
        return 0
    if args.action == "rollover":
        with node_lock(node.state_dir):
            new = rollover(conn, store)
        if args.json:
            emit_json({"result": "rolled over", "directory": url, "key_thumbprint": new})
        else:
            print(f"replaced the account key for {url}; new key thumbprint {new}")
        return 0
    if not args.yes:  # only deactivate has --yes
        raise UsageError(f"deactivating the account at {url} cannot be undone: add --yes")
    with node_lock(node.state_dir):
        moved = deactivate(conn, store)
    if args.json:
        emit_json({"result": "deactivated", "directory": url, "moved_to": str(moved)})
    else:
        print(f"deactivated the account at {url}; its files are in {moved}; the next issue registers a new account")
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
