"""The renewal as the timer runs it: what the watched run recorded, replayed (the edge of :mod:`sesam_tls.replay`).

The timer's run has an empty environment and no command line to speak of, so
:func:`renew_replayed` reads the record first and runs :func:`sesam_tls.renew`
with the recorded deployment settings, container, Docker host and proxy,
under whatever this run was given (which wins for this run only: ``configure``
changes the record). A secret the record says came from an environment
variable, which this run will not have, is named in one warning line.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, MutableMapping, Optional

from .errors import SesamTLSError
from .node import ENV, Node
from .replay import DeployGiven, missing_secrets, proxy_environment
from .state import load_record

if TYPE_CHECKING:  # pragma: no cover
    import datetime as dt

    from .renew import RenewResult

__all__ = ["renew_replayed"]

log = logging.getLogger("sesam_tls")


def renew_replayed(
    node: Optional[Node] = None,
    *,
    given: Optional[DeployGiven] = None,
    env: Optional[MutableMapping[str, str]] = None,
    force: bool = False,
    dry_run: bool = False,
    days: Optional[int] = None,
    key_policy: Optional[str] = None,
    new_key: bool = False,
    notify_url_file: Optional[str] = None,
    now: Optional[dt.datetime] = None,
    rng: Optional[random.Random] = None,
    lock_wait: float = 10.0,
) -> RenewResult:
    """:func:`sesam_tls.renew` with the record's settings replayed under ``given``; see the module docstring.

    ``env`` (default ``os.environ``) is where the node's container and Docker
    host may have been given (``SESAM_TLS_CONTAINER``, ``DOCKER_HOST``: then
    they win over the recorded ones), and where the recorded proxy is put
    for the variables it lacks, so the CA is reached as in the watched run.
    The metrics file is the given one, else the recorded one.
    """
    from .renew import renew

    env = os.environ if env is None else env
    given = given or DeployGiven()
    node = node or Node.from_settings(env=env)
    try:
        record = load_record(node.metadata_path)
    except SesamTLSError:
        record = None  # renew says why, with the lock held
    recorded = record.settings if record is not None else None
    options = given.options(recorded)
    metrics = given.metrics_file or (recorded.metrics_file if recorded is not None else None)
    if recorded is not None:
        if recorded.container and not (given.container or env.get(ENV["container"])):
            node = node.with_(container=recorded.container)
        if recorded.docker_host and not (given.docker_host or env.get(ENV["docker_host"])):
            node = node.with_(docker_host=recorded.docker_host)
        env.update(proxy_environment(recorded.proxy, env))
    for line in missing_secrets(record):
        log.warning("%s", line)
    return renew(node, force=force, dry_run=dry_run, days=days, options=options, now=now, rng=rng,
                 metrics_file=Path(metrics) if metrics else None, lock_wait=lock_wait, key_policy=key_policy,
                 new_key=new_key, notify_url_file=notify_url_file)
