"""The ``sesam-tls`` command: ``main(argv) -> int``, one module per verb.

Each verb module has ``add_arguments(parser)`` and ``run(args) -> int`` and
imports what it needs inside ``run``; only the chosen verb's module is
imported and its parser built, so ``--help`` and a renewal with nothing due
stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Any, NoReturn, Optional, Sequence

from ..errors import EXIT_CODES, SesamTLSError, UsageError
from ..text import printable

__all__ = ["main", "parse_args", "run"]

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


#: A library parameter -> the flag that sets it, where the two are not spelled alike.
#: Library messages name a parameter in backquotes (`` `http01.port` ``); the CLI says the
#: flag instead (``--http-port``). Otherwise ``dns_server`` -> ``--dns-server``, and a
#: ``dns01.`` field -> ``--dns-`` and the field (``dns01.tsig_name`` -> ``--dns-tsig-name``).
OPTION_OF = {
    "names": "--domain",
    "domains": "--domain",
    "ips": "--ip",
    "confirm": "--yes",
    "directory": "--server",
    "http01.strategy": "--http01",
    "http01.port": "--http-port",
    "http01.listen": "--http-address",
    "http01.webroot": "--webroot",
}


def option_of(param: str) -> str:
    """The flag for a library parameter: ``http01.port`` -> ``--http-port``, ``reload_mode`` -> ``--reload-mode``."""
    if param in OPTION_OF:
        return OPTION_OF[param]
    prefix, _, name = param.rpartition(".")
    return ("--dns-" if prefix == "dns01" else "--") + name.replace("_", "-")


def in_flags(message: str) -> str:
    """A library message with each `parameter` named as its flag (`` `http01.port` `` -> ``--http-port``)."""
    import re

    return re.sub(r"(?<!`)`([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)?)`(?!`)", lambda m: option_of(m[1]), message)


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
        # room for the longest verb beside its help (argparse measures the subcommands too narrowly)
        self._action_max_length = max(len(verb) for verb in VERBS) + 6

    _split_lines = _Help._split_lines


class _ParseError(Exception):
    """A usage error, said by the parser (verb or subverb) it belongs to; ``main`` prints it."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class Parser(argparse.ArgumentParser):
    """argparse's parser with two habits of ours.

    - Arguments that the chosen verb (or subverb, ``timer install``) does not
      know are refused by that verb's parser, so its own usage is shown;
      argparse would pass them up and show the top-level usage.
    - An error is raised, not printed and exited: ``main`` says it once, on
      stderr, and as JSON on stdout under ``--json``.

    ``allow_abbrev=False`` everywhere: a stored command (a unit, a cron line)
    must not start to mean another option when a new one shares its prefix
    (``--forc`` is not ``--force``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> tuple[Any, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error("unrecognized arguments: " + " ".join(extras))
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        raise _ParseError(self, message)


def _verb_of(argv: Sequence[str]) -> Optional[str]:
    """The verb ``argv`` names: the first word (the top level has no option that takes a value)."""
    for arg in argv:
        if arg == "--" or not arg.startswith("-"):
            return arg if arg in VERBS else None
    return None


def build_parser(verb: Optional[str] = None, *, alone: bool = False) -> argparse.ArgumentParser:
    """The top-level parser, its verbs listed from ``VERBS`` (name and help line only); only
    ``verb``'s module is imported and its arguments built: ``--help`` and ``--version`` import none.
    ``alone``: ``verb`` is the first word, so no other verb's parser can be reached: they are not
    built (10 parsers, a few ms of a timer run's ``renew``)."""
    from .. import __version__

    epilog = "exit codes:\n" + "\n".join(f"  {code:>2}  {text}" for code, text in sorted(EXIT_CODES.items()))
    parser = Parser(
        prog="sesam-tls",
        description="TLS certificates for self-hosted Sesam nodes: issue, import, renew, deploy to nginx.",
        epilog=epilog,
        formatter_class=_TopHelp,
    )
    parser.add_argument("--version", action="version", version=f"sesam-tls {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name, (module_name, help_text) in VERBS.items():
        if alone and name != verb:
            continue
        sub = verbs.add_parser(name, help=help_text, description=help_text, formatter_class=_Help)
        if name == verb:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            sub.set_defaults(_module=module)
    return parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """``argv`` parsed by the chosen verb's parser (raises ``_ParseError``, or ``SystemExit`` for --help)."""
    args = list(sys.argv[1:] if argv is None else argv)
    verb = _verb_of(args)
    return build_parser(verb, alone=verb is not None and args[0] == verb).parse_args(args)


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
    # -v/--verbose: the debug lines; --debug: those and the traceback of an error (for a bug report)
    verbose = getattr(args, "debug", False) or getattr(args, "verbose", False)
    level = logging.DEBUG if verbose else logging.INFO
    if getattr(args, "quiet", False):
        level = logging.WARNING
    logger.setLevel(level)
    logger.propagate = False
    return handler


def _error(message: str, code: int, *, as_json: bool) -> int:
    """An error: one line on stderr, and under ``--json`` the same as JSON on stdout."""
    print(f"sesam-tls: error: {printable(message)}", file=sys.stderr)
    if as_json:
        from .common import emit_json

        emit_json({"error": printable(message), "exit_code": code})
    return code


class _InFlags:
    """stdout/stderr while a verb runs: whatever the library said about a `parameter` (an error,
    a log line, a result's message, JSON) reaches the operator as the flag (:func:`in_flags`)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return int(self._stream.write(in_flags(text)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _InFlags(sys.stdout), _InFlags(sys.stderr)
    try:
        return _main(argv)
    except BrokenPipeError:
        # the reader is gone (`status --json | head -1`): end quietly, as a tool killed by SIGPIPE
        # would, and point stdout at /dev/null so that the interpreter's last flush finds no pipe
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 128 + 13
    finally:
        sys.stdout, sys.stderr = streams


def _main(argv: list[str]) -> int:
    as_json = "--json" in argv
    try:
        args = parse_args(argv)
    except _ParseError as exc:
        message = printable(exc.message)  # it quotes what was typed: no control characters reach the terminal
        exc.parser.print_usage(sys.stderr)
        print(f"{exc.parser.prog}: error: {message}", file=sys.stderr)
        if as_json:
            from .common import emit_json

            emit_json({"error": message, "exit_code": UsageError.exit_code})
        return UsageError.exit_code
    except SystemExit as exc:  # argparse: --help, --version
        return int(exc.code or 0)
    as_json = bool(getattr(args, "json", False))
    handler = _setup_logging(args)
    try:
        code = int(args._module.run(args))
        sys.stdout.flush()  # a closed pipe is met here, not at the interpreter's exit
        return code
    except SesamTLSError as exc:
        if getattr(args, "debug", False):
            logging.getLogger("sesam_tls").debug("traceback of the error below:", exc_info=True)
        return _error(str(exc), exc.exit_code, as_json=as_json)
    except KeyboardInterrupt:
        print("sesam-tls: interrupted", file=sys.stderr)
        if as_json:
            from .common import emit_json

            emit_json({"error": "interrupted", "exit_code": 130})
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
