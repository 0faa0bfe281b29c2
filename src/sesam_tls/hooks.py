"""Run the operator's deploy and failure hooks: a shell command, a clean environment, a timeout.

Hooks get facts about the certificate, never a secret: no key, no password.
Their environment is built, not inherited: the documented ``SESAM_TLS_*``
variables, ``PATH``, the locale, and the variables the operator allows by
name (``--hook-env NAME``, recorded with the certificate by name only). A
variable that was named as a secret source (``--password-env``,
``--eab-hmac-env``) never reaches a hook, even when allowed: the tool runs
as root from a timer, and a hook's environment ends up in logs and in
``ps e`` of whatever the hook starts.

A hook runs in its own session (process group). Its end is its own exit:
a background child it leaves behind (``reload-something &``) may keep
the output pipe open, but the run does not wait for it. At the timeout the
whole group is ended, children included. Output goes to the log, capped;
a failing hook is reported but does not undo a deployment that succeeded.
"""

from __future__ import annotations

import logging
import os
import re
import select
import signal
import subprocess
from collections.abc import Iterable, Mapping
from typing import Optional

from .deadline import Deadline

__all__ = ["run_hook", "hook_environment", "check_env_name", "recordable_names", "HOOK_TIMEOUT", "LOCALE_VARS"]

log = logging.getLogger("sesam_tls")

HOOK_TIMEOUT = 60.0
#: After SIGTERM to a hook's group at its timeout, this long before SIGKILL.
HOOK_KILL_GRACE = 2.0
#: After the hook exits, output its children still write is read this long, then left.
OUTPUT_GRACE = 0.2
#: Hook output kept for the log; the rest is read and dropped.
MAX_OUTPUT = 64 * 1024
LOCALE_VARS = ("LANG", "LANGUAGE")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def check_env_name(name: str) -> Optional[str]:
    """Why ``name`` cannot be an environment variable name, or None (pure)."""
    if not _NAME.match(name):
        return f"{name!r} is not an environment variable name (letters, digits and _, not starting with a digit)"
    return None


def recordable_names(names: Iterable[str], secret: Iterable[str]) -> list[str]:
    """The ``--hook-env`` names to record with the certificate: every one but a secret source of this
    run, which a later run (the timer) could not know to withhold; a warning names each one dropped."""
    never = set(secret)
    kept = []
    for name in names:
        if name in never:
            log.warning("`hook_env` %s: that variable is a secret source (`password_env` or `eab_hmac_env`); "
                        "it is never passed to hooks", name)
        elif name not in kept:
            kept.append(name)
    return kept


def hook_environment(
    facts: Mapping[str, str],
    *,
    allow: Iterable[str] = (),
    secret: Iterable[str] = (),
    environ: Optional[Mapping[str, str]] = None,
) -> dict[str, str]:
    """The whole environment of a hook (pure): ``PATH``, the locale, the allowed names that are set,
    then ``facts`` (the ``SESAM_TLS_*`` variables); never a name in ``secret``."""
    environ = os.environ if environ is None else environ
    never = set(secret)
    env = {"PATH": environ.get("PATH") or os.defpath}
    for name, value in environ.items():
        if name in LOCALE_VARS or name.startswith("LC_"):
            env[name] = value
    for name in allow:
        if name in environ and check_env_name(name) is None:
            env[name] = environ[name]
    env.update(facts)
    for name in never:
        env.pop(name, None)
    return env


def run_hook(
    kind: str,
    command: Optional[str],
    facts: Mapping[str, str],
    *,
    timeout: float = HOOK_TIMEOUT,
    allow: Iterable[str] = (),
    secret: Iterable[str] = (),
) -> bool:
    """Run ``command`` in a clean environment (``facts`` plus see the module docstring); True when it
    exited 0 (or there is none)."""
    if not command:
        return True
    log.info("running %s hook", kind)
    deadline = Deadline(timeout, f"the {kind} hook")
    try:
        proc = subprocess.Popen(
            command,
            shell=True,
            env=hook_environment(facts, allow=allow, secret=secret),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: the timeout ends its children too
        )
    except OSError as exc:
        log.error("%s hook could not be started: %s", kind, exc.strerror)
        return False
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    output = bytearray()
    try:
        while proc.poll() is None and not deadline.expired:
            ready, _, _ = select.select([fd], [], [], min(0.1, deadline.remaining()))
            if ready and not _drain(fd, output):
                # EOF: every writer is gone; wait for the exit itself, still within the deadline
                try:
                    proc.wait(deadline.remaining())
                except subprocess.TimeoutExpired:
                    pass
                break
        if proc.poll() is None:
            _end_group(proc)
            _log_output(kind, output)
            log.error("%s hook did not finish within %g s and was stopped", kind, timeout)
            return False
        # The hook has exited: take what its children wrote meanwhile, briefly, and leave them be.
        until = Deadline(OUTPUT_GRACE, "hook output")
        while not until.expired:
            ready, _, _ = select.select([fd], [], [], until.remaining())
            if not ready or not _drain(fd, output):
                break
    except BaseException:
        # Ctrl-C (its own session keeps the hook out of the terminal's group) or an error while
        # waiting: the hook and its children must not outlive the run.
        if proc.poll() is None or _group_alive(proc.pid):
            _end_group(proc)
        raise
    finally:
        proc.stdout.close()
    _log_output(kind, output)
    if proc.returncode != 0:
        log.error("%s hook exited with code %d", kind, proc.returncode)
        return False
    return True


def _drain(fd: int, output: bytearray) -> bool:
    """Read what is there into ``output`` (up to MAX_OUTPUT; the rest is dropped); False at EOF."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        output += chunk[: max(0, MAX_OUTPUT - len(output))]


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the hook's whole process group, SIGKILL to what is left after a grace; reap the hook."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        if sig == signal.SIGTERM:
            try:
                proc.wait(HOOK_KILL_GRACE)
            except subprocess.TimeoutExpired:
                pass
    proc.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _log_output(kind: str, output: bytearray) -> None:
    for line in bytes(output).decode("utf-8", "replace").splitlines():
        log.info("%s hook: %s", kind, line)
