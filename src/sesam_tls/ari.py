"""ACME Renewal Information (RFC 9773): the CA tells when to renew.

ARI needs no account and no signature: a GET on the directory's
``renewalInfo`` URL plus the certificate's ID. Kept apart from the ACME
provider so that ``renew`` with nothing due never imports ``acme``.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any, Optional

from cryptography import x509

from .deadline import retry_after_seconds
from .renewal import parse_time

__all__ = ["AriWindow", "cert_id", "fetch_window", "DEFAULT_RETRY"]

DEFAULT_RETRY = dt.timedelta(hours=6)
MIN_RETRY = dt.timedelta(minutes=1)
MAX_RETRY = dt.timedelta(days=1)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def cert_id(cert: x509.Certificate) -> Optional[str]:
    """``base64url(AKI keyIdentifier) "." base64url(serial DER bytes)``; None without an AKI."""
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return None
    if not aki.key_identifier:
        return None
    serial = cert.serial_number
    return f"{_b64(aki.key_identifier)}.{_b64(serial.to_bytes(serial.bit_length() // 8 + 1, 'big'))}"


@dataclass(frozen=True)
class AriWindow:
    start: dt.datetime
    end: dt.datetime
    retry_after: dt.timedelta
    explanation: Optional[str] = None


def _retry_after(header: Optional[str], now: dt.datetime) -> dt.timedelta:
    seconds = retry_after_seconds(header, now=now)
    if seconds is None:
        return DEFAULT_RETRY
    return min(max(dt.timedelta(seconds=min(seconds, MAX_RETRY.total_seconds())), MIN_RETRY), MAX_RETRY)


def fetch_window(
    directory_url: str,
    cert: x509.Certificate,
    *,
    ca_bundle: Optional[str] = None,
    timeout: float = 10.0,
    now: Optional[dt.datetime] = None,
) -> Optional[AriWindow]:
    """The CA's suggested window, or None when the CA offers no ARI.

    Raises ``requests`` exceptions, ValueError on a broken answer, or
    IssuanceError when the CA is too slow (the ACME deadline, checked while
    reading: ``renew`` asks while it holds the node lock) or sends too much;
    the caller falls back to the lifetime rule.
    """
    from urllib.parse import urlsplit

    from .providers.acme_net import acme_deadline, bounded_request, bounded_session

    now = now or dt.datetime.now(dt.timezone.utc)
    ident = cert_id(cert)
    verify: Any = ca_bundle or True
    deadline = acme_deadline(f"the renewal-info request to {urlsplit(directory_url).netloc or directory_url}")
    with bounded_session() as session:
        directory = bounded_request(session, "GET", directory_url, deadline=deadline, timeout=timeout, verify=verify)
        directory.raise_for_status()
        base = directory.json().get("renewalInfo")
        if not base or not ident:
            return None
        resp = bounded_request(session, "GET", f"{base.rstrip('/')}/{ident}", deadline=deadline, timeout=timeout,
                               verify=verify)
        resp.raise_for_status()
    body = resp.json()
    window = body["suggestedWindow"]
    start, end = parse_time(window["start"]), parse_time(window["end"])
    if start is None or end is None:
        raise ValueError("ARI window without a start or an end")
    if end < start:
        raise ValueError("ARI window ends before it starts")
    if not (100 <= start.year and end.year <= 9000):  # the record keeps times the calendar can add a day to
        raise ValueError("ARI window outside the years 100 to 9000")
    return AriWindow(start, end, _retry_after(resp.headers.get("Retry-After"), now), body.get("explanationURL"))
