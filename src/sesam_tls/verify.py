"""Ask a running server which certificate it serves: a real TLS handshake."""

from __future__ import annotations

import time
from typing import Optional

from .errors import UsageError

__all__ = ["parse_address", "served_certificate"]


def parse_address(value: str, default_port: int = 443) -> tuple[str, int]:
    """``127.0.0.1:443``, ``[::1]:443``, ``host`` -> (host, port)."""
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise UsageError(f"invalid address {value!r}: the port is not a number") from None
    if not host or not 0 < port < 65536:
        raise UsageError(f"invalid address {value!r}: expected HOST:PORT")
    return host, port


def served_certificate(
    host: str, port: int, *, server_name: Optional[str] = None, timeout: float = 10.0
) -> bytes:
    """DER of the leaf certificate served at ``host:port``, retrying while the port comes up.

    No verification here: the caller compares fingerprints, which is stricter
    than a chain check and works for self-signed certificates too.
    """
    import socket
    import ssl  # here, not at the top: a replayed --verify address is parsed by every renew run

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        try:
            with socket.create_connection((host, port), timeout=max(0.5, deadline - time.monotonic())) as sock:
                with context.wrap_socket(sock, server_hostname=server_name) as tls:
                    der = tls.getpeercert(binary_form=True)
                    if der:
                        return der
                    raise OSError("the server sent no certificate")
        except (OSError, ssl.SSLError) as exc:
            if time.monotonic() + delay > deadline:
                raise ConnectionError(f"no TLS handshake with {host}:{port}: {exc}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
