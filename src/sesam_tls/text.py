"""Text from a file or a CA, made safe to print on one line (pure).

Certificate names, subjects and messages from a CA are chosen by whoever
made the file: a newline in a common name would print a second, forged log
line ("sesam-tls: deployed ..."), an ESC sequence would rewrite the terminal
and a bidi override (U+202E) would show "gnp.exe" as "exe.png". Every line
the CLI prints goes through :func:`printable`.
"""

from __future__ import annotations

import re

__all__ = ["human_time", "printable"]

_UNSAFE = re.compile(
    "["
    "\x00-\x1f\x7f-\x9f"  # C0 (newline, tab, ESC, ...), DEL, C1
    "\u061c\u200e\u200f\u2028\u2029"  # Arabic letter mark, LRM, RLM, line and paragraph separators
    "\u202a-\u202e\u2066-\u2069"  # bidi embeddings, overrides and isolates
    "\ud800-\udfff"  # lone surrogates: not text, and print() cannot encode them
    "]"
)


def _escape(match: "re.Match[str]") -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    r"""``text`` with each control, bidi-control or surrogate character written as ``\xNN``/``\uNNNN``."""
    return _UNSAFE.sub(_escape, text)


def human_time(value: object) -> str:
    """A time from the record, a certificate or a result (ISO 8601, or a datetime) as a person reads
    it: to the second, in UTC; ``never`` for none. One format for every time the CLI prints."""
    import datetime as dt

    from .renewal import human_time as format_time
    from .renewal import parse_time

    return format_time(value if isinstance(value, dt.datetime) else parse_time(value))
