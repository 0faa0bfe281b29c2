"""``sesam-tls configure``: change what ``renew`` and the timer replay, without a new certificate.

The deployment settings that ``issue``/``import`` recorded (``--verify``,
``--metrics-file``, ``--reload-mode``, ...) are changed in the node record;
``--unset NAME`` forgets one (its default applies again). ``status`` shows
them. Nothing is deployed and nginx is not touched.
"""

from __future__ import annotations

import argparse

from ..choices import RELOAD_MODES, UNSETTABLE
from .common import add_node_arguments, emit_json, node_from_args


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
    import os

    import sesam_tls
    from ..text import printable

    done = sesam_tls.configure(
        node_from_args(args),
        verify=args.verify,
        verify_name=args.verify_name,
        reload_mode=args.reload_mode,
        restart=False if args.no_restart else (True if args.restart else None),
        timeout=args.timeout,
        metrics_file=args.metrics_file,
        container=args.container,  # the flags only: configure records what it was told
        docker_host=args.docker_host,
        deploy_hook=args.deploy_hook,
        failure_hook=args.failure_hook,
        proxy_env=os.environ if args.proxy_from_env else None,
        unset=args.unset,
    )
    result = done.to_json()
    if args.json:
        emit_json(result)
        return 0
    settings = result["settings"]
    shown = {k: v for k, v in settings.items() if v not in (None, {}) and k != "proxy"}
    shown.update({f"proxy {k}": v for k, v in settings["proxy"].items() if v})
    what = "; ".join(f"{k} {v}" for k, v in shown.items()) or "defaults only"
    state = "recorded" if done.changed else "unchanged"
    print(printable(f"{state} in {done.record_path}: {what}; renew and the timer use them"))
    return 0
