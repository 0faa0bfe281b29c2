"""``sesam-tls status``: what the node has, and whether nginx serves it."""

from __future__ import annotations

import argparse

from .common import add_node_arguments, emit_json, node_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verify", metavar="HOST:PORT", help="also ask HOST:PORT by TLS handshake what it serves")
    add_node_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..api import status

    info = status(node_from_args(args), verify=args.verify)
    if args.json:
        emit_json(info)
        return 0
    lines = [f"managed:        {'yes, ' + str(info['provider']) if info['managed'] else 'no'}"]
    dep = info.get("deployed")
    if not dep:
        lines.append(f"deployed:       nothing in {info['ssl_dir']}")
    elif "error" in dep:
        lines.append(f"deployed:       unusable: {dep['error']}")
    else:
        lines += [
            f"names:          {', '.join(dep['names'] + dep['ips'])}",
            f"serial:         {dep['serial']}",
            f"issuer:         {dep['issuer']}",
            f"valid:          {dep['not_before']} .. {dep['not_after']} ({dep['days_left']} days left)",
            f"key type:       {dep['key_type']}",
            f"sha256:         {dep['fingerprint_sha256']}",
            f"ssl folder:     {info['ssl_dir']} (version {dep['version'] or 'not managed'})",
        ]
    points = info.get("agent_config_points_here")
    lines.append(
        f"agent config:   {info['agent_config']}: "
        + ("points at it" if points else "does NOT point at it" if points is False else info.get("agent_config_error", "?"))
    )
    if args.verify:
        if info.get("serving_deployed"):
            lines.append(f"served:         yes, {args.verify} serves it")
        else:
            lines.append(f"served:         NO: {info.get('verify_error') or 'serves ' + str(info.get('served_fingerprint_sha256'))}")
    print("\n".join(lines))
    return 0
