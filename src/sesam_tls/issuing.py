"""A new certificate from names: the request and the provider built, the key kept, issued or rehearsed.

What ``sesam-tls issue`` does, as one library call: self-signed or ACME
(:class:`~sesam_tls.acme_source.AcmeSource`), the live key kept when the key
policy is ``reuse``, and the run's one deploy plan
(:func:`sesam_tls.deploy.prepare`) whose nginx container the ACME provider
borrows when it may stop nginx for HTTP-01: one Docker client a run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any, Optional, Sequence

from .errors import UsageError
from .keys import DEFAULT_KEY_TYPE
from .options import DeployOptions

if TYPE_CHECKING:  # pragma: no cover
    from .acme_source import AcmeSource
    from .api import Outcome
    from .deploy import DeployPlan
    from .node import Node
    from .providers.base import CertRequest, Provider
    from .rehearse import Rehearsal
    from .state import DeploySettings

__all__ = ["issue_certificate", "rehearse_certificate"]


def _order(
    names: Sequence[str],
    ips: Sequence[str],
    *,
    self_signed: bool,
    acme: "Optional[AcmeSource]",
    key_type: str,
    days: Optional[int],
    key_policy: Optional[str],
    node: "Node",
    options: DeployOptions,
) -> "tuple[CertRequest, Provider, DeployPlan]":
    """The request, the provider and the run's plan (not checked yet): everything about the
    input is refused here, before Docker is asked or anything is written."""
    from .deploy import DeployPlan
    from .providers.base import CertRequest

    plan = DeployPlan(node, options)
    provider: Any
    if self_signed:
        if acme is not None:
            raise UsageError("`acme` options have no meaning with `self_signed`")
        from .providers.selfsigned import SelfSigned

        request = CertRequest.build(names, ips, key_type=key_type, days=days, key_policy=key_policy)
        provider = SelfSigned()
    else:
        from .acme_source import AcmeSource

        acme = acme or AcmeSource()
        if days is not None:
            raise UsageError("`days` is for `self_signed`; the CA chooses an ACME certificate's lifetime")
        # HTTP-01 cannot prove a wildcard: refused here, before any network call.
        request = CertRequest.build(names, ips, key_type=key_type, challenge=acme.challenge,
                                    key_policy=key_policy)
        if not options.restart and acme.strategy == "stop-nginx":
            raise UsageError("`http01` stop-nginx stops the nginx container; `no_restart` asks to leave it alone")
        provider = acme.provider(node, nginx=plan.container if options.restart else None)
    if key_policy == "reuse":
        from .renew import with_live_key
        from .store import SslFolder

        if SslFolder(node.ssl_dir).read_pair() is not None:  # else there is no key to keep yet
            request = with_live_key(request, node)
    return request, provider, plan


def issue_certificate(
    names: Sequence[str] = (),
    ips: Sequence[str] = (),
    *,
    self_signed: bool = False,
    acme: "Optional[AcmeSource]" = None,
    key_type: str = DEFAULT_KEY_TYPE,
    days: Optional[int] = None,
    key_policy: Optional[str] = None,
    node: "Optional[Node]" = None,
    options: DeployOptions = DeployOptions(),
    settings: "Optional[DeploySettings]" = None,
    replace: bool = False,
    notify_url_file: Optional[str] = None,
    now: Optional[dt.datetime] = None,
) -> "Outcome":
    """Issue a certificate for ``names`` and ``ips`` (self-signed, or from ``acme``: Let's Encrypt
    when not given) and deploy it (:func:`sesam_tls.issue`).

    ``key_policy`` ``reuse`` keeps the key nginx serves (clients that pinned it keep
    working). ``notify_url_file``: the file holding the renewals' webhook URL, checked
    first and recorded after the deployment. ``settings``, ``replace``: as :func:`sesam_tls.issue`.
    """
    from .api import _after_deployment, _notify_source, issue_with
    from .node import Node

    node = node or Node.from_settings()
    url_from = _notify_source(notify_url_file)
    request, provider, plan = _order(names, ips, self_signed=self_signed, acme=acme, key_type=key_type, days=days,
                                     key_policy=key_policy, node=node, options=options)
    plan.check(probe=False)  # the probe after the lock (issue_with)
    outcome = issue_with(request, provider, plan, now=now, settings=settings, replace=replace)
    _after_deployment(node, outcome, url_from)  # the recorded metrics file, the webhook's source
    return outcome


def rehearse_certificate(
    names: Sequence[str] = (),
    ips: Sequence[str] = (),
    *,
    self_signed: bool = False,
    acme: "Optional[AcmeSource]" = None,
    key_type: str = DEFAULT_KEY_TYPE,
    days: Optional[int] = None,
    key_policy: Optional[str] = None,
    node: "Optional[Node]" = None,
    options: DeployOptions = DeployOptions(),
    notify_url_file: Optional[str] = None,
    now: Optional[dt.datetime] = None,
) -> "Rehearsal":
    """``issue --dry-run``: :func:`issue_certificate` rehearsed (:mod:`sesam_tls.rehearse`);
    nothing is deployed or recorded and the live nginx is never stopped. The message
    starts with the names rehearsed for."""
    from .api import _notify_source, rehearse_issue_with
    from .node import Node

    node = node or Node.from_settings()
    _notify_source(notify_url_file)  # a bad file fails the rehearsal too
    request, provider, plan = _order(names, ips, self_signed=self_signed, acme=acme, key_type=key_type, days=days,
                                     key_policy=key_policy, node=node, options=options)
    plan.check(probe=False)  # no probe: a rehearsal leaves the ssl folder as it was
    rehearsal = rehearse_issue_with(request, provider, plan, now=now)
    message = f"dry run succeeded for {', '.join(request.identifiers)}: {rehearsal.message}"
    return dataclasses.replace(rehearsal, message=message)

