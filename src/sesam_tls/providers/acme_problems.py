"""ACME problem documents, explained in a Sesam node's terms (pure: text in, text out).

The CA's own words come first (they are exact), then the likely cause as
the operator can act on it: the node's inbound firewall rule for port 80,
the name's DNS, outbound HTTPS to the CA.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

__all__ = [
    "LIKELY_CAUSE",
    "challenge_failure",
    "dns01_failure",
    "problem_code",
    "problem_text",
    "rate_limited",
    "refused_for_replaces",
]

_FIREWALL = (
    "port {port} of this node is not reachable from the internet: open the Sesam inbound firewall "
    "rule 80/HTTP from ANY (and forward port 80 to this host if it sits behind NAT)"
)
_DNS_ELSEWHERE = "the DNS of {name} does not point at this node"

#: ACME error code -> the likely cause, in the node's terms.
LIKELY_CAUSE = {
    "connection": _FIREWALL + ", or " + _DNS_ELSEWHERE,
    "dns": "the DNS of {name} has no usable A/AAAA record: point it at this node's public address",
    "unauthorized": (
        "the CA reached a web server for {name} that did not serve the token: "
        + _DNS_ELSEWHERE
        + ", or a proxy, load balancer or CDN in front of this node answers port 80"
    ),
    "incorrectResponse": (
        "the CA reached a web server for {name} that answered something else: "
        + _DNS_ELSEWHERE
        + ", or a proxy in front of this node answers port 80"
    ),
    "caa": "a CAA record in the DNS of {name} does not allow this CA; add one that does",
    "rejectedIdentifier": "the CA does not issue certificates for {name} (its policy)",
    "rateLimited": "the CA's rate limit was hit; wait before trying again",
    "tls": _FIREWALL,
}


def problem_text(problem: Any) -> str:
    """``detail (code)``, with sub-problems per identifier, from an ``acme.messages.Error``."""
    code = getattr(problem, "code", None) or str(getattr(problem, "typ", "") or "").rsplit(":", 1)[-1]
    detail = (getattr(problem, "detail", None) or getattr(problem, "title", None) or "no detail").strip()
    text = f"{detail} ({code})" if code and code != "blank" else detail
    subs = getattr(problem, "subproblems", None) or ()
    parts = []
    for sub in subs:
        ident = getattr(getattr(sub, "identifier", None), "value", None)
        parts.append(f"{ident + ': ' if ident else ''}{problem_text(sub)}")
    if parts:
        text += " [" + "; ".join(parts) + "]"
    return " ".join(text.split())  # one line, whatever the CA sent


def problem_code(problem: Any) -> str:
    """The ACME error code, also one the ``acme`` package does not list (it says None for those)."""
    code = getattr(problem, "code", None)
    if code:
        return str(code)
    typ = str(getattr(problem, "typ", "") or "")
    return typ.rsplit(":", 1)[-1] if typ.startswith("urn:ietf:params:acme:error:") else ""


def refused_for_replaces(problem: Any) -> bool:
    """True when a CA refused a new order because of its ``replaces`` field (RFC 9773).

    ``alreadyReplaced`` says so; some CAs answer ``malformed`` or
    ``unauthorized`` and name the field in the detail. Either way the order
    can be placed without it: ``replaces`` only spares the renewal from rate
    limits, it is not needed to get a certificate.
    """
    code = problem_code(problem)
    if code == "alreadyReplaced":
        return True
    detail = str(getattr(problem, "detail", "") or "").lower()
    return code in ("malformed", "unauthorized") and "replaces" in detail


def challenge_failure(name: str, problem: Any, *, port: int) -> str:
    """The one line for a failed authorization: what the CA saw, then the likely cause."""
    code = getattr(problem, "code", None) if problem is not None else None
    said = problem_text(problem) if problem is not None else "the authorization became invalid without a reason"
    cause = LIKELY_CAUSE.get(code or "", _FIREWALL + ", or " + _DNS_ELSEWHERE)
    return f"the CA could not validate {name}: {said}; likely cause: {cause.format(name=name, port=port)}"


#: ACME error code -> the likely cause of a failed DNS-01 validation.
DNS01_CAUSE = {
    "unauthorized": (
        "the CA looked up {record} and saw another value than the one this run published: another run for "
        "the same name replaced it, or the CA sees another view of the zone (split DNS) or a server that lags"
    ),
    "incorrectResponse": "the CA looked up {record} and saw another value than the one this run published",
    "dns": (
        "the CA could not look up {record}: the zone's name servers must answer from the internet "
        "(a CNAME to a validation zone must resolve too)"
    ),
    "caa": "a CAA record in the DNS of {name} does not allow this CA or the dns-01 method; add one that does",
    "rejectedIdentifier": "the CA does not issue certificates for {name} (its policy)",
    "rateLimited": "the CA's rate limit was hit; wait before trying again",
}


def dns01_failure(name: str, record: str, problem: Any) -> str:
    """The one line for a failed DNS-01 authorization, in the node's terms."""
    code = getattr(problem, "code", None) if problem is not None else None
    said = problem_text(problem) if problem is not None else "the authorization became invalid without a reason"
    cause = DNS01_CAUSE.get(code or "", "the CA could not find the TXT value at {record}")
    return f"the CA could not validate {name} over DNS-01: {said}; likely cause: {cause.format(name=name, record=record)}"


def rate_limited(said: str, retry_after: Optional[float], *, now: Optional[dt.datetime] = None) -> str:
    """A rate-limit line that says when a retry will be allowed (from Retry-After, if sent)."""
    if retry_after is None:
        when = "the CA did not say when a retry is allowed (see its detail above)"
    else:
        now = now or dt.datetime.now(dt.timezone.utc)
        at = (now + dt.timedelta(seconds=retry_after)).replace(microsecond=0)
        when = f"a retry is allowed after {at.isoformat()} (in {_duration(retry_after)})"
    return f"the CA's rate limit was hit: {said}; {when}"


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
