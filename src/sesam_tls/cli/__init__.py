"""The ``sesam-tls`` command: ``main(argv) -> int``, one module per verb.

Each verb module has ``add_arguments(parser)`` and ``run(args) -> int`` and
imports what it needs inside ``run``, so ``--help`` and a renewal with
nothing due stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Optional, Sequence

from ..errors import EXIT_CODES, SesamTLSError
from ..text import printable

__all__ = ["main", "run"]

#: verb -> (module, one-line help). A plain table is the whole plugin system.
VERBS = {
    "issue": ("sesam_tls.cli.issue", "get a certificate (Let's Encrypt or self-signed) and deploy it"),
    "import": ("sesam_tls.cli.import_", "deploy your own certificate (PEM, DER, PKCS#12), checked before anything is written"),
    "renew": ("sesam_tls.cli.renew", "renew the managed certificate when it is due (the timer runs this)"),
    "configure": ("sesam_tls.cli.configure", "change what renew and the timer replay (--verify, --metrics-file, ...)"),
    "rollback": ("sesam_tls.cli.rollback", "switch back to a certificate kept in the ssl folder (--list shows them)"),
    "status": ("sesam_tls.cli.status", "show the node's certificate and whether nginx serves it"),
    "timer": ("sesam_tls.cli.timer", "install, remove or show the renewal timer (systemd or cron)"),
    "check": ("sesam_tls.cli.check", "preflight for issue and renew: names, port 80 or DNS, the ACME server, Docker, paths"),
    "revoke": ("sesam_tls.cli.revoke", "revoke the node's ACME certificate at its CA"),
    "account": ("sesam_tls.cli.account", "show, roll over the key of, or deactivate the ACME account"),
    "ensure": ("sesam_tls.cli.ensure", "make the certificate what a desired state (JSON on stdin) says; for Ansible"),
}


class _Help(argparse.HelpFormatter):
    """argparse's help, wrapped at spaces only: a path such as /var/lib/sesam-tls
    or a flag such as --http-port is never broken at its hyphen."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        text = " ".join(text.split())
        return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False) or [""]


class _TopHelp(argparse.RawDescriptionHelpFormatter):
    """The top-level help: the exit codes' epilog as written, verbs wrapped at spaces only."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog)
        self._action_max_length = 15  # room for the longest verb ("configure") beside its help

    _split_lines = _Help._split_lines


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    epilog = "exit codes:\n" + "\n".join(f"  {code:>2}  {text}" for code, text in sorted(EXIT_CODES.items()))
    # allow_abbrev=False: a stored command (a unit, a cron line) must not start to mean another
    # option when a new one shares its prefix (`--forc` is not `--force`)
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="sesam-tls",
        description="TLS certificates for self-hosted Sesam nodes: issue, import, renew, deploy to nginx.",
        epilog=epilog,
        formatter_class=_TopHelp,
    )
    parser.add_argument("--version", action="version", version=f"sesam-tls {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, (module_name, help_text) in VERBS.items():
        module = importlib.import_module(module_name)
        sub = verbs.add_parser(verb, help=help_text, description=help_text, formatter_class=_Help,
                               allow_abbrev=False)
        module.add_arguments(sub)
        sub.set_defaults(_module=module)
    return parser


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = "" if record.levelno <= logging.INFO else f"{record.levelname.lower()}: "
        text = f"sesam-tls: {prefix}{printable(record.getMessage())}"
        if record.exc_info and record.exc_info[0] is not None:  # --debug: the traceback itself, not only its title
            text += "\n" + self.formatException(record.exc_info)
        return text


def _setup_logging(args: argparse.Namespace) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    logger = logging.getLogger("sesam_tls")
    logger.addHandler(handler)
    level = logging.DEBUG if getattr(args, "debug", False) else logging.INFO
    if getattr(args, "quiet", False):
        level = logging.WARNING
    logger.setLevel(level)
    logger.propagate = False
    return handler


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return int(exc.code or 0)
    handler = _setup_logging(args)
    try:
        return int(args._module.run(args))
    except SesamTLSError as exc:
        if getattr(args, "debug", False):
            logging.getLogger("sesam_tls").debug("traceback of the error below:", exc_info=True)
        print(f"sesam-tls: error: {printable(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("sesam-tls: interrupted", file=sys.stderr)
        return 130
    finally:
        logging.getLogger("sesam_tls").removeHandler(handler)


def run() -> None:
    """The console script. One run is short and makes few reference cycles, so
    the cyclic collector only costs time: during the imports, and above all at
    exit, when it walks every object of acme, requests and cryptography
    (measured: 0.2 s of a 0.8 s ACME issuance). ``renew --loop`` turns it back on.
    """
    import gc

    gc.disable()
    code = main()
    gc.freeze()  # the interpreter's final collection skips frozen objects
    sys.exit(code)
