"""``sesam-tls status``: what the node has, and whether nginx serves it."""

from __future__ import annotations

import argparse
from typing import Any, Optional

from .common import add_node_arguments, emit_json, node_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verify", metavar="HOST:PORT", help="also ask HOST:PORT by TLS handshake what it serves")
    parser.add_argument("--warn-days", type=int, metavar="N",
                        help="exit 10 when the deployed certificate expires in fewer than N days (a monitoring check)")
    parser.add_argument("--metrics-file", metavar="FILE", help="write Prometheus gauges for node_exporter's textfile collector")
    add_node_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import sesam_tls

    info = sesam_tls.status(node_from_args(args), verify=args.verify, warn_days=args.warn_days, metrics_file=args.metrics_file)
    code = info.exit_code
    if code:
        _say_why(info.reasons)
    if args.json:
        emit_json(info.to_json())
        return code
    print("\n".join(_lines(info, args.verify)))
    return code


def _lines(info: Any, verify: Optional[str]) -> list[str]:
    """The text report; each line escaped by text.printable (names, issuer and errors come from the
    certificate, files or the CA): one status line per line."""
    from ..text import human_time, printable

    managed = "unknown: the record cannot be read" if info.managed is None else "no"
    lines = [f"managed:        {'yes, ' + str(info.provider) if info.managed else managed}"]
    dep = info.deployed
    if info.deployed_error is not None:
        lines.append(f"deployed:       unusable: {info.deployed_error}")
    elif dep is None:
        lines.append(f"deployed:       nothing in {info.ssl_dir}")
    else:
        cert = dep.certificate
        lines += [
            f"names:          {', '.join(cert.identifiers)}",
            f"serial:         {cert.serial}",
            f"issuer:         {cert.issuer}",
            f"valid:          {human_time(cert.not_before)} .. {human_time(cert.not_after)} "
            f"({_days_left(dep.days_left)})",
            f"key type:       {cert.key_type}",
            f"sha256:         {cert.fingerprint_sha256}",
            f"ssl folder:     {info.ssl_dir} (version {dep.version or 'not managed'})",
        ]
        if dep.not_yet_valid:
            lines.append(f"attention:      not valid before {cert.not_before}: clients refuse it")
    points = info.agent_config_points_here
    lines.append(
        f"agent config:   {info.agent_config}: "
        + ("points at it" if points else "does NOT point at it" if points is False else info.agent_config_error or "?")
    )
    if verify:
        served = info.served
        if served.serving_deployed:
            lines.append(f"served:         yes, {verify} serves it")
        else:
            lines.append(f"served:         NO: {served.error or 'serves ' + str(served.fingerprint_sha256)}")
    back = info.rolled_back
    if back:
        lines.append(f"rolled back:    rolled back to {back.to_version} on {human_time(back.at)} "
                     f"(from {back.from_version})")
    ren = info.renewal
    if ren:
        lines.append(f"renewal:        {'DUE now: ' if ren.due else ''}{ren.reason}")
        if ren.last_attempt:
            lines.append(f"last attempt:   {human_time(ren.last_attempt)}: {ren.last_result}")
    if info.settings is not None:
        lines += _settings_lines(info.settings)
    return [printable(line) for line in lines]


#: The replayed settings ``status`` shows, by record field, with their labels.
_SETTINGS = (("verify", "verify"), ("verify_name", "verify name"), ("reload_mode", "reload mode"),
             ("restart", "restart"), ("timeout", "timeout"), ("metrics_file", "metrics file"),
             ("container", "container"), ("docker_host", "docker host"))


def _settings_lines(settings: Any) -> list[str]:
    """What ``renew`` and the timer replay (``configure`` changes it): only what was given."""
    lines = [f"{label + ':':<16}{_said(key, getattr(settings, key))}" for key, label in _SETTINGS
             if getattr(settings, key) is not None]
    given = [f"{name}={value}" for name, value in settings.proxy.environment.items()]
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


def _say_why(reasons: Any) -> None:
    """Every non-zero exit says why, in one line on stderr (also beside --json)."""
    import sys

    from ..text import printable

    first = reasons[0]
    more = f" (and {len(reasons) - 1} more: {', '.join(r.reason for r in reasons[1:])})" if len(reasons) > 1 else ""
    level = "attention" if first.exit_code == 10 else "error"
    print(f"sesam-tls: {level}: {printable(first.message)}{more}", file=sys.stderr)
