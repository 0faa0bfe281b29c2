"""What a new ACME certificate comes from: the CA, the account, how the challenge is answered.

The values a command line or a library caller gives (an EAB key's file or
variable, the HTTP-01 and DNS-01 options, the recorded settings they fall
back to) become checked objects here, so the CLI only parses. The ACME
provider itself is built by :meth:`AcmeSource.provider` with the run's nginx
container (its deploy plan's): providers never make one of their own.
Cheap to import: the ACME, DNS and HTTP machinery load when used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

from .errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from .dns01 import Dns01Options
    from .http01 import Http01Options
    from .node import Node
    from .providers.acme import Acme
    from .providers.acme_account import Eab
    from .state import SecretSource

__all__ = ["DNS01_PARAMETERS", "AcmeSource", "dns01_options", "eab_source", "http01_options", "read_eab"]

#: An EAB HMAC key is some 50 characters; a larger file is the wrong file.
MAX_EAB_FILE = 64 * 1024

#: The DNS-01 parameters with their "not given" values (refused with http-01).
DNS01_PARAMETERS: dict[str, object] = {
    "dns_server": None, "dns_tsig_name": None, "dns_tsig_algorithm": None, "dns_tsig_file": None,
    "dns_tsig_env": None, "dns_zone": None, "dns_resolvers": None, "dns_propagation_wait": None,
    "dns_propagation_timeout": None, "dns_auth_hook": None, "dns_cleanup_hook": None, "dns_exec_hook": None,
    "dns_hook_env": [], "dns_hook_timeout": None,
}


def read_eab(kid: Optional[str], *, hmac_file: Optional[str] = None, hmac_env: Optional[str] = None) -> "Optional[Eab]":
    """The EAB kid and HMAC key; the key comes from a file or the environment, never argv."""
    from .providers.acme_account import Eab

    if not kid and not (hmac_file or hmac_env):
        return None
    if not kid:
        raise UsageError("an EAB HMAC key was given without `eab_kid`")
    if hmac_file:
        from .fsutil import read_bounded

        try:
            raw, _ = read_bounded(hmac_file, MAX_EAB_FILE)
        except OSError as exc:
            raise UsageError(f"`eab_hmac_file` {hmac_file}: {exc.strerror or exc}") from None
        if len(raw) > MAX_EAB_FILE:
            raise UsageError(f"`eab_hmac_file` {hmac_file}: larger than 64 KiB, not an HMAC key file")
        try:
            value = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise UsageError(f"`eab_hmac_file` {hmac_file}: not text (an HMAC key is base64url)") from None
        if not value:
            raise UsageError(f"`eab_hmac_file` {hmac_file}: the file is empty")
    elif hmac_env:
        value = os.environ.get(hmac_env, "").strip()
        if not value:
            raise UsageError(f"`eab_hmac_env` {hmac_env}: that environment variable is empty or unset")
    else:
        raise UsageError("`eab_kid` needs the HMAC key: `eab_hmac_file` FILE or `eab_hmac_env` VAR")
    return Eab(kid=kid, hmac_key=value)


def eab_source(hmac_file: Optional[str] = None, hmac_env: Optional[str] = None) -> "Optional[SecretSource]":
    """Where the EAB HMAC key came from (never the key): a file, else an environment variable."""
    from .state import SecretSource

    if hmac_file:
        return SecretSource(kind="file", name=str(Path(hmac_file).absolute()))
    if hmac_env:
        return SecretSource(kind="env", name=hmac_env)
    return None


def http01_options(
    strategy: Optional[str] = None,
    *,
    webroot: Optional[str] = None,
    http_port: Optional[int] = None,
    http_address: Sequence[str] = (),
    remembered: Any = None,
) -> "Http01Options":
    """The HTTP-01 options: given, else recorded with the managed certificate (``remembered``:
    its ``AcmeSettings``), else defaults. ``webroot`` alone means the webroot strategy (certbot's habit)."""
    from .http01 import Http01Options
    from .providers.registry import AcmeSettings

    rec = remembered or AcmeSettings()
    kwargs: dict[str, Any] = {}
    listen = tuple(http_address) or rec.http_address
    if listen:
        kwargs["listen"] = tuple(listen)
    folder = webroot or rec.webroot
    return Http01Options(
        strategy=strategy or ("webroot" if webroot else None) or rec.http01 or "auto",
        port=int(http_port if http_port is not None else rec.http_port or 80),
        webroot=Path(folder).absolute() if folder else None,
        **kwargs,
    )


def dns01_options(
    challenge: Optional[str] = None,
    *,
    remembered: Any = None,
    secret_env: Sequence[Optional[str]] = (),
    given: Optional[Mapping[str, Any]] = None,
) -> "Optional[Dns01Options]":
    """The DNS-01 options for the ``dns-01`` challenge (None for http-01, which refuses DNS-01
    parameters). ``given``: the :data:`DNS01_PARAMETERS` given; when none is, those recorded with
    the managed certificate (``remembered``) when it used DNS-01. ``secret_env``: variables that
    hold a secret of sesam-tls's own (never passed to a DNS hook)."""
    challenge = challenge or getattr(remembered, "challenge", None) or "http-01"
    values = {k: (given or {}).get(k, default) for k, default in DNS01_PARAMETERS.items()}
    set_ = {k: v for k, v in values.items() if v != DNS01_PARAMETERS[k]}
    if challenge != "dns-01":
        if set_:
            raise UsageError(f"`{next(iter(set_))}` is a DNS-01 option: add `challenge` dns-01")
        return None
    secrets = ({values["dns_tsig_env"], *secret_env}) - {None}
    for name in values["dns_hook_env"] or ():
        if name in secrets:
            raise UsageError(f"`dns_hook_env` {name}: that variable holds a secret of sesam-tls's own; "
                             "it is never passed to a hook")
    from .dns01 import Dns01Options  # here: the HTTP-01 path does not load dns01
    from .state import encode

    recorded = getattr(remembered, "dns01", None) if getattr(remembered, "challenge", None) == "dns-01" else None
    rec = dict(encode(recorded)) if recorded is not None else {}
    if not set_ and rec:
        return Dns01Options.from_settings(rec)
    return Dns01Options.build(
        server=values["dns_server"],
        tsig_name=values["dns_tsig_name"],
        tsig_algorithm=values["dns_tsig_algorithm"] or "hmac-sha256",
        tsig_file=values["dns_tsig_file"],
        tsig_env=values["dns_tsig_env"],
        zone=values["dns_zone"],
        resolvers=values["dns_resolvers"] or (),
        propagation_wait=values["dns_propagation_wait"],
        propagation_timeout=values["dns_propagation_timeout"] or 120.0,
        auth_hook=values["dns_auth_hook"],
        cleanup_hook=values["dns_cleanup_hook"],
        exec_hook=values["dns_exec_hook"],
        hook_env=values["dns_hook_env"] or (),
        hook_timeout=values["dns_hook_timeout"] or 60.0,
    )


@dataclass(frozen=True)
class AcmeSource:
    """Which ACME CA and account a new certificate comes from, and how the challenge is answered.

    ``directory`` (or ``staging``: Let's Encrypt's staging CA; neither: Let's
    Encrypt), ``ca_bundle`` for the CA's own TLS. The EAB key is read from
    ``eab_hmac_file`` or the variable ``eab_hmac_env`` (its source is recorded,
    never the key), or given as ``eab``. ``http01``/``dns01``: see
    :func:`http01_options` and :func:`dns01_options` (None: the defaults).
    """

    directory: Optional[str] = None
    staging: bool = False
    ca_bundle: Optional[str] = None
    email: Optional[str] = None
    agree_tos: bool = False
    eab_kid: Optional[str] = None
    eab_hmac_file: Optional[str] = None
    eab_hmac_env: Optional[str] = None
    eab: "Optional[Eab]" = None
    profile: Optional[str] = None
    challenge: str = "http-01"
    http01: "Optional[Http01Options]" = None
    dns01: "Optional[Dns01Options]" = None

    @property
    def strategy(self) -> str:
        """The HTTP-01 strategy this source asks for (``auto`` when not said)."""
        return self.http01.strategy if self.http01 is not None else "auto"

    def provider(self, node: "Node", *, nginx: Any = None) -> "Acme":
        """The ACME provider, checked now (CA file, EAB key, challenge options): bad input fails
        before any network call. ``nginx``: the run's container, for stopping it on port 80."""
        from .acme_target import acme_target
        from .http01 import Http01Options
        from .providers.acme import Acme

        target = acme_target(None, directory=self.directory, staging=self.staging, ca_bundle=self.ca_bundle)
        eab = self.eab or read_eab(self.eab_kid, hmac_file=self.eab_hmac_file, hmac_env=self.eab_hmac_env)
        if self.challenge != "dns-01" and self.dns01 is not None:
            raise UsageError("`dns01` options are for the dns-01 challenge: add `challenge` dns-01")
        provider = Acme(
            state_dir=node.state_dir,
            directory=target.directory,
            ca_bundle=target.ca_bundle,
            email=self.email,
            agree_tos=self.agree_tos,
            eab=eab,
            profile=self.profile,
            http01=self.http01 or Http01Options(),
            nginx=nginx,
            challenge=self.challenge,
            dns01=self.dns01,
        )
        provider.eab_source = eab_source(self.eab_hmac_file, self.eab_hmac_env)  # type: ignore[attr-defined]  # recorded by the registry
        return provider
