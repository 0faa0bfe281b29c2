"""``sesam-tls revoke``: revoke the node's managed ACME certificate at its CA.

nginx keeps serving the revoked certificate until a new one is deployed;
the command says how to get one. With ``--reason keyCompromise`` the request
is signed with the certificate's own key (proof of possession), otherwise
with the node's ACME account.
"""

from __future__ import annotations

import argparse

from .acme_args import add_ca_arguments
from .common import add_node_arguments, emit_json, node_from_args

from ..choices import REVOCATION_REASONS, canonical_reason

REASONS = tuple(REVOCATION_REASONS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", type=_reason, choices=REASONS, default="unspecified",
                        help="RFC 5280 reason, in any case (certbot writes keycompromise) (default unspecified)")
    add_ca_arguments(parser, remembered=True)
    add_node_arguments(parser)


def _reason(value: str) -> str:
    """A revocation reason in any case (certbot: ``keycompromise``) -> ours; an unknown one stays, for argparse to refuse."""
    return canonical_reason(value)


def run(args: argparse.Namespace) -> int:
    from .. import revoke
    from ..text import printable

    done = revoke(node_from_args(args), reason=args.reason, directory=args.server, staging=args.staging,
                  ca_bundle=args.ca_bundle)
    again = "sesam-tls issue " + " ".join(
        f"--ip {n}" if ":" in n or n.replace(".", "").isdigit() else f"-d {n}" for n in done.names
    )
    if args.json:
        emit_json({**done.to_json(), "next": again})
    else:
        print(
            printable(
                f"revoked certificate serial {done.serial} ({done.reason}); nginx serves it until it is replaced: "
                f"get a new one (with a new key) now with `{again}`"
            )
        )
    return 0
