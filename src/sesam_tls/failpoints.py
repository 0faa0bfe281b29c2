"""Failpoints: named places on the write path where a test can kill the process.

``failpoint(name)`` does nothing unless the environment variable
``SESAM_TLS_FAILPOINT`` names exactly that point; then the process SIGKILLs
itself, as a power cut or the OOM killer would: no ``finally``, no rollback,
no flush. The crash tests (``tests/test_crash.py``) run the real command once
per point and check that the node still holds a matching pair afterwards.

``SESAM_TLS_FAILPOINT_TRACE=FILE`` appends the name of every point reached to
FILE instead, so the tests learn which points a command passes, in order.
The environment is read at every call (no state at import time), which costs
a dictionary lookup.
"""

from __future__ import annotations

import os

__all__ = ["POINTS", "failpoint"]

ENV = "SESAM_TLS_FAILPOINT"
TRACE_ENV = "SESAM_TLS_FAILPOINT_TRACE"

#: Every point in the code, in write-path order. A test checks that each is
#: reached by some command, so this list cannot rot.
POINTS = (
    # store.SslFolder.adopt: the operator's plain pair becomes the first version
    "store.adopt.after-stage-cert",
    "store.adopt.after-stage-key",
    "store.adopt.after-version-rename",
    "store.adopt.after-live-swap",
    "store.adopt.after-cert-link",
    "store.adopt.after-key-link",
    # store.SslFolder.stage / activate: the new version
    "store.after-stage-cert",
    "store.after-stage-key",
    "store.after-version-rename",
    "deploy.before-activate",
    "store.after-cert-link",
    "store.after-key-link",
    "store.after-live-swap",
    "deploy.after-activate",
    # the agent config (fsutil.atomic_write)
    "agent-config.after-temp-write",
    "agent-config.after-rename",
    "deploy.after-config-write",
    # nginx takes the pair
    "deploy.before-nginx",
    "deploy.after-nginx",
    # rollback after a failed deployment
    "deploy.rollback.before",
    "deploy.rollback.after-activate",
    "deploy.rollback.after-config-write",
    "deploy.rollback.before-restart",
    "deploy.rollback.after-restart",
    # what was deployed is recorded
    "api.before-metadata-save",
    "metadata.after-temp-write",
    "metadata.after-rename",
    "api.after-metadata-save",
    # renew: a failed attempt is recorded
    "renew.after-failure-recorded",
)


def failpoint(name: str) -> None:
    """Kill this process with SIGKILL when ``SESAM_TLS_FAILPOINT`` is ``name``."""
    trace = os.environ.get(TRACE_ENV)
    if trace:
        with open(trace, "a", encoding="utf-8") as f:
            f.write(name + "\n")
    if os.environ.get(ENV) == name:
        import signal  # only here: every command imports this module

        os.kill(os.getpid(), signal.SIGKILL)
