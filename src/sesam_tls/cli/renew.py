"""``sesam-tls renew``: renew the managed certificate when it is due (what the timer runs)."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from .common import (
    add_deploy_arguments,
    add_key_policy_arguments,
    add_node_arguments,
    emit_json,
    given_from_args,
    node_from_args,
)

#: --loop never sleeps longer than this, so a CA's new ARI window is seen in time.
MAX_SLEEP = 12 * 3600.0
MIN_SLEEP = 60.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("renewal")
    g.add_argument("--force", "--force-renewal", action="store_true", help="renew now, whatever the schedule and the backoff")
    g.add_argument("--dry-run", action="store_true",
                   help="rehearse the renewal as if it were due: Let's Encrypt's staging CA, other CAs up to validated "
                        "authorizations (not finalized), nginx -t on a copy of the new pair; deploy, record and stop "
                        "nothing")
    g.add_argument("--days", type=int, metavar="N", help="renew when fewer than N days are left (overrides ARI and the one-third rule)")
    add_key_policy_arguments(g)
    g.add_argument("--new-key", action="store_true",
                   help="make a new key in this renewal only (after a leak); later ones follow the recorded choice")
    g.add_argument("--notify-url-file", metavar="FILE",
                   help="POST a JSON event (renewed, failed, attention) to the URL in FILE; recorded as the path")
    g.add_argument("--loop", action="store_true", help="stay in the foreground, checking again when the next check is due")
    add_deploy_arguments(parser, renew=True)
    add_node_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from .. import renew_replayed
    from ..text import printable

    node, given = node_from_args(args), given_from_args(args)
    new_key = [args.new_key]  # --new-key: for the next renewal only, also under --loop

    def once(force: bool) -> tuple[int, object]:
        # what is given here wins for this run only; the rest is replayed from the record
        result = renew_replayed(node, given=given, force=force, dry_run=args.dry_run, days=args.days,
                                key_policy=args.key_policy, new_key=new_key[0], notify_url_file=args.notify_url_file)
        if result.status == "renewed":
            new_key[0] = False
        if args.json:
            emit_json(result.to_json())
        elif result.exit_code == 0:
            print(printable(result.message))
        if result.exit_code != 0:  # every non-zero exit says why in one line, beside --json too
            level = "error" if result.status == "failed" else "attention"
            print(f"sesam-tls: {level}: {printable(result.message)}", file=sys.stderr)
        return result.exit_code, result

    if not args.loop:
        return once(args.force)[0]
    return _loop(once, args.force)


def _loop(once: "Callable[[bool], tuple[int, object]]", force: bool) -> int:
    import datetime as dt
    import random
    import signal
    import threading

    import gc

    gc.enable()  # a long-running process needs the collector that `run()` turned off
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    first = True
    while not stop.is_set():
        _, result = once(force and first)
        first = False
        at = getattr(getattr(result, "decision", None), "at", None)
        wait = MAX_SLEEP
        if at is not None:
            wait = (at - dt.datetime.now(dt.timezone.utc)).total_seconds()
        if getattr(result, "status", "") == "failed":
            wait = MIN_SLEEP  # the backoff in the metadata decides when to really try
        wait = min(max(wait, MIN_SLEEP), MAX_SLEEP) + random.uniform(0, 60)
        stop.wait(wait)
    return 0
