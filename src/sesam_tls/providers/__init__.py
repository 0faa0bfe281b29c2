"""Certificate providers: each turns a :class:`CertRequest` into a :class:`Bundle`.

A provider writes nothing and restarts nothing; the deploy pipeline does.
The registry is a plain dict, filled lazily so that a verb imports only
the provider it uses. ``CertRequest`` and ``Provider`` are loaded on first
use (PEP 562): reading the record (``providers.registry``) must not import
:mod:`sesam_tls.bundle` and with it cryptography (a renewal with nothing due).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .base import CertRequest, Provider

__all__ = ["CertRequest", "Provider"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import base

        value = getattr(base, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
