"""Run one CPU-bound call in a forked child with a deadline.

Some inputs can only be checked by doing the work they ask for: a PKCS#12
file names its key-derivation counts partly inside encrypted parts, which
are visible only after decrypting them (:mod:`sesam_tls.der` bounds the
counts it can see). OpenSSL does that work in one C call that Ctrl-C
cannot interrupt. In a child process the call is bounded: at the deadline,
or on Ctrl-C, the child is killed and the caller gets an error.

The child shares nothing but a pipe with the parent; what it returns
(bytes) never touches the disk.
"""

from __future__ import annotations

import os
import select
import signal
import time
from typing import Callable

__all__ = ["ChildTimeout", "ChildFailed", "run_bounded"]


class ChildTimeout(Exception):
    """The call did not end within its deadline; the child was killed."""


class ChildFailed(Exception):
    """The call raised in the child; ``args[0]`` is the exception's class name."""


def run_bounded(func: Callable[[], bytes], timeout: float, *, limit: int = 16 << 20) -> bytes:
    """``func()`` run in a forked child; its bytes, at most ``limit`` of them.

    Raises ChildTimeout when it takes longer than ``timeout`` seconds (the
    child is killed), ChildFailed when it raised.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, report, leave without running the parent's clean-ups
        status = 1
        try:
            os.close(read_end)
            try:
                out = b"\x00" + func()
            except BaseException as exc:  # noqa: B036 - reported to the parent as a class name
                out = b"\x01" + type(exc).__name__.encode()
            view = memoryview(out)
            while view:
                view = view[os.write(write_end, view):]
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    chunks: list[bytes] = []
    size = 0
    finished = False
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([read_end], [], [], left)[0]:
                raise ChildTimeout(f"not done within {timeout:g} s")
            chunk = os.read(read_end, 1 << 16)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise ChildFailed("answer too large")
            chunks.append(chunk)
        finished = True
    finally:
        os.close(read_end)
        if not finished:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.waitpid(pid, 0)
    out = b"".join(chunks)
    if not out:
        raise ChildFailed("the child ended without an answer")
    if out[:1] == b"\x01":
        raise ChildFailed(out[1:].decode(errors="replace"))
    return out[1:]
