"""Options every verb shares: where the node is, how to deploy, how to print."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from ..choices import ENV, RELOAD_MODES
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
    o.add_argument("-v", "--verbose", action="store_true", help="show debug lines (no tracebacks: see --debug)")
    o.add_argument("--debug", action="store_true", help="show tracebacks and debug lines")
    o.add_argument("-n", "--non-interactive", action="store_true",
                   help="never ask: a password the input needs is an error instead of a prompt "
                        "(sesam-tls asks nothing else, ever)")


def add_subcommand(actions: Any, name: str, help_text: str, formatter_class: Any,
                   *adders: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    """A subcommand (``timer install``) with its own help, repeating options of its verb (``adders``),
    so that both orders work as before there were subcommands: ``timer --root X install`` and
    ``timer install --root X``. On the subcommand only a value given there lands
    (``argument_default=SUPPRESS``): argparse would otherwise overwrite the verb's values with
    the subcommand's defaults."""
    sub = actions.add_parser(name, help=help_text, description=help_text, formatter_class=formatter_class,
                             argument_default=argparse.SUPPRESS)
    for add in adders:
        add(sub)
    return sub


class NameList(argparse.Action):
    """``-d a,b`` as certbot and lego take it: a comma list, each item stripped, repeatable;
    an empty item (``a,,b``, a trailing comma) is refused, naming the value."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: Any = None) -> None:
        items = [item.strip() for item in str(values).split(",")]
        if not all(items):
            raise argparse.ArgumentError(self, f"an empty name in {values!r}")
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), *items])


def add_name_argument(group: Any, help: str) -> None:
    """``-d``/``--domain``/``--domains NAME[,NAME...]`` (repeatable)."""
    group.add_argument("-d", "--domain", "--domains", dest="domain", action=NameList, default=[], metavar="NAME",
                       help=f"{help}; a comma list or repeated")


def add_deploy_arguments(parser: argparse.ArgumentParser, *, renew: bool = False) -> None:
    """The deployment options; each is recorded with the certificate and replayed by ``renew``
    (given to ``renew`` itself, it wins for that run only)."""
    title = "deployment (default: what is recorded, see sesam-tls status)" if renew else "deployment (recorded: renew replays it)"
    g = parser.add_argument_group(title)
    g.add_argument("--no-restart", action="store_true", help="write files and agent config only; leave nginx alone")
    g.add_argument(
        "--reload-mode",
        choices=RELOAD_MODES,
        default=None,
        help="auto: restart when the agent config changed, else nginx -t + reload (default auto)",
    )
    g.add_argument("--verify", metavar="HOST:PORT", help="after deploying, check by TLS handshake that HOST:PORT serves it")
    g.add_argument("--verify-name", metavar="NAME", help="SNI name for --verify (default: the first name)")
    g.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="for nginx to come up and verification (default 30)")
    g.add_argument("--metrics-file", metavar="FILE", help="write Prometheus gauges for node_exporter's textfile collector")
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
    from .. import Node

    return Node.from_settings(
        root=args.root,
        ssl_dir=args.ssl_dir,
        container_ssl_dir=args.container_ssl_dir,
        agent_config=args.agent_config,
        container=args.container,
        state_dir=args.state_dir,
        docker_host=args.docker_host,
    )


#: The options that name the environment variable a run reads a secret from.
SECRET_SOURCES = ("password_env", "eab_hmac_env", "dns_tsig_env")


def given_from_args(args: argparse.Namespace) -> Any:
    """The deployment flags as the library takes them (``sesam_tls.DeployGiven``; None: not given)."""
    from .. import DeployGiven

    hook_env = getattr(args, "hook_env", None)
    return DeployGiven(
        verify=args.verify,
        verify_name=args.verify_name,
        reload_mode=args.reload_mode,
        restart=False if args.no_restart else (True if getattr(args, "restart", False) else None),
        timeout=args.timeout,
        metrics_file=getattr(args, "metrics_file", None),
        container=getattr(args, "container", None),
        docker_host=getattr(args, "docker_host", None),
        deploy_hook=getattr(args, "deploy_hook", None),
        failure_hook=getattr(args, "failure_hook", None),
        hook_env=tuple(hook_env) if hook_env else None,
        # the variables this run reads a secret from never reach a hook, even when allowed
        secret_env=tuple(n for n in (getattr(args, a, None) for a in SECRET_SOURCES) if n),
    )


def deploy_options_from_args(args: argparse.Namespace, recorded: Any = None) -> Any:
    """The deploy options: the command line's, over ``recorded`` settings (a ``DeploySettings``), over the defaults."""
    return given_from_args(args).options(recorded)


def new_certificate_settings(args: argparse.Namespace, node: Any) -> tuple[Any, Any]:
    """For ``issue``/``import``: the settings to record and the deploy options of this run
    (``sesam_tls.DeployGiven.for_new_certificate``)."""
    import os

    return given_from_args(args).for_new_certificate(node, os.environ)


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def print_outcome(args: argparse.Namespace, outcome: Any) -> None:
    if args.json:
        emit_json(outcome.to_json())
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


def key_type_arg(value: str) -> str:
    """``--key-type``: ours, or lego's/certbot's name for it (``ec256``, ``rsa2048``, ...), any case."""
    from ..choices import canonical_key_type
    from ..errors import UsageError

    try:
        return canonical_key_type(value)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_key_policy_arguments(group: Any) -> None:
    """``--reuse-key``/``--no-reuse-key`` (``issue`` and ``renew``): what renewals do with the key, recorded."""
    k = group.add_mutually_exclusive_group()
    k.add_argument("--reuse-key", dest="key_policy", action="store_const", const="reuse",
                   help="keep the live key, now and in later renewals (recorded; the default for self-signed)")
    k.add_argument("--no-reuse-key", dest="key_policy", action="store_const", const="new",
                   help="make a new key at every renewal (recorded; the default for ACME)")
