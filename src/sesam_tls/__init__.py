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

import sys
import types
from typing import TYPE_CHECKING, Any

from ._version import __version__ as __version__

# Public names are loaded on first use (PEP 562): `sesam-tls --help` and a
# renewal with nothing due do not pay for cryptography, acme or docker.
_WHERE = {
    "Account": ".account",
    "AccountInfo": ".account",
    "Acme": ".providers.acme",
    "AcmeSource": ".acme_source",
    "Bundle": ".bundle",
    "CertRequest": ".providers.base",
    "CheckItem": ".checks",
    "CheckReport": ".checks",
    "Configured": ".configure",
    "DNS01_PARAMETERS": ".acme_source",
    "Deactivation": ".account",
    "DeployGiven": ".replay",
    "DeployOptions": ".options",
    "DeployPlan": ".deploy",
    "DeployResult": ".deploy",
    "Desired": ".desired",
    "EnsureResult": ".desired",
    "Http01Options": ".http01",
    "ImportReport": ".importing",
    "Imported": ".providers.imported",
    "KeptVersion": ".rollback",
    "KeyRollover": ".account",
    "Node": ".node",
    "NodeStatus": ".status",
    "Outcome": ".api",
    "Password": ".importing",
    "Provider": ".providers.base",
    "Rehearsal": ".rehearse",
    "RenewResult": ".renew",
    "RenewStatus": ".renew",
    "Revocation": ".revocation",
    "RollbackOutcome": ".rollback",
    "SelfSigned": ".providers.selfsigned",
    "SesamTLSError": ".errors",
    "TimerChanges": ".timer",
    "TimerStatus": ".timer",
    "check": ".checks",
    "configure": ".configure",
    "dns01_options": ".acme_source",
    "ensure": ".desired",
    "http01_options": ".acme_source",
    "import_certificate": ".api",
    "install_timer": ".timer",
    "issue": ".api",
    "issue_certificate": ".issuing",
    "kept_versions": ".rollback",
    "prepare": ".deploy",
    "read_eab": ".acme_source",
    "rehearse_certificate": ".issuing",
    "remove_timer": ".timer",
    "renew": ".renew",
    "renew_replayed": ".unattended",
    "revoke": ".revocation",
    "rollback": ".rollback",
    "status": ".status",
    "timer_status": ".timer",
}

if TYPE_CHECKING:  # pragma: no cover
    from .account import Account, AccountInfo, Deactivation, KeyRollover
    from .acme_source import AcmeSource, DNS01_PARAMETERS, dns01_options, http01_options, read_eab
    from .api import Outcome, import_certificate, issue
    from .bundle import Bundle
    from .checks import CheckItem, CheckReport, check
    from .configure import Configured, configure
    from .deploy import DeployPlan, DeployResult, prepare
    from .desired import Desired, EnsureResult, ensure
    from .errors import SesamTLSError
    from .http01 import Http01Options
    from .importing import ImportReport, Password
    from .issuing import issue_certificate, rehearse_certificate
    from .node import Node
    from .options import DeployOptions
    from .providers.acme import Acme
    from .providers.base import CertRequest, Provider
    from .providers.imported import Imported
    from .providers.selfsigned import SelfSigned
    from .rehearse import Rehearsal
    from .renew import RenewResult, RenewStatus, renew
    from .replay import DeployGiven
    from .revocation import Revocation, revoke
    from .rollback import KeptVersion, RollbackOutcome, kept_versions, rollback
    from .status import NodeStatus, status
    from .timer import TimerChanges, TimerStatus, install_timer, remove_timer, timer_status
    from .unattended import renew_replayed

__all__ = [
    "Account",
    "AccountInfo",
    "Acme",
    "AcmeSource",
    "Bundle",
    "CertRequest",
    "CheckItem",
    "CheckReport",
    "Configured",
    "DNS01_PARAMETERS",
    "Deactivation",
    "DeployGiven",
    "DeployOptions",
    "DeployPlan",
    "DeployResult",
    "Desired",
    "EnsureResult",
    "Http01Options",
    "ImportReport",
    "Imported",
    "KeptVersion",
    "KeyRollover",
    "Node",
    "NodeStatus",
    "Outcome",
    "Password",
    "Provider",
    "Rehearsal",
    "RenewResult",
    "RenewStatus",
    "Revocation",
    "RollbackOutcome",
    "SelfSigned",
    "SesamTLSError",
    "TimerChanges",
    "TimerStatus",
    "check",
    "configure",
    "dns01_options",
    "ensure",
    "http01_options",
    "import_certificate",
    "install_timer",
    "issue",
    "issue_certificate",
    "kept_versions",
    "prepare",
    "read_eab",
    "rehearse_certificate",
    "remove_timer",
    "renew",
    "renew_replayed",
    "revoke",
    "rollback",
    "status",
    "timer_status",
]


class _Package(types.ModuleType):
    """This package, with its public names kept over its submodules of the same name.

    Importing a submodule sets it as an attribute of its package: after
    ``import sesam_tls.status`` (or anything that imports it, ``api`` does),
    ``sesam_tls.status`` would be the module, not the function, and
    ``sesam_tls.rollback(node)`` a TypeError. A public name is looked up in
    ``_WHERE`` instead; the submodule stays in ``sys.modules``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _WHERE.get(name) == "." + name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        value = getattr(importlib.import_module(_WHERE[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sesam_tls' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
