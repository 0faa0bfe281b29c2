"""The node's ACME account at one CA, for a Python caller as for ``sesam-tls account``.

    account = sesam_tls.Account(node)           # the managed certificate's CA, else Let's Encrypt
    account.info().status                       # 'valid'
    account.rollover().key_thumbprint           # a new key, same account (RFC 8555 section 7.3.5)
    account.deactivate(confirm=True).moved_to   # final: the next issue registers a new account

Which CA is asked again on every call (:func:`sesam_tls.acme_target.acme_target`),
so that an ``Account`` kept across an issuance from another CA follows the record.
The changes (rollover, deactivate) hold the node lock: an issuance or renewal
signing with the account key at the same time would sign with a key the CA no
longer takes.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from .acme_target import AcmeTarget, acme_target
from .errors import UsageError
from .node import Node
from .providers.acme_account import AccountInfo

if TYPE_CHECKING:  # pragma: no cover
    from .providers.acme_account import AccountStore
    from .providers.acme_net import Connection

__all__ = ["Account", "AccountInfo", "Deactivation", "KeyRollover"]


@dataclass(frozen=True)
class KeyRollover:
    """The account key was replaced at ``directory``; the account (its URL, its certificates) stays."""

    directory: str
    key_thumbprint: str

    def to_json(self) -> dict[str, Any]:
        """What ``sesam-tls account rollover --json`` prints."""
        return {"result": "rolled over", "directory": self.directory, "key_thumbprint": self.key_thumbprint}


@dataclass(frozen=True)
class Deactivation:
    """The account at ``directory`` is deactivated for good; its folder (key included) was moved to ``moved_to``."""

    directory: str
    moved_to: Path

    def to_json(self) -> dict[str, Any]:
        """What ``sesam-tls account deactivate --json`` prints."""
        return {"result": "deactivated", "directory": self.directory, "moved_to": str(self.moved_to)}


@dataclass(frozen=True)
class Account:
    """The node's ACME account at ``directory`` (or Let's Encrypt's staging CA with ``staging``),
    else at the managed certificate's CA (with its CA bundle), else at Let's Encrypt.
    ``ca_bundle``: the CA file the server's own TLS is checked against (a private CA)."""

    node: Optional[Node] = None  # None: Node.from_settings() (the environment, else the defaults)
    _: KW_ONLY
    directory: Optional[str] = None
    staging: bool = False
    ca_bundle: Optional[str] = None

    def __post_init__(self) -> None:
        if self.node is None:
            object.__setattr__(self, "node", Node.from_settings())

    @property
    def target(self) -> AcmeTarget:
        """The CA this account is asked at now (the record may have changed since the object was made)."""
        return acme_target(self._node, directory=self.directory, staging=self.staging, ca_bundle=self.ca_bundle)

    @property
    def _node(self) -> Node:
        assert self.node is not None  # set in __init__
        return self.node

    def _open(self, target: AcmeTarget) -> "tuple[Connection, AccountStore]":
        from .providers.acme_account import AccountStore
        from .providers.acme_net import Connection

        return Connection(target.directory, ca_bundle=target.ca_bundle), AccountStore(self._node.state_dir, target.directory)

    def info(self) -> AccountInfo:
        """The stored account and what the CA says about it. Changes nothing, so no lock."""
        from .providers.acme_account import account_info

        return account_info(*self._open(self.target))

    def rollover(self) -> KeyRollover:
        """Replace the account key (RFC 8555 section 7.3.5), under the node lock."""
        from .providers.acme_account import rollover
        from .state import node_lock

        target = self.target
        conn, store = self._open(target)
        with node_lock(self._node.state_dir):
            new = rollover(conn, store)
        return KeyRollover(directory=target.directory, key_thumbprint=new)

    def deactivate(self, *, confirm: bool) -> Deactivation:
        """Deactivate the account at the CA (it cannot be undone: ``confirm`` says so) and set its folder aside."""
        from .providers.acme_account import deactivate
        from .state import node_lock

        target = self.target
        conn, store = self._open(target)
        if not confirm:
            raise UsageError(f"deactivating the account at {target.directory} cannot be undone: add `confirm`")
        with node_lock(self._node.state_dir):
            moved = deactivate(conn, store)
        return Deactivation(directory=target.directory, moved_to=moved)
