"""``sesam-tls ensure``: make the node's certificate what a desired state says (for Ansible and the like).

The desired state comes as one JSON object on stdin, never on the command
line: it may carry secrets (the EAB HMAC key, the PKCS#12 password), and
argv is readable by every user of the machine (``ps``) and lands in shell
history and audit logs. The node is named by the usual flags. With
``--json`` the result is one JSON object on stdout (``changed``, ``actions``,
``reasons``, ``check``, ``before``, ``after``), and an error is one too
(``failed``, ``msg``, ``exit_code``), besides its one line on stderr and
its exit code, so a caller never parses text. ``--check`` only reads.
"""

from __future__ import annotations

import argparse

from .common import add_node_arguments, emit_json, node_from_args

#: Desired states are small; more than this on stdin is not one.
MAX_STDIN = 1024 * 1024
#: A caller that opens stdin and never writes is refused after this long.
STDIN_TIMEOUT = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "make the node's certificate what the desired state on stdin (JSON) says, doing only what is needed: "
        "nothing, reconfigure, issue, import or renew; secrets only inside that JSON, never on the command line")
    parser.add_argument("--check", action="store_true",
                        help="say what would be done; order, stop and write nothing")
    add_node_arguments(parser)


def read_desired(data: bytes) -> object:
    """The desired state from the bytes of stdin; one UsageError line when they are not a JSON object."""
    import json

    from ..desired import desired_from_json
    from ..errors import UsageError

    if len(data) > MAX_STDIN:
        raise UsageError(f"the desired state on stdin is larger than {MAX_STDIN // 1024} KiB")
    if not data.strip():
        raise UsageError("no desired state on stdin: give it as one JSON object")
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        reason = getattr(exc, "msg", type(exc).__name__)  # never the text itself: it may hold a secret
        raise UsageError(f"the desired state on stdin is not JSON ({reason})") from None
    return desired_from_json(value)


def run(args: argparse.Namespace) -> int:
    import sys

    from ..desired import ensure
    from ..errors import SesamTLSError, UsageError
    from ..fsutil import read_bounded
    from ..text import printable

    try:
        try:
            data, _ = read_bounded("/dev/stdin", MAX_STDIN, timeout=STDIN_TIMEOUT)
        except OSError as exc:
            raise UsageError(f"cannot read the desired state from stdin: {exc.strerror or exc}") from None
        desired = read_desired(data)
        result = ensure(node_from_args(args), desired, check=args.check)  # type: ignore[arg-type]
    except SesamTLSError as exc:
        if not args.json:
            raise  # main() prints the one line and exits with the code
        print(f"sesam-tls: error: {printable(str(exc))}", file=sys.stderr)
        emit_json({"failed": True, "changed": False, "msg": str(exc), "exit_code": exc.exit_code})
        return exc.exit_code
    if args.json:
        emit_json(result.to_json())
    else:
        would = "would " if result.check else ""
        said = f"{would}{', '.join(result.actions)}: {'; '.join(result.reasons)}" if result.changed else "nothing to do"
        print(printable(said))
    return 0
