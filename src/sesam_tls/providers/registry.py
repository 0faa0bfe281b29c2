"""The provider registry: from a provider's name to its settings class, and from the settings to the provider.

A settings class is the typed ``provider_settings`` section of the node record
(:mod:`sesam_tls.state`, below the providers: plain record types, each reading
itself from the record and writing itself back): what the provider was told,
never a secret. :data:`PROVIDERS` is the name -> settings class table the
record is read with (``state.SETTINGS``, the same dict); :func:`build_provider`
sets a provider up again from its settings, so ``renew`` rebuilds any provider
with one lookup. Adding a provider: its settings class and one entry in
:data:`PROVIDERS`, and its builder in :data:`BUILDERS` (the provider module
itself is imported by the builder, so a verb imports only the provider it uses).

Providers never import the deployment: the node's nginx container handle, which
the ACME provider's ``stop-nginx`` and ``auto`` strategies need, is the caller's
(``nginx=``), not made here.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..state import (
    SETTINGS,
    AcmeSettings,
    Dns01Settings,
    ImportSettings,
    ProviderSettings,
    SelfSignedSettings,
    UnknownSettings,
    settings_class,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..node import Node
    from ..state import NodeRecord
    from .base import Provider

__all__ = ["BUILDERS", "PROVIDERS", "AcmeSettings", "Dns01Settings", "ImportSettings", "SelfSignedSettings",
           "UnknownSettings", "build_provider", "settings_class", "settings_of"]

#: The base of every settings class (earlier versions defined it here).
_Settings = ProviderSettings

#: From a provider's name to its settings class (the dict the record is read with: ``state.SETTINGS``).
PROVIDERS = SETTINGS

#: ``builder(settings, node, record, *, dry_run, nginx) -> Provider`` for a settings class.
Builder = Callable[..., "Provider"]


def build_provider(record: "NodeRecord", node: "Node", *, dry_run: bool = False, nginx: Any = None) -> "Provider":
    """The provider that made the managed certificate, set up the same way again from ``record``.

    ``nginx`` is the run's :class:`~sesam_tls.nginx.NginxContainer` (the caller's), for the ACME
    provider's ``stop-nginx`` and ``auto`` strategies; ``dry_run`` sets it up for a rehearsal (Let's
    Encrypt's staging directory, no ``replaces``). A settings class with no builder here (a library
    caller's own) builds its provider itself with ``build(node, record, dry_run=...)``; the default
    refuses with a UsageError.
    """
    settings = record.provider_settings
    builder = BUILDERS.get(type(settings))
    if builder is not None:
        return builder(settings, node, record, dry_run=dry_run, nginx=nginx)
    provider: Provider = settings.build(node, record, dry_run=dry_run)
    return provider


def _selfsigned(settings: SelfSignedSettings, node: "Node", record: "NodeRecord", *, dry_run: bool = False,
                nginx: Any = None) -> "Provider":
    from .selfsigned import SelfSigned

    return SelfSigned()


def _acme(settings: AcmeSettings, node: "Node", record: "NodeRecord", *, dry_run: bool = False,
          nginx: Any = None) -> "Provider":
    from ..http01 import Http01Options
    from .acme import Acme
    from .acme_net import LETSENCRYPT, LETSENCRYPT_STAGING

    directory = settings.directory or LETSENCRYPT
    if dry_run and directory == LETSENCRYPT:
        directory = LETSENCRYPT_STAGING
    http01 = Http01Options(
        strategy=settings.http01 or "auto",
        port=int(settings.http_port or 80),
        webroot=Path(settings.webroot) if settings.webroot else None,
        listen=tuple(settings.http_address or Http01Options.listen),
    )
    return Acme(
        state_dir=node.state_dir,
        directory=directory,
        ca_bundle=settings.ca_bundle,
        agree_tos=True,  # the account exists, so its terms were agreed to
        profile=settings.profile,
        http01=http01,
        nginx=nginx,
        replaces=None if dry_run else record.certificate.ari_cert_id,
        challenge=settings.challenge or "http-01",
        dns01=_dns01(settings),
        eab=_eab(settings),
    )


#: From a shipped settings class to the function that builds its provider.
BUILDERS: dict[type, Builder] = {
    SelfSignedSettings: _selfsigned,
    AcmeSettings: _acme,
}


def _dns01(settings: AcmeSettings) -> Any:
    if settings.challenge != "dns-01":
        return None
    from ..dns01 import Dns01Options
    from ..state import encode

    return Dns01Options.from_settings(encode(settings.dns01 or Dns01Settings()))


def _eab(settings: AcmeSettings) -> Any:
    """The EAB key from its recorded file (or the unit's credential of it), for a new account only.

    Unreadable is no error here: an existing account needs no EAB, and a
    new one is refused by the CA with its own message.
    """
    if not settings.eab_kid or settings.eab_key_from is None or settings.eab_key_from.kind != "file":
        return None
    import os

    from ..fsutil import read_bounded
    from ..timer import EAB_CREDENTIAL
    from .acme import Eab

    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    paths = [Path(credentials, EAB_CREDENTIAL)] if credentials else []
    for path in [*paths, Path(settings.eab_key_from.name)]:
        try:
            raw, _ = read_bounded(str(path), 64 * 1024)
        except OSError:
            continue
        value = raw.decode("utf-8", "replace").strip()
        if value:
            return Eab(kid=settings.eab_kid, hmac_key=value)
    return None


def settings_of(provider: Any) -> _Settings:
    """The typed settings a provider object reports (``provider.settings()``, a dict), for the record."""
    cls = settings_class(getattr(provider, "name", ""))
    report = getattr(provider, "settings", None)
    values = report() if callable(report) and cls is not UnknownSettings else {}
    settings = cls.from_record(values)
    if isinstance(settings, AcmeSettings) and getattr(provider, "eab", None) is not None:
        settings = replace(settings, eab_kid=provider.eab.kid, eab_key_from=getattr(provider, "eab_source", None))
    return settings
