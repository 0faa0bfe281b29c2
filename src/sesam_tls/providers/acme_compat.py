"""Every reliance of sesam-tls on the insides of the ``acme`` package (certbot's ACME library), in one place.

Everywhere else sesam-tls uses ``acme`` through its public API only: the
message classes (``acme.messages``), ``ClientV2``'s methods, ``ClientNetwork``'s
``post``/``get``/``head`` and its documented attributes (``key``, ``alg``,
``account``, ``verify_ssl``, ``user_agent``, ``session``), ``acme.jws`` and
``acme.errors``. What the public API does not offer, and why we need it:

1. ``ClientNetwork._send_request(method, url, **kwargs)``, overridden. Every
   request acme makes (the directory GET, the newNonce HEAD, each signed POST)
   goes through it, so it is the one place to bound a request (a deadline
   checked while reading, a size cap, at most ``CA_CONNECTIONS`` at a time on
   one shared connection pool) and to take every answer's ``Replay-Nonce``,
   error answers included, into a pool shared by the worker threads. acme
   calls it with the keywords ``data`` and ``headers`` (and may add
   ``timeout``); :func:`compat_network`'s class refuses any other argument, so that a
   new one is noticed rather than silently dropped.
2. ``ClientNetwork._get_nonce(url, new_nonce_url)``, overridden: a nonce from
   that pool. acme's own (a plain set, ``_nonces``) is not safe for threads and
   makes a thread that finds it empty send a HEAD even when answers bringing
   nonces are on their way.
3. ``ClientNetwork._add_nonce(response)``, overridden to do nothing: the
   request has kept the nonce already (keeping it twice would hand one nonce to
   two threads).
4. ``messages.NewOrder`` subclassed with a ``replaces`` field (RFC 9773, ARI),
   which acme does not send: relies on ``NewOrder`` being a josepy
   ``JSONObjectWithFields`` whose subclasses may declare more fields.

Behaviour of public names that the above builds on (checked too): the
``Replay-Nonce`` header's value is the nonce's ``b64jose`` encoding (what
``acme.jws`` signs into the protected header), decoded here with josepy's
public ``decode_b64jose``; acme turns every 409 into a ``ConflictError`` that
keeps only the ``Location``, so the request raises a 409 problem without one
(RFC 9773's ``alreadyReplaced``) as ``messages.Error`` before acme sees it;
``post`` raises ``messages.Error`` with code ``badNonce`` after its one retry.

The subclass keeps all its state in one attribute, ``sesam``, and adds two
methods, ``send`` and ``take_nonce``: names acme's class does not have, so a
new acme attribute cannot be shadowed unnoticed. tests/test_acme_compat.py
checks every item (signatures with ``inspect``, attributes, the field's JSON
round trip, a real exchange with Pebble through every override) and names the
acme version and what changed when a release breaks one; pyproject.toml bounds
``acme`` below its next major release.

``acme`` and ``josepy`` are imported inside the functions (``import sesam_tls`` stays light).
"""

from __future__ import annotations

import functools
from typing import Any, Optional

__all__ = ["ADDED_NAMES", "OVERRIDDEN", "SEND_KEYWORDS", "acme_version", "compat_network", "decode_nonce",
           "new_order_message"]

#: The private methods of ``acme.client.ClientNetwork`` that :func:`compat_network`'s class overrides, with the
#: parameters acme calls them with (after ``self``).
OVERRIDDEN: dict[str, tuple[str, ...]] = {
    "_send_request": ("method", "url", "*args", "**kwargs"),
    "_get_nonce": ("url", "new_nonce_url"),
    "_add_nonce": ("response",),
}
#: The keyword arguments of ``_send_request`` that its ``send`` understands.
SEND_KEYWORDS = frozenset({"data", "headers", "timeout"})
#: What the subclass adds to ``ClientNetwork``; acme's class must have none of them.
ADDED_NAMES = ("sesam", "send", "take_nonce")


def acme_version() -> str:
    """The installed ``acme`` release, for the messages that say what changed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("acme")
    except PackageNotFoundError:  # pragma: no cover - acme imported from a source tree
        return "(unknown version)"


def decode_nonce(value: str) -> bytes:
    """A ``Replay-Nonce`` header's value as the bytes ``acme.jws`` signs (ValueError when it is malformed)."""
    import josepy as jose

    try:
        return bytes(jose.decode_b64jose(value))
    except jose.DeserializationError as exc:
        raise ValueError(f"malformed nonce: {exc}") from None


@functools.cache
def compat_network() -> Any:
    """The ``acme.client.ClientNetwork`` subclass to derive from (built on first use: lazy import of acme)."""
    from acme import client

    class _CompatNetwork(client.ClientNetwork):
        """``ClientNetwork`` whose requests and nonces are the subclass's: it defines :meth:`send`
        (one HTTP request, returning the ``requests`` response with its body read) and
        :meth:`take_nonce` (a nonce for the next signed POST)."""

        def _send_request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            unknown = sorted(set(kwargs) - SEND_KEYWORDS)
            if args or unknown:
                raise TypeError(
                    f"acme {acme_version()} calls ClientNetwork._send_request with "
                    f"{', '.join(unknown) or f'{len(args)} positional argument(s)'} beyond method and url; "
                    f"sesam-tls handles only {', '.join(sorted(SEND_KEYWORDS))} (sesam_tls.providers.acme_compat)"
                )
            return self.send(method, url, data=kwargs.get("data"), headers=kwargs.get("headers"),
                             timeout=kwargs.get("timeout"))

        def _get_nonce(self, url: str, new_nonce_url: Optional[str]) -> Any:
            return self.take_nonce(url, new_nonce_url)

        def _add_nonce(self, response: Any) -> None:
            """Nothing: :meth:`send` has kept the nonce of every answer already."""

        def send(self, method: str, url: str, *, data: Any = None, headers: Optional[dict[str, str]] = None,
                 timeout: Optional[float] = None) -> Any:
            raise NotImplementedError

        def take_nonce(self, url: str, new_nonce_url: Optional[str]) -> bytes:
            raise NotImplementedError

    return _CompatNetwork


@functools.cache
def new_order_message() -> Any:
    """``messages.NewOrder`` plus ``replaces`` (RFC 9773), which the ``acme`` package does not send."""
    import josepy as jose
    from acme import messages

    class NewOrder(messages.NewOrder):
        replaces: Optional[str] = jose.field("replaces", omitempty=True)

    return NewOrder
