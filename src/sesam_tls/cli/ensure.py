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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "make the node's certificate what the desired state on stdin (JSON) says, doing only what is needed: "
        "nothing, reconfigure, issue, import or renew; secrets only inside that JSON, never on the command line")
    parser.add_argument("--check", action="store_true",
                        help="say what would be done; order, stop and write nothing")
    add_node_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import sys

    from .. import Desired, ensure
    from ..errors import SesamTLSError
    from ..text import printable

    try:
        # stdin read with a size cap and a deadline: a caller that opens it and never writes is refused
        desired = Desired.from_file("-")
        result = ensure(node_from_args(args), desired, check=args.check)
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
