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
    info = status(node, verify=args.verify, warn_days=args.warn_days)
    if args.metrics_file:
        _write_metrics(args, node, info)
    code = int(info["exit_code"])
    if code:
        _say_why(info["reasons"])
    if args.json:
        emit_json(info)
        return code
    info = _printable(info)  # names, issuer and errors come from the certificate, files or the CA
    managed = "unknown: the record cannot be read" if info["managed"] is None else "no"
    lines = [f"managed:        {'yes, ' + str(info['provider']) if info['managed'] else managed}"]
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
    back = info.get("rolled_back")
    if back:
        lines.append(f"rolled back:    rolled back to {back.get('to_version')} on {human_time(parse_time(back.get('at')))} "
                     f"(from {back.get('from_version')})")
    ren = info.get("renewal")
    if ren:
        lines.append(f"renewal:        {'DUE now: ' if ren['due'] else ''}{ren['reason']}")
        if ren.get("last_attempt"):
            lines.append(f"last attempt:   {human_time(parse_time(ren['last_attempt']))}: {ren['last_result']}")
    lines += _settings_lines(info.get("settings") or {})
    print("\n".join(lines))
    return code


#: The replayed settings ``status`` shows, by record field, with their labels.
_SETTINGS = (("verify", "verify"), ("verify_name", "verify name"), ("reload_mode", "reload mode"),
             ("restart", "restart"), ("timeout", "timeout"), ("metrics_file", "metrics file"),
             ("container", "container"), ("docker_host", "docker host"))


def _settings_lines(settings: dict) -> list[str]:
    """What ``renew`` and the timer replay (``configure`` changes it): only what was given."""
    from ..replay import PROXY_VARIABLES

    lines = [f"{label + ':':<16}{_said(key, settings[key])}" for key, label in _SETTINGS if settings.get(key) is not None]
    proxy = settings.get("proxy") or {}
    given = [f"{PROXY_VARIABLES[k]}={v}" for k, v in proxy.items() if v]
    if given:
        lines.append(f"{'proxy:':<16}{' '.join(given)}")
    return lines


def _said(key: str, value: object) -> str:
    """A recorded setting as an operator reads it: no Python ``True``/``False``."""
    if key == "restart" and isinstance(value, bool):
        return "yes (nginx reloaded or restarted)" if value else "no (--no-restart: files and agent config only)"
    if key == "timeout" and isinstance(value, (int, float)):
        return f"{value:g} s"
    return str(value)


def _days_left(days: int) -> str:
    if days < 0:
        return "EXPIRED"
    return "less than a day left" if days == 0 else f"{days} day{'s' if days != 1 else ''} left"


def _say_why(reasons: list) -> None:
    """Every non-zero exit says why, in one line on stderr (also beside --json)."""
    import sys

    from ..text import printable

    first = reasons[0]
    more = f" (and {len(reasons) - 1} more: {', '.join(r['reason'] for r in reasons[1:])})" if len(reasons) > 1 else ""
    level = "attention" if first["exit_code"] == 10 else "error"
    print(f"sesam-tls: {level}: {printable(first['message'])}{more}", file=sys.stderr)


def _write_metrics(args: argparse.Namespace, node: Any, info: dict) -> None:
    """The gauges from the record, with what this status saw; a record that cannot be read
    gives the attention gauge alone (its reason says so)."""
    from pathlib import Path

    from ..attention import Reason
    from ..errors import SesamTLSError
    from ..metrics import write_metrics
    from ..state import load_record

    try:
        record = load_record(node.metadata_path)
    except SesamTLSError:
        record = None
    served = info.get("serving_deployed") if args.verify else None
    reasons = [Reason(r["reason"], r["exit_code"], r["message"]) for r in info["reasons"]]
    write_metrics(Path(args.metrics_file), record, served=served, reasons=reasons, keep_last_run=True)


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
