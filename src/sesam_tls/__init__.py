"""sesam-tls: TLS certificates for self-hosted Sesam nodes.

    import sesam_tls
    node = sesam_tls.Node.from_settings(root="/tmp/rehearsal")
    request = sesam_tls.CertRequest.build(["node.example.com"])
    sesam_tls.issue(request, sesam_tls.SelfSigned(), node=node,
                    options=sesam_tls.DeployOptions(restart=False))
"""

from __future__ import annotations

from .api import Outcome, import_certificate, issue, status
from .bundle import Bundle
from .deploy import DeployOptions, DeployResult
from .errors import SesamTLSError
from .node import Node
from .providers.base import CertRequest, Provider
from .providers.imported import Imported
from .providers.selfsigned import SelfSigned

__version__ = "0.1.0.dev0"

__all__ = [
    "Bundle",
    "CertRequest",
    "DeployOptions",
    "DeployResult",
    "Imported",
    "Node",
    "Outcome",
    "Provider",
    "SelfSigned",
    "SesamTLSError",
    "import_certificate",
    "issue",
    "status",
]
