"""``sesam-tls rollback``: back to a kept version (``--list`` shows them), through the deployment pipeline."""

from __future__ import annotations

import argparse

from .common import add_deploy_arguments, add_node_arguments, deploy_options_from_args, emit_json, node_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("rollback")
    g.add_argument("--list", action="store_true", help="show the versions kept in the ssl folder and which is live")
    g.add_argument("--to", metavar="ID", help="switch to this version (default: the one kept before the live one)")
    add_deploy_arguments(parser)
    add_node_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import sesam_tls
    from ..text import human_time, printable

    node = node_from_args(args)
    if args.list:
        versions = sesam_tls.kept_versions(node)
        if args.json:
            emit_json({"ssl_dir": str(node.ssl_dir), "versions": [v.to_json() for v in versions]})
            return 0
        rows = [("live", "version", "names", "serial", "not after")]
        for v in versions:
            if v.error is not None:
                rows.append(("*" if v.live else "", v.version, f"unusable: {v.error}", "", ""))
            else:
                rows.append(("*" if v.live else "", v.version, ",".join(v.names), str(v.serial), human_time(v.not_after)))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for row in rows:
            print(printable("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4]).rstrip())
        if not versions:
            print(printable(f"no versions kept in {node.ssl_dir}"))
        return 0

    outcome = sesam_tls.rollback(node, to=args.to, options=deploy_options_from_args(args))
    if args.json:
        emit_json(outcome.to_json())
        return 0
    cert = outcome.record.certificate
    how = {"none": "files only (--no-restart)", "reload": "nginx reloaded", "restart": "nginx restarted"}
    checked = ", verified by TLS handshake" if outcome.deployment.verified else ""
    print(printable(
        f"rolled back to version {outcome.version} (from {outcome.from_version}): serial {cert.serial}, "
        f"expires {cert.not_after}; {how[outcome.deployment.action]}{checked}"
    ))
    return 0
