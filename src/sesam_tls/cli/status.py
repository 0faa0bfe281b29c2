"""``sesam-tls status``: what the node has, and whether nginx serves it."""

from __future__ import annotations

import argparse
from typing import Any

from .common import add_node_arguments, emit_json, node_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verify", metavar="HOST:PORT", help="also ask HOST:PORT by TLS handshake what it serves")
    parser.add_argument("--warn-days", type=int, metavar="N",
                        help="exit 10 when the deployed certificate expires in fewer than N days (a monitoring check)")
    parser.add_argument("--metrics-file", metavar="FILE", help="write Prometheus gauges for node_exporter's textfile collector")
    add_node_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..api import status
    from ..renewal import human_time, parse_time

    node = node_from_args(args)
    info = status(node, verify=args.verify)
    if args.metrics_file:
        from pathlib import Path

        from ..metrics import write_metrics
        from ..state import load_record

        write_metrics(Path(args.metrics_file), load_record(node.metadata_path))
    code = _exit_code(args, info)
    if args.json:
        emit_json(info)
        return code
    info = _printable(info)  # names, issuer and errors come from the certificate, files or the CA
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
            f"valid:          {human_time(parse_time(dep['not_before']))} .. {human_time(parse_time(dep['not_after']))} "
            f"({_days_left(dep['days_left'])})",
            f"key type:       {dep['key_type']}",
            f"sha256:         {dep['fingerprint_sha256']}",
            f"ssl folder:     {info['ssl_dir']} (version {dep['version'] or 'not managed'})",
        ]
        if dep.get("not_yet_valid"):
            lines.append(f"attention:      not valid before {dep['not_before']}: clients refuse it")
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
    ren = info.get("renewal")
    if ren:
        lines.append(f"renewal:        {'DUE now: ' if ren['due'] else ''}{ren['reason']}")
        if ren.get("last_attempt"):
            lines.append(f"last attempt:   {human_time(parse_time(ren['last_attempt']))}: {ren['last_result']}")
    print("\n".join(lines))
    return code


def _days_left(days: int) -> str:
    if days < 0:
        return "EXPIRED"
    return "less than a day left" if days == 0 else f"{days} day{'s' if days != 1 else ''} left"


def _exit_code(args: argparse.Namespace, info: dict) -> int:
    """10 (attention) when the node needs a human: expiring within --warn-days or not valid yet, not served."""
    from ..errors import AttentionNeeded

    dep = info.get("deployed") or {}
    if args.warn_days is not None and (
        not dep or "error" in dep or dep["days_left"] < args.warn_days or dep.get("not_yet_valid")
    ):
        return AttentionNeeded.exit_code
    if args.verify and not info.get("serving_deployed"):
        return AttentionNeeded.exit_code
    return 0


def _printable(value: Any) -> Any:
    """``value`` with every string escaped by text.printable: one status line per line."""
    from ..text import printable

    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {k: _printable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_printable(v) for v in value]
    return value
