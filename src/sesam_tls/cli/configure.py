"""``sesam-tls configure``: change what ``renew`` and the timer replay, without a new certificate.

The deployment settings that ``issue``/``import`` recorded (``--verify``,
``--metrics-file``, ``--reload-mode``, ...) are changed in the node record;
``--unset NAME`` forgets one (its default applies again). ``status`` shows
them. Nothing is deployed and nginx is not touched.
"""

from __future__ import annotations

import argparse

from ..choices import RELOAD_MODES
from typing import Any

from .common import add_node_arguments, emit_json, node_from_args

#: What --unset accepts: the recorded settings, by the record's field names.
UNSETTABLE = ("verify", "verify_name", "reload_mode", "restart", "timeout", "metrics_file", "container", "docker_host",
              "proxy", "deploy_hook", "failure_hook")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("settings (each recorded; renew and the timer replay it)")
    g.add_argument("--verify", metavar="HOST:PORT", help="after deploying, check by TLS handshake that HOST:PORT serves it")
    g.add_argument("--verify-name", metavar="NAME", help="SNI name for --verify (default: the first name)")
    g.add_argument("--reload-mode", choices=RELOAD_MODES, default=None,
                   help="auto: restart when the agent config changed, else nginx -t + reload")
    restart = g.add_mutually_exclusive_group()
    restart.add_argument("--no-restart", action="store_true", help="write files and agent config only; leave nginx alone")
    restart.add_argument("--restart", action="store_true", help="reload or restart nginx again (undoes --no-restart)")
    g.add_argument("--timeout", type=float, default=None, metavar="S", help="for nginx to come up and verification")
    g.add_argument("--metrics-file", metavar="FILE", help="write Prometheus gauges for node_exporter's textfile collector")
    g.add_argument("--deploy-hook", metavar="CMD", help="shell command run after a successful deployment")
    g.add_argument("--failure-hook", metavar="CMD", help="shell command run after a failed renewal")
    g.add_argument("--proxy-from-env", action="store_true",
                   help="record HTTPS_PROXY, HTTP_PROXY and NO_PROXY of this shell for the timer's runs")
    g.add_argument("--unset", action="append", default=[], choices=UNSETTABLE, metavar="NAME",
                   help=f"forget a setting, so its default applies ({', '.join(UNSETTABLE)})")
    add_node_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import os

    from ..errors import UsageError
    from ..options import DeployOptions
    from ..replay import merge, proxy_from_env
    from ..state import DeploySettings, Hooks, Proxy, encode, load_record, node_lock, save_record
    from ..text import printable
    from .common import settings_from_args

    node = node_from_args(args)
    given = settings_from_args(args)
    given = dataclasses.replace(given, container=args.container, docker_host=args.docker_host)
    if args.proxy_from_env:
        proxy, notes = proxy_from_env(os.environ)
        for note in notes:
            print(f"sesam-tls: warning: {printable(note)}")
        given = dataclasses.replace(given, proxy=proxy)
    # the values are checked as the deployment will read them, before anything is written
    DeployOptions(reload_mode=given.reload_mode or "auto", verify=given.verify)
    if given.timeout is not None and not 0 < given.timeout <= 3600:
        raise UsageError(f"invalid --timeout {given.timeout:g}: must be more than 0 and at most 3600 seconds")
    with node_lock(node.state_dir):
        record = load_record(node.metadata_path)
        if record is None:
            raise UsageError(f"no managed certificate in {node.state_dir}: run 'sesam-tls issue' or 'sesam-tls import' first")
        settings = merge(record.settings, given)
        if args.proxy_from_env:
            settings = dataclasses.replace(settings, proxy=given.proxy)  # this shell's proxy, all of it
        blank = DeploySettings()
        for name in args.unset:
            if name in ("deploy_hook", "failure_hook"):
                continue
            cleared: Any = Proxy() if name == "proxy" else getattr(blank, name)  # each field's own "not set"
            settings = dataclasses.replace(settings, **{name: cleared})
        hooks = Hooks(
            deploy=None if "deploy_hook" in args.unset else (args.deploy_hook or record.hooks.deploy),
            failure=None if "failure_hook" in args.unset else (args.failure_hook or record.hooks.failure),
        )
        updated = record.replace(settings=settings, hooks=hooks)
        if updated != record:
            save_record(node.metadata_path, updated)
    shown = {k: v for k, v in encode(settings).items() if v not in (None, {}) and k != "proxy"}
    shown.update({f"proxy {k}": v for k, v in encode(settings.proxy).items() if v})
    if args.json:
        emit_json({"result": "configured" if updated != record else "unchanged", "settings": encode(settings),
                   "hooks": encode(hooks)})
    else:
        what = "; ".join(f"{k} {v}" for k, v in shown.items()) or "defaults only"
        state = "recorded" if updated != record else "unchanged"
        print(printable(f"{state} in {node.metadata_path}: {what}; renew and the timer use them"))
    return 0
