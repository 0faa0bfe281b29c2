"""sesam-tls: TLS certificates for self-hosted Sesam nodes.

    import sesam_tls
    node = sesam_tls.Node.from_settings(root="/tmp/rehearsal")
    request = sesam_tls.CertRequest.build(["node.example.com"])
    sesam_tls.issue(request, sesam_tls.SelfSigned(), node=node,
                    options=sesam_tls.DeployOptions(restart=False))
    sesam_tls.renew(node)   # what the timer runs
    sesam_tls.ensure(node, sesam_tls.Desired(provider="selfsigned", names=("node.example.com",)))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__ as __version__

# Public names are loaded on first use (PEP 562): `sesam-tls --help` and a
# renewal with nothing due do not pay for cryptography, acme or docker.
_WHERE = {
    "Acme": ".providers.acme",
    "Bundle": ".bundle",
    "CertRequest": ".providers.base",
    "CheckItem": ".checks",
    "CheckReport": ".checks",
    "DeployOptions": ".options",
    "DeployResult": ".deploy",
    "Desired": ".desired",
    "EnsureResult": ".desired",
    "Http01Options": ".http01",
    "Imported": ".providers.imported",
    "Node": ".node",
    "Outcome": ".api",
    "Provider": ".providers.base",
    "RenewResult": ".renew",
    "SelfSigned": ".providers.selfsigned",
    "SesamTLSError": ".errors",
    "check": ".checks",
    "ensure": ".desired",
    "import_certificate": ".api",
    "issue": ".api",
    "renew": ".renew",
    "rollback": ".api",
    "status": ".api",
}

if TYPE_CHECKING:  # pragma: no cover
    from .api import Outcome, import_certificate, issue, rollback, status
    from .bundle import Bundle
    from .checks import CheckItem, CheckReport, check
    from .deploy import DeployResult
    from .desired import Desired, EnsureResult, ensure
    from .options import DeployOptions
    from .errors import SesamTLSError
    from .http01 import Http01Options
    from .node import Node
    from .providers.acme import Acme
    from .providers.base import CertRequest, Provider
    from .providers.imported import Imported
    from .providers.selfsigned import SelfSigned
    from .renew import RenewResult, renew

__all__ = [
    "Acme",
    "Bundle",
    "CertRequest",
    "CheckItem",
    "CheckReport",
    "DeployOptions",
    "DeployResult",
    "Desired",
    "EnsureResult",
    "Http01Options",
    "Imported",
    "Node",
    "Outcome",
    "Provider",
    "RenewResult",
    "SelfSigned",
    "SesamTLSError",
    "check",
    "ensure",
    "import_certificate",
    "issue",
    "renew",
    "rollback",
    "status",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        value = getattr(importlib.import_module(_WHERE[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sesam_tls' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
