"""The provider registry: a plain dict from a provider's name to its settings class.

A settings class is the typed ``provider_settings`` section of the node record
(:mod:`sesam_tls.state`): what the provider was told, never a secret. Each one
reads itself from the record (``from_record``), writes itself (``to_record``)
and builds its provider for a node (``build``), so ``renew`` rebuilds any
provider with one lookup. Adding a provider touches this file only: its
settings class and one line in :data:`PROVIDERS` (the provider module itself
is imported by ``build``, so a verb imports only the provider it uses).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Optional

from ..errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from ..node import Node
    from ..state import NodeRecord, SecretSource
    from .base import Provider

__all__ = ["PROVIDERS", "AcmeSettings", "Dns01Settings", "ImportSettings", "SelfSignedSettings", "UnknownSettings", "settings_class"]


class _Settings:
    """What every settings class shares: the record codec."""

    name: ClassVar[str] = ""
    #: Whether the provider's certificates come from a CA (the gate then refuses a self-signed one).
    from_ca: ClassVar[bool] = True

    @classmethod
    def from_record(cls, data: Any) -> Any:
        from ..state import decode

        return decode(cls, data or {}, "provider_settings")

    def to_record(self) -> dict[str, Any]:
        from ..state import encode

        return {f.name: encode(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]  # fields() of a dataclass instance; mypy sees the class type

    #: Whether ``build`` takes ``nginx``: the run's container (its deploy plan's), lent to a
    #: provider that may stop nginx; providers never make one of their own.
    takes_nginx: ClassVar[bool] = False

    def build(self, node: "Node", record: "NodeRecord", *, dry_run: bool = False) -> "Provider":
        raise UsageError(f"the managed certificate's provider {record.provider!r} cannot be renewed by this sesam-tls")


@dataclass(frozen=True)
class SelfSignedSettings(_Settings):
    """A self-signed certificate needs nothing but the request."""

    name: ClassVar[str] = "selfsigned"
    from_ca: ClassVar[bool] = False

    def build(self, node: "Node", record: "NodeRecord", *, dry_run: bool = False) -> "Provider":
        from .selfsigned import SelfSigned

        return SelfSigned()


@dataclass(frozen=True)
class Dns01Settings:
    """How DNS-01 TXT records are published (:mod:`sesam_tls.dns01`): the server and the
    TSIG key's *name and file* (or that it came from the environment, for that run
    only), or the hook commands; never a secret."""

    method: Optional[str] = None
    server: Optional[str] = None
    tsig_name: Optional[str] = None
    tsig_algorithm: Optional[str] = None
    tsig_file: Optional[str] = None
    tsig_source: Optional[str] = None
    zone: Optional[str] = None
    resolvers: tuple[str, ...] = ()
    propagation_wait: Optional[float] = None
    propagation_timeout: Optional[float] = None
    auth_hook: Optional[str] = None
    cleanup_hook: Optional[str] = None
    exec_hook: Optional[str] = None
    hook_env: tuple[str, ...] = ()
    hook_timeout: Optional[float] = None


@dataclass(frozen=True)
class AcmeSettings(_Settings):
    """Which CA and account, and how HTTP-01 was answered."""

    name: ClassVar[str] = "acme"
    takes_nginx: ClassVar[bool] = True

    directory: Optional[str] = None
    account: Optional[str] = None
    profile: Optional[str] = None
    http01: Optional[str] = None
    http_port: Optional[int] = None
    webroot: Optional[str] = None
    http_address: tuple[str, ...] = ()
    key_type: Optional[str] = None
    ca_bundle: Optional[str] = None
    external_account_binding: bool = False
    eab_kid: Optional[str] = None
    eab_key_from: Optional["SecretSource"] = None
    challenge: Optional[str] = None
    dns01: Optional[Dns01Settings] = None

    def build(  # takes_nginx: called with the run's container
        self, node: "Node", record: "NodeRecord", *, dry_run: bool = False, nginx: Any = None
    ) -> "Provider":
        from ..http01 import Http01Options
        from .acme import Acme
        from .acme_net import LETSENCRYPT, LETSENCRYPT_STAGING

        directory = self.directory or LETSENCRYPT
        if dry_run and directory == LETSENCRYPT:
            directory = LETSENCRYPT_STAGING
        http01 = Http01Options(
            strategy=self.http01 or "auto",
            port=int(self.http_port or 80),
            webroot=Path(self.webroot) if self.webroot else None,
            listen=tuple(self.http_address or Http01Options.listen),
        )
        return Acme(
            state_dir=node.state_dir,
            directory=directory,
            ca_bundle=self.ca_bundle,
            agree_tos=True,  # the account exists, so its terms were agreed to
            profile=self.profile,
            http01=http01,
            nginx=nginx,
            replaces=None if dry_run else record.certificate.ari_cert_id,
            challenge=self.challenge or "http-01",
            dns01=self._dns01(),
            eab=self._eab(),
        )

    def _dns01(self) -> Any:
        if self.challenge != "dns-01":
            return None
        from ..dns01 import Dns01Options
        from ..state import encode

        return Dns01Options.from_settings(encode(self.dns01 or Dns01Settings()))
    def _eab(self) -> Any:
        """The EAB key from its recorded file (or the unit's credential of it), for a new account only.

        Unreadable is no error here: an existing account needs no EAB, and a
        new one is refused by the CA with its own message.
        """
        if not self.eab_kid or self.eab_key_from is None or self.eab_key_from.kind != "file":
            return None
        import os

        from ..fsutil import read_bounded
        from ..timer import EAB_CREDENTIAL
        from .acme import Eab

        credentials = os.environ.get("CREDENTIALS_DIRECTORY")
        paths = [Path(credentials, EAB_CREDENTIAL)] if credentials else []
        for path in [*paths, Path(self.eab_key_from.name)]:
            try:
                raw, _ = read_bounded(str(path), 64 * 1024)
            except OSError:
                continue
            value = raw.decode("utf-8", "replace").strip()
            if value:
                return Eab(kid=self.eab_kid, hmac_key=value)
        return None


@dataclass(frozen=True)
class ImportSettings(_Settings):
    """Where the operator's files were; sesam-tls cannot renew them (``renewal.decide`` never asks)."""

    name: ClassVar[str] = "import"
    from_ca: ClassVar[bool] = False

    cert_file: Optional[str] = None
    key_file: Optional[str] = None
    chain_file: Optional[str] = None


@dataclass(frozen=True)
class UnknownSettings(_Settings):
    """A library caller's own provider: recorded by name, with no settings; ``renew`` cannot rebuild it."""


#: From a provider's name to its settings class.
PROVIDERS: dict[str, type[_Settings]] = {
    SelfSignedSettings.name: SelfSignedSettings,
    AcmeSettings.name: AcmeSettings,
    ImportSettings.name: ImportSettings,
}


def settings_class(name: str) -> type[_Settings]:
    return PROVIDERS.get(name, UnknownSettings)


def settings_of(provider: Any) -> _Settings:
    """The typed settings a provider object reports (``provider.settings()``, a dict), for the record."""
    cls = settings_class(getattr(provider, "name", ""))
    report = getattr(provider, "settings", None)
    values = report() if callable(report) and cls is not UnknownSettings else {}
    settings = cls.from_record(values)
    if isinstance(settings, AcmeSettings) and getattr(provider, "eab", None) is not None:
        from dataclasses import replace

        settings = replace(settings, eab_kid=provider.eab.kid, eab_key_from=getattr(provider, "eab_source", None))
    return settings
