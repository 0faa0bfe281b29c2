"""Ask a running server which certificate it serves: a real TLS handshake."""

from __future__ import annotations

import time
from typing import Callable, Optional

from .deadline import Deadline, poll
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
    host: str,
    port: int,
    *,
    server_name: Optional[str] = None,
    timeout: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bytes:
    """DER of the leaf certificate served at ``host:port``, retrying while the port comes up.

    No verification here: the caller compares fingerprints, which is stricter
    than a chain check and works for self-signed certificates too. Tried at
    once, then every 20 ms doubling to 250 ms until ``timeout``; the
    ConnectionError then names the last failure. ``clock`` and ``sleep``: for tests.
    """
    import socket
    import ssl  # here, not at the top: a replayed --verify address is parsed by every renew run

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    deadline = Deadline(timeout, f"the TLS handshake with {host}:{port}", clock=clock)
    failed: list[BaseException] = []

    def handshake() -> tuple[bool, bytes, None]:
        try:
            with socket.create_connection((host, port), timeout=max(0.5, deadline.remaining())) as sock:
                with context.wrap_socket(sock, server_hostname=server_name) as tls:
                    der = tls.getpeercert(binary_form=True)
                    if der:
                        return True, der, None
                    raise OSError("the server sent no certificate")
        except (OSError, ssl.SSLError) as exc:
            failed[:] = [exc]
            return False, b"", None

    def give_up() -> ConnectionError:
        error = ConnectionError(f"no TLS handshake with {host}:{port}: {failed[-1]}")
        error.__cause__ = failed[-1]
        return error

    return poll(handshake, deadline, "connecting", at_once=True, first=0.02, growth=2, cap=0.25,
                give_up=give_up, sleep=sleep)
