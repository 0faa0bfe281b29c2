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
    "acme_server": ".acme_source",
    "remembered_acme": ".acme_target",
    "AcmeSource": ".acme_source",
    "AcmeTarget": ".acme_target",
    "Bundle": ".bundle",
    "CertRequest": ".providers.base",
    "DNS01_PARAMETERS": ".acme_source",
    "DeployOptions": ".options",
    "DeployPlan": ".deploy",
    "DeployResult": ".deploy",
    "Desired": ".desired",
    "EnsureResult": ".desired",
    "Http01Options": ".http01",
    "Imported": ".providers.imported",
    "Node": ".node",
    "Outcome": ".api",
    "Provider": ".providers.base",
    "Rehearsal": ".rehearse",
    "RenewResult": ".renew",
    "RenewStatus": ".renew",
    "SelfSigned": ".providers.selfsigned",
    "SesamTLSError": ".errors",
    "dns01_options": ".acme_source",
    "eab_source": ".acme_source",
    "ensure": ".desired",
    "http01_options": ".acme_source",
    "import_certificate": ".api",
    "issue": ".api",
    "issue_certificate": ".issuing",
    "prepare": ".deploy",
    "read_eab": ".acme_source",
    "rehearse_certificate": ".issuing",
    "renew": ".renew",
    "rollback": ".api",
    "status": ".api",
}

if TYPE_CHECKING:  # pragma: no cover
    from .acme_source import DNS01_PARAMETERS, AcmeSource, dns01_options, eab_source, http01_options, read_eab
    from .acme_source import acme_server
    from .acme_target import AcmeTarget, remembered_acme
    from .deploy import DeployPlan, prepare
    from .issuing import issue_certificate, rehearse_certificate
    from .rehearse import Rehearsal
    from .api import Outcome, import_certificate, issue, rollback, status
    from .bundle import Bundle
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
    from .renew import RenewResult, RenewStatus, renew

__all__ = [
    "Acme",
    "AcmeSource",
    "AcmeTarget",
    "Bundle",
    "CertRequest",
    "DNS01_PARAMETERS",
    "DeployOptions",
    "DeployPlan",
    "DeployResult",
    "Desired",
    "EnsureResult",
    "Http01Options",
    "Imported",
    "Node",
    "Outcome",
    "Provider",
    "Rehearsal",
    "RenewResult",
    "RenewStatus",
    "SelfSigned",
    "SesamTLSError",
    "acme_server",
    "dns01_options",
    "eab_source",
    "ensure",
    "http01_options",
    "import_certificate",
    "issue",
    "issue_certificate",
    "prepare",
    "read_eab",
    "remembered_acme",
    "rehearse_certificate",
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
