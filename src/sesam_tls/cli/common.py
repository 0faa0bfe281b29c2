"""Options every verb shares: where the node is, how to deploy, how to print."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..node import ENV
from ..text import printable


def add_node_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("node (each also from an environment variable)")
    g.add_argument("--root", metavar="DIR", help=f"prefix every default path with DIR, for a rehearsal (${ENV['root']})")
    g.add_argument("--ssl-dir", metavar="DIR", help=f"host folder nginx mounts (${ENV['ssl_dir']}; /sesam/nginx/conf/ssl)")
    g.add_argument(
        "--container-ssl-dir",
        metavar="DIR",
        help=f"that folder inside the container (${ENV['container_ssl_dir']}; /etc/nginx/includes.d/ssl)",
    )
    g.add_argument(
        "--agent-config", metavar="FILE", help=f"sesam-agent config (${ENV['agent_config']}; /etc/sesam-agent/config.json)"
    )
    g.add_argument("--container", metavar="NAME", help=f"nginx container (${ENV['container']}; nginx)")
    g.add_argument("--state-dir", metavar="DIR", help=f"sesam-tls state (${ENV['state_dir']}; /var/lib/sesam-tls)")
    g.add_argument("--docker-host", metavar="URL", help="Docker engine ($DOCKER_HOST; the local socket)")
    o = parser.add_argument_group("output")
    o.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    o.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    o.add_argument("--debug", action="store_true", help="show tracebacks and debug lines")


def add_deploy_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("deployment")
    g.add_argument("--no-restart", action="store_true", help="write files and agent config only; leave nginx alone")
    g.add_argument(
        "--reload-mode",
        choices=("auto", "reload", "restart"),
        default="auto",
        help="auto: restart when the agent config changed, else nginx -t + reload (default)",
    )
    g.add_argument("--verify", metavar="HOST:PORT", help="after deploying, check by TLS handshake that HOST:PORT serves it")
    g.add_argument("--verify-name", metavar="NAME", help="SNI name for --verify (default: the first name)")
    g.add_argument("--timeout", type=float, default=30.0, metavar="S", help="for nginx to come up and verification")
    h = parser.add_argument_group("hooks (stored with the certificate; the renewal timer runs them too)")
    h.add_argument("--deploy-hook", metavar="CMD", help="shell command run after a successful deployment")
    h.add_argument("--failure-hook", metavar="CMD", help="shell command run after a failed renewal")
    h.add_argument(
        "--hook-env",
        action="append",
        metavar="NAME",
        help="pass this environment variable to the hooks (repeat; recorded by name, never its value); "
        "hooks otherwise get only PATH, the locale and SESAM_TLS_*",
    )


def node_from_args(args: argparse.Namespace) -> Any:
    from ..node import Node

    return Node.from_settings(
        root=args.root,
        ssl_dir=args.ssl_dir,
        container_ssl_dir=args.container_ssl_dir,
        agent_config=args.agent_config,
        container=args.container,
        state_dir=args.state_dir,
        docker_host=args.docker_host,
    )


def deploy_options_from_args(args: argparse.Namespace) -> Any:
    from ..options import DeployOptions

    return DeployOptions(
        restart=not args.no_restart,
        reload_mode=args.reload_mode,
        verify=args.verify,
        verify_name=args.verify_name,
        timeout=args.timeout,
        deploy_hook=args.deploy_hook,
        failure_hook=args.failure_hook,
        hook_env=tuple(args.hook_env) if args.hook_env else None,
        # the variables this run reads a secret from never reach a hook, even when allowed
        secret_env=tuple(n for n in (getattr(args, "password_env", None), getattr(args, "eab_hmac_env", None)) if n),
    )


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def outcome_summary(outcome: Any) -> dict[str, Any]:
    """The JSON result of a verb that deployed a certificate."""
    from ..state import encode

    return {
        "result": "deployed",
        "provider": outcome.record.provider,
        **encode(outcome.record.certificate),
        "deployment": encode(outcome.record.deployment),
        "config_changed": outcome.deployment.config_changed,
    }


def print_outcome(args: argparse.Namespace, outcome: Any) -> None:
    if args.json:
        emit_json(outcome_summary(outcome))
        return
    cert = outcome.record.certificate
    names = ", ".join(cert.identifiers)
    how = {"none": "files only (--no-restart)", "reload": "nginx reloaded", "restart": "nginx restarted"}
    checked = ", verified by TLS handshake" if outcome.deployment.verified else ""
    print(
        printable(
            f"deployed {outcome.record.provider} certificate for {names}: serial {cert.serial}, "
            f"expires {cert.not_after}, sha256 {cert.fingerprint_sha256}; "
            f"{how[outcome.deployment.action]}{checked}"
        )
    )
