"""``sesam-tls timer install|remove|status``: the systemd timer (or cron entry) that runs renew."""

from __future__ import annotations

import argparse
from typing import Any, Optional, Sequence

from .common import add_node_arguments, add_subcommand, emit_json, node_from_args


#: subcommand -> its help line
ACTIONS = {
    "install": "write the units (twice a day, random offset) and enable them",
    "remove": "disable and delete them (systemd and cron)",
    "status": "what is installed, its schedule, the next and last run",
}


def _add_cron(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cron", action="store_true", help="install: an /etc/cron.d entry instead of systemd units")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _add_cron(parser)
    add_node_arguments(parser)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, help_text in ACTIONS.items():
        adders = (_add_cron, add_node_arguments) if action == "install" else (add_node_arguments,)
        add_subcommand(actions, action, help_text, parser.formatter_class, *adders)


def own_command() -> list[str]:
    """How we were started, as the units should start us: the sesam-tls script, else python -m.

    ``sys.executable`` is kept as is, not resolved: a venv's python is a
    symlink whose path is what selects the venv.
    """
    import os
    import sys

    if getattr(sys, "frozen", False):  # the one-file/one-folder executable: it is its own command
        return [sys.executable]
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "sesam-tls" and os.path.isfile(argv0) and os.access(argv0, os.X_OK):
        return [os.path.abspath(argv0)]
    return [sys.executable, "-m", "sesam_tls"]


def _systemctl(args: Sequence[str]) -> str:
    import subprocess

    from ..errors import SesamTLSError

    try:
        done = subprocess.run(["systemctl", *args], check=False, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SesamTLSError(f"systemctl {' '.join(args)}: {exc}") from exc
    if done.returncode != 0:
        why = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise SesamTLSError(f"systemctl {' '.join(args)}: {why[0]}")
    return done.stdout


def run(args: argparse.Namespace) -> int:
    from .. import timer

    node = node_from_args(args)
    systemctl = _systemctl if timer.systemd_live(node) else None
    environment, credentials, missing = timer.replayed_environment(_record(node))
    if args.action == "status":
        info = timer.status(node, own_command(), systemctl=systemctl, environment=environment,
                            credentials=credentials)
        if args.json:
            emit_json(info)
        else:
            print(_status_text(info))
        return 0
    if args.action == "install":
        change = timer.install(node, own_command(), cron=args.cron, systemctl=systemctl, environment=environment,
                               credentials=credentials)
        change.notes += missing
        changes = [change]
    else:
        changes = timer.remove(node, systemctl=systemctl)
    if args.json:
        emit_json({"action": args.action, "changes": [vars(c) for c in changes]})
    else:
        print(_change_text(args.action, changes, node_root=node.root))
    return 0


def _record(node: Any) -> Any:
    """The node record, for what the timer's run replays; None when there is none or it is unreadable
    (``renew`` says why at its first run)."""
    from ..errors import SesamTLSError
    from ..state import load_record

    try:
        return load_record(node.metadata_path)
    except SesamTLSError:
        return None


def _change_text(action: str, changes: list[Any], *, node_root: Optional[object]) -> str:
    if not changes:
        return "no renewal timer installed: nothing to remove"
    lines = []
    for c in changes:
        what = "systemd timer" if c.kind == "systemd" else "cron entry"
        if action == "install":
            state = "installed" if c.written else "already installed, unchanged"
            lines.append(f"{what} {state}: {', '.join(str(p) for p in c.written + c.unchanged)}")
        else:
            lines.append(f"{what} removed: {', '.join(str(p) for p in c.removed) or 'nothing of ours'}")
        lines += [f"ran: {r}" for r in c.ran]
        if c.to_run and node_root:
            # the files point at the scratch root: enabling them on the live system would be wrong
            lines.append(
                f"--root {node_root} is a rehearsal: the files above point at it and nothing was "
                f"{'enabled' if action == 'install' else 'stopped'}; on the node itself, run "
                f"`sesam-tls timer {action}` without --root"
            )
        elif c.to_run:
            lines.append(f"systemd is not running here; once it runs: {' && '.join(c.to_run)}")
        lines += [f"note: {n}" for n in c.notes]
    return "\n".join(lines)


_STALE = "differs from what `timer install` with these node options and this sesam-tls would write"


def _status_text(info: dict[str, Any]) -> str:
    units, cron = info["systemd"], info["cron"]
    lines = []
    if units["installed"] or "command" in units:
        state = "installed" if units["installed"] else "INCOMPLETE"
        delay = units.get("randomized_delay_sec")
        lines += [
            f"systemd timer:  {state}: {', '.join(units['files'])}",
            f"schedule:       {units.get('schedule')} plus up to {delay} s, fixed per machine",
            f"command:        {units.get('command')}",
            f"up to date:     {'yes' if units.get('current') else 'no: ' + _STALE}",
        ]
        if "enabled" in units:
            lines += [
                f"enabled:        {units['enabled']}, {units['active']}",
                f"next run:       {units['next_run'] or 'not scheduled'}",
                f"last run:       {units['last_run'] or 'never'}",
            ]
    else:
        lines.append("systemd timer:  not installed")
    if cron["installed"]:
        lines += [
            f"cron entry:     {cron['file']}",
            f"schedule:       {cron.get('schedule', 'not ours: unreadable')}",
            f"up to date:     {'yes' if cron.get('current') else 'no: ' + _STALE + ' (with --cron)'}",
        ]
    else:
        lines.append("cron entry:     not installed")
    return "\n".join(lines)
