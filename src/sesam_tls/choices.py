"""Every choice list and spelling the library accepts, in one place (pure, cheap to import).

The library checks values against these; the CLI builds its ``choices=`` and
help texts from them, so the two cannot drift.
"""

from __future__ import annotations

from .keys import DEFAULT_KEY_TYPE, KEY_POLICIES, KEY_TYPE_ALIASES, KEY_TYPES, canonical_key_type
from .node import ENV

__all__ = [
    "CHALLENGES",
    "DEFAULT_KEY_TYPE",
    "ENV",
    "HTTP01_STRATEGIES",
    "KEY_POLICIES",
    "KEY_TYPES",
    "KEY_TYPE_ALIASES",
    "RELOAD_MODES",
    "REVOCATION_REASONS",
    "TSIG_ALGORITHMS",
    "UNSETTABLE",
    "canonical_key_type",
    "canonical_reason",
]

#: How nginx takes a new certificate: ``auto`` restarts when the agent config changed, else reloads.
RELOAD_MODES = ("auto", "reload", "restart")

#: The recorded settings ``configure`` can forget (``unset``; its default applies again), by the record's field names.
UNSETTABLE = ("verify", "verify_name", "reload_mode", "restart", "timeout", "metrics_file", "container", "docker_host",
              "proxy", "deploy_hook", "failure_hook")

#: How the HTTP-01 challenge is answered on port 80.
HTTP01_STRATEGIES = ("auto", "standalone", "stop-nginx", "webroot")

#: How the CA checks control of the names.
CHALLENGES = ("http-01", "dns-01")

#: TSIG algorithms for RFC 2136 updates (DNS-01).
TSIG_ALGORITHMS = ("hmac-sha256", "hmac-sha512")

#: RFC 5280 reason codes that Let's Encrypt accepts.
REVOCATION_REASONS = {
    "unspecified": 0,
    "keyCompromise": 1,
    "affiliationChanged": 3,
    "superseded": 4,
    "cessationOfOperation": 5,
}


def canonical_reason(value: str) -> str:
    """A revocation reason in any case (certbot writes ``keycompromise``) -> ours; an unknown one unchanged."""
    return {r.lower(): r for r in REVOCATION_REASONS}.get(value.lower(), value)
