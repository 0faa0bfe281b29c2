"""Certificate providers: each turns a :class:`CertRequest` into a :class:`Bundle`.

A provider writes nothing and restarts nothing; the deploy pipeline does.
The registry is a plain dict, filled lazily so that a verb imports only
the provider it uses.
"""

from __future__ import annotations

from .base import CertRequest, Provider

__all__ = ["CertRequest", "Provider"]
