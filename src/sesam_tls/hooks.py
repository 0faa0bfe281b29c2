"""Run the operator's deploy and failure hooks: a shell command, an environment, a timeout.

Hooks get facts about the certificate, never a secret: no key, no password.
Their output goes to the log; a failing hook is reported but does not undo a
deployment that succeeded.
"""

from __future__ import annotations

import logging
import os
import subprocess
from typing import Mapping, Optional

__all__ = ["run_hook", "HOOK_TIMEOUT"]

log = logging.getLogger("sesam_tls")

HOOK_TIMEOUT = 60.0


def run_hook(kind: str, command: Optional[str], env: Mapping[str, str], *, timeout: float = HOOK_TIMEOUT) -> bool:
    """Run ``command`` with ``env`` added; True when it exited 0 (or there is none)."""
    if not command:
        return True
    log.info("running %s hook", kind)
    try:
        result = subprocess.run(
            command,
            shell=True,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        log.error("%s hook did not finish within %.0f s and was stopped", kind, timeout)
        return False
    except OSError as exc:
        log.error("%s hook could not be started: %s", kind, exc.strerror)
        return False
    for stream in (result.stdout, result.stderr):
        for line in stream.decode("utf-8", "replace").splitlines():
            log.info("%s hook: %s", kind, line)
    if result.returncode != 0:
        log.error("%s hook exited with code %d", kind, result.returncode)
        return False
    return True
