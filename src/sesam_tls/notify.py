"""Tell someone: attention alerts through the failure hook, and a webhook event.

The renewal timer runs with nobody watching, and since 2025 no CA e-mails
before a certificate expires. So a run that needs a human runs the failure
hook with ``SESAM_TLS_EVENT=attention`` and ``SESAM_TLS_REASON`` (one of
:data:`REASONS`), at most once a day per reason (the timer runs twice a day,
and a chat full of repeats is muted); and every run can POST a small JSON
event to a webhook.

The event (``version`` 1), ``Content-Type: application/json``::

    {"version": 1, "event": "renewed" | "failed" | "attention" | "rolled-back",
     "node": "<host name>", "names": ["node.example.com"], "serial": "<hex>",
     "not_after": "<ISO 8601>", "reason": "<attention reason, or what happened>",
     "time": "<ISO 8601, UTC>", "text": "<one line for people>"}

``text`` makes it readable as it is by chat webhooks (Slack, Mattermost)
that show a ``text`` field. The webhook URL is read from a file
(``--notify-url-file``): chat webhooks carry their token in the URL, so the
record keeps the file's path (a :class:`~sesam_tls.state.SecretSource`),
never the URL, and no message names it. A POST has a 5 s timeout and reads
at most 64 KiB of the answer; an event that was not delivered is kept
(``notify.pending``, at most :data:`MAX_PENDING`) and sent again by the next
run. A notification that fails never fails the renewal.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from .errors import SesamTLSError, UsageError, one_line
from .state import AttentionSent, Notify, PendingEvent, SecretSource, Timestamp

if TYPE_CHECKING:  # pragma: no cover
    from .node import Node
    from .options import DeployOptions
    from .renewal import Decision
    from .state import NodeRecord

__all__ = [
    "ATTENTION_EVERY",
    "EVENTS",
    "MAX_PENDING",
    "REASONS",
    "TIMEOUT",
    "after_renewal",
    "attention_reasons",
    "check_url_file",
    "make_event",
    "post",
    "remember_url_file",
    "tell",
]

log = logging.getLogger("sesam_tls")

EVENTS = ("renewed", "failed", "attention", "rolled-back")
#: Attention reasons, as ``SESAM_TLS_REASON`` and the event's ``reason`` name them.
REASONS = {
    "imported-expiring": "an imported certificate expires within 30 days (or has expired, or is not valid yet)",
    "not-yet-valid": "the certificate is not valid yet (a clock was ahead)",
    "repeated-failures": "the last renewals failed, 3 or more in a row",
    "ari-early-renewal": "the CA asked through ARI for renewal earlier than usual (often: a revocation is coming)",
}
REPEATED_FAILURES = 3
ATTENTION_EVERY = dt.timedelta(days=1)
TIMEOUT = 5.0
MAX_ANSWER = 64 * 1024
MAX_URL = 4096
MAX_PENDING = 20


# the URL, by source ------------------------------------------------------------------------------


def check_url_file(path: str) -> SecretSource:
    """The source for ``--notify-url-file``, checked now: bad input fails before anything changes."""
    source = SecretSource(kind="file", name=str(Path(path).absolute()))
    _read_url(source)
    return source


def _read_url(source: SecretSource) -> str:
    """The webhook URL from its source. Errors name the file, never its content."""
    import os

    from .fsutil import read_bounded

    if source.kind == "credential":
        folder = os.environ.get("CREDENTIALS_DIRECTORY")
        if not folder:
            raise UsageError(f"the webhook URL comes from the credential {source.name!r}, but this run has none "
                             "($CREDENTIALS_DIRECTORY is not set)")
        path = str(Path(folder) / source.name)
    elif source.kind == "file":
        path = source.name
    else:
        raise UsageError(f"the webhook URL's source {source.kind!r} is not one this sesam-tls can read")
    try:
        data, st = read_bounded(path, MAX_URL)
    except OSError as exc:
        raise UsageError(f"`notify_url_file` {path}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > MAX_URL:
        raise UsageError(f"`notify_url_file` {path}: larger than {MAX_URL} bytes, not a URL file")
    url = data.decode("utf-8", "replace").strip()
    if not url.startswith(("https://", "http://")) or any(c.isspace() for c in url):
        raise UsageError(f"`notify_url_file` {path}: does not hold one http(s) URL")
    if st.st_mode & 0o044 and source.kind == "file":
        log.warning("`notify_url_file` %s is readable by others (mode %04o); chmod 600 it: webhook URLs carry a "
                    "token", path, st.st_mode & 0o777)
    return url


def remember_url_file(node: "Node", source: SecretSource, *, lock_wait: float = 10.0) -> None:
    """Record where the webhook URL comes from (``notify.url_from``), for every later run."""
    from .state import load_record, node_lock, save_record

    with node_lock(node.state_dir, wait=lock_wait):
        rec = load_record(node.metadata_path)
        if rec is None or rec.notify.url_from == source:
            return
        save_record(node.metadata_path, rec.replace(notify=dataclasses.replace(rec.notify, url_from=source)))
    log.info("webhook: events go to the URL in %s", source.name)


# events ----------------------------------------------------------------------------------------


def make_event(kind: str, rec: "NodeRecord", *, reason: str, now: dt.datetime,
               detail: Optional[str] = None) -> PendingEvent:
    """An event about the record's certificate; ``text`` is the line people read (``detail``, else the reason)."""
    cert = rec.certificate
    import socket  # here: a run with nothing to tell does not import it

    names = tuple(cert.identifiers)
    node = socket.gethostname()
    what = {"renewed": "renewed the certificate", "failed": "renewal failed", "attention": "needs attention",
            "rolled-back": "rolled back the certificate"}.get(kind, kind)
    if detail is None:
        detail = REASONS.get(reason, reason) if kind == "attention" else reason
    text = f"sesam-tls on {node}: {what} for {', '.join(names) or 'no names'}"
    text += f" (expires {cert.not_after})" if cert.not_after else ""
    text += f": {detail}" if detail else ""
    return PendingEvent(event=kind, node=node, names=names, serial=cert.serial, not_after=cert.not_after,
                        reason=reason, time=Timestamp(now.astimezone(dt.timezone.utc).isoformat()), text=text[:1000])


def _body(event: PendingEvent) -> dict[str, Any]:
    return {"version": 1, "event": event.event, "node": event.node, "names": list(event.names),
            "serial": event.serial, "not_after": event.not_after, "reason": event.reason, "time": event.time,
            "text": event.text}


def post(url: str, body: dict[str, Any], *, timeout: float = TIMEOUT) -> Optional[str]:
    """POST ``body`` as JSON; None when the receiver took it (2xx), else why not (never the URL).

    At most ``timeout`` s to connect and between bytes, and at most
    ``MAX_ANSWER`` bytes of the answer are read (a receiver is not trusted
    to be small or quick); no redirect is followed (it could lead the
    token elsewhere).
    """
    import requests

    deadline = time.monotonic() + 2 * timeout
    try:
        with requests.post(url, json=body, timeout=(timeout, timeout), stream=True, allow_redirects=False,
                           headers={"User-Agent": "sesam-tls"}) as response:
            got = 0
            for chunk in response.iter_content(8192):
                got += len(chunk)
                if got >= MAX_ANSWER or time.monotonic() > deadline:
                    break
            if 200 <= response.status_code < 300:
                return None
            return f"the receiver answered HTTP {response.status_code}"
    except requests.exceptions.Timeout:
        return f"the receiver did not answer within {timeout:.0f} s"
    except requests.exceptions.ConnectionError:
        return "cannot connect to the receiver"
    except Exception as exc:  # noqa: BLE001 - its text may hold the URL: name the kind only
        return f"the request failed ({type(exc).__name__})"


def _deliver(notify: Notify, events: list[PendingEvent]) -> Notify:
    """Send what is pending and ``events``, in order; what was not delivered stays pending."""
    queue = [*notify.pending, *events]
    if notify.url_from is None or not queue:
        return dataclasses.replace(notify, pending=())
    try:
        url = _read_url(notify.url_from)
    except UsageError as exc:
        log.warning("webhook: %s; %d event(s) kept for the next run", exc, len(queue))
        return dataclasses.replace(notify, pending=tuple(queue[-MAX_PENDING:]))
    left: list[PendingEvent] = []
    for event in queue:
        if left:  # the receiver is down: keep the order, do not wait once per event
            left.append(event)
            continue
        problem = post(url, _body(event))
        if problem is None:
            log.info("webhook: sent the %s event", event.event)
        else:
            log.warning("webhook: could not send the %s event to the URL in %s: %s; kept for the next run",
                        event.event, notify.url_from.name, problem)
            left.append(event)
    if len(left) > MAX_PENDING:
        log.warning("webhook: %d undelivered events; dropping the %d oldest", len(left), len(left) - MAX_PENDING)
    return dataclasses.replace(notify, pending=tuple(left[-MAX_PENDING:]))


# attention ------------------------------------------------------------------------------------


def attention_reasons(before: "NodeRecord", after: "NodeRecord", decision: Optional["Decision"],
                      status: str) -> list[tuple[str, str]]:
    """Why a human should look, as (reason, one line); pure.

    ``before``/``after``: the record at the start and at the end of the run
    (a renewal replaces the certificate and with it the CA's ARI window).
    """
    from .renewal import lifetime_renewal_time, parse_time

    out: list[tuple[str, str]] = []
    if decision is not None and decision.attention and status != "renewed":
        out.append(("imported-expiring" if after.provider == "import" else "not-yet-valid", decision.reason))
    failures = int(after.renewal.failures)
    if failures >= REPEATED_FAILURES:
        out.append(("repeated-failures", f"the last {failures} renewals failed: {after.renewal.last_result}"))
    ari = before.renewal.ari
    not_before, not_after = parse_time(before.certificate.not_before), parse_time(before.certificate.not_after)
    end = parse_time(ari.end) if ari is not None and ari.supported else None
    if end is not None and not_before is not None and not_after is not None:
        usual = lifetime_renewal_time(not_before, not_after)
        if end < usual:
            why = f" ({ari.explanation})" if ari and ari.explanation else ""
            out.append(("ari-early-renewal", f"the CA asked for renewal by {end.isoformat()}, before the usual "
                                             f"{usual.isoformat()}{why}"))
    return out


def _due(notify: Notify, reason: str, now: dt.datetime) -> bool:
    from .renewal import parse_time

    for sent in notify.attention_sent:
        if sent.reason == reason:
            at = parse_time(sent.at)
            return at is None or now - at >= ATTENTION_EVERY or now < at
    return True


def _mark(notify: Notify, reasons: list[str], now: dt.datetime) -> Notify:
    kept = [s for s in notify.attention_sent if s.reason not in reasons]
    fresh = [AttentionSent(reason=r, at=Timestamp(now.isoformat())) for r in reasons]
    return dataclasses.replace(notify, attention_sent=tuple(kept + fresh))


# after a run ----------------------------------------------------------------------------------


def after_renewal(node: "Node", before: "NodeRecord", status: str, decision: Optional["Decision"], *,
                  options: "DeployOptions", now: dt.datetime, reason: str = "") -> None:
    """Under the node lock, after ``renew``: attention hooks, the webhook event, pending ones.

    ``status`` is the renewal's result (``renewed``, ``failed``, ``attention``,
    ``not-due``). Never raises: a notification that fails is logged and the
    renewal's result stands.
    """
    try:
        _after_renewal(node, before, status, decision, options=options, now=now, reason=reason)
    except Exception as exc:  # noqa: BLE001 - by design: telling must not change the renewal's result
        log.warning("could not notify (%s); the renewal's result stands", _why(exc))


def _after_renewal(node: "Node", before: "NodeRecord", status: str, decision: Optional["Decision"], *,
                   options: "DeployOptions", now: dt.datetime, reason: str) -> None:
    from .state import load_record, save_record

    rec = load_record(node.metadata_path)
    if rec is None:
        return
    events: list[PendingEvent] = []
    if status in ("renewed", "failed"):
        events.append(make_event(status, rec, reason=reason, now=now))
    notify = rec.notify
    due = [(code, line) for code, line in attention_reasons(before, rec, decision, status) if _due(notify, code, now)]
    command = options.failure_hook if options.failure_hook is not None else rec.hooks.failure
    if due:  # api (and with it the deployment) only when there is a hook to run: not on every timer run
        from .api import hook_env
        from .hooks import run_hook
    for code, line in due:
        # the reason itself is the run's own closing line; say only that it is being told
        if command:
            log.info("attention (%s): running the failure hook", code)
        run_hook("failure", command, {**hook_env(node, rec, "attention", line), "SESAM_TLS_REASON": code,
                                      "SESAM_TLS_MESSAGE": line},
                 allow=rec.hooks.env, secret=options.secret_env)
        events.append(make_event("attention", rec, reason=code, now=now, detail=line))
    notify = _deliver(_mark(notify, [code for code, _ in due], now), events)
    if notify != rec.notify:
        save_record(node.metadata_path, rec.replace(notify=notify))


def tell(node: "Node", kind: str, *, reason: str = "", now: Optional[dt.datetime] = None) -> None:
    """Send one event about the node's record (e.g. ``rolled-back``), under the caller's node lock;
    kept pending when it cannot be delivered. Never raises."""
    from .state import load_record, save_record

    try:
        rec = load_record(node.metadata_path)
        if rec is None:
            return
        notify = _deliver(rec.notify, [make_event(kind, rec, reason=reason, now=now or dt.datetime.now(dt.timezone.utc))])
        if notify != rec.notify:
            save_record(node.metadata_path, rec.replace(notify=notify))
    except Exception as exc:  # noqa: BLE001 - telling must not change the result
        log.warning("could not notify (%s)", _why(exc))


def _why(exc: BaseException) -> str:
    """Our own errors say what went wrong; another's text might quote the webhook URL."""
    return one_line(exc, 160) if isinstance(exc, SesamTLSError) else type(exc).__name__
