"""``sesam-tls timer install|remove|status``: the systemd timer (or cron entry) that runs renew."""

from __future__ import annotations

import argparse
from typing import Any

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


def run(args: argparse.Namespace) -> int:
    from .. import install_timer, remove_timer, timer_status

    node = node_from_args(args)
    if args.action == "status":
        info = timer_status(node)
        if args.json:
            emit_json(info.to_json())
        else:
            print(_status_text(info))
        return 0
    done = install_timer(node, cron=args.cron) if args.action == "install" else remove_timer(node)
    if args.json:
        emit_json(done.to_json())
    else:
        print(_change_text(done))
    return 0


def _change_text(done: Any) -> str:
    action = done.action
    if not done.changes:
        return "no renewal timer installed: nothing to remove"
    lines = []
    for c in done.changes:
        what = "systemd timer" if c.kind == "systemd" else "cron entry"
        if action == "install":
            state = "installed" if c.written else "already installed, unchanged"
            lines.append(f"{what} {state}: {', '.join(str(p) for p in c.written + c.unchanged)}")
        else:
            lines.append(f"{what} removed: {', '.join(str(p) for p in c.removed) or 'nothing of ours'}")
        lines += [f"ran: {r}" for r in c.ran]
        if c.to_run and done.root:
            # the files point at the scratch root: enabling them on the live system would be wrong
            lines.append(
                f"--root {done.root} is a rehearsal: the files above point at it and nothing was "
                f"{'enabled' if action == 'install' else 'stopped'}; on the node itself, run "
                f"`sesam-tls timer {action}` without --root"
            )
        elif c.to_run:
            lines.append(f"systemd is not running here; once it runs: {' && '.join(c.to_run)}")
        lines += [f"note: {n}" for n in c.notes]
    return "\n".join(lines)


_STALE = "differs from what `timer install` with these node options and this sesam-tls would write"


def _status_text(info: Any) -> str:
    units, cron = info.systemd, info.cron
    lines = []
    if units.installed or units.found:
        state = "installed" if units.installed else "INCOMPLETE"
        lines += [
            f"systemd timer:  {state}: {', '.join(units.files)}",
            f"schedule:       {units.schedule} plus up to {units.randomized_delay_sec} s, fixed per machine",
            f"command:        {units.command}",
            f"up to date:     {'yes' if units.current else 'no: ' + _STALE}",
        ]
        if units.loaded:
            lines += [
                f"enabled:        {units.enabled}, {units.active}",
                f"next run:       {units.next_run or 'not scheduled'}",
                f"last run:       {units.last_run or 'never'}",
            ]
    else:
        lines.append("systemd timer:  not installed")
    if cron.installed:
        lines += [
            f"cron entry:     {cron.file}",
            f"schedule:       {cron.schedule or 'not ours: unreadable'}",
            f"up to date:     {'yes' if cron.current else 'no: ' + _STALE + ' (with --cron)'}",
        ]
    else:
        lines.append("cron entry:     not installed")
    return "\n".join(lines)
