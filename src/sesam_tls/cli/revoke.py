"""``sesam-tls revoke``: revoke the node's managed ACME certificate at its CA.

nginx keeps serving the revoked certificate until a new one is deployed;
the command says how to get one. With ``--reason keyCompromise`` the request
is signed with the certificate's own key (proof of possession), otherwise
with the node's ACME account.
"""

from __future__ import annotations

import argparse

from .acme_args import (
    add_ca_arguments,
    ca_bundle_from_args,
    directory_from_args,
    remembered_settings,
)
from .common import add_node_arguments, emit_json, node_from_args
from ..text import printable

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
    import datetime as dt

    from ..bundle import Bundle
    from ..errors import UsageError
    from ..providers.acme import revoke
    from ..state import Revoked, Timestamp, load_record, node_lock, save_record
    from ..store import SslFolder

    node = node_from_args(args)
    settings = remembered_settings(node)
    if not settings:
        raise UsageError(f"the node's certificate ({node.metadata_path}) was not issued by an ACME CA: nothing to revoke")
    with node_lock(node.state_dir):
        record = load_record(node.metadata_path)
        pair = SslFolder(node.ssl_dir).read_pair()
        if pair is None:
            raise UsageError(f"no certificate in {node.ssl_dir}: nothing to revoke")
        bundle = Bundle.from_pem(pair[0], pair[1], source=str(node.ssl_dir))
        if record is None or bundle.fingerprint != record.certificate.fingerprint_sha256:
            raise UsageError(
                f"the certificate in {node.ssl_dir} is not the managed ACME certificate recorded in "
                f"{node.metadata_path}; nothing was revoked"
            )
        revoke(
            bundle.leaf,
            state_dir=node.state_dir,
            directory=directory_from_args(args, settings.directory),
            ca_bundle=ca_bundle_from_args(args, settings.ca_bundle),
            reason=args.reason,
            cert_key=bundle.key if args.reason == "keyCompromise" else None,
        )
        at = Timestamp(dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat())
        save_record(node.metadata_path, record.replace(revoked=Revoked(serial=bundle.serial, reason=args.reason, at=at)))
    names = [*bundle.dns_names, *bundle.ip_addresses]
    again = "sesam-tls issue " + " ".join(f"--ip {n}" if ":" in n or n.replace(".", "").isdigit() else f"-d {n}" for n in names)
    if args.json:
        emit_json({"result": "revoked", "serial": bundle.serial, "reason": args.reason, "names": names,
                   "next": again})
    else:
        print(
            printable(
                f"revoked certificate serial {bundle.serial} ({args.reason}); nginx serves it until it is replaced: "
                f"get a new one (with a new key) now with `{again}`"
            )
        )
    return 0
