"""ACME options shared by ``issue``, ``check``, ``revoke`` and ``account``: which CA, which account,
how HTTP-01 is answered. Parsing only; the values are turned into objects by the helpers below."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Optional
from ..choices import CHALLENGES, HTTP01_STRATEGIES as HTTP01_CHOICES, TSIG_ALGORITHMS

#: An EAB HMAC key is some 50 characters; a larger file is the wrong file.
MAX_EAB_FILE = 64 * 1024



def add_ca_arguments(parser: argparse.ArgumentParser, *, remembered: bool = False) -> None:
    g = parser.add_argument_group("ACME server")
    default = "the managed certificate's CA, else Let's Encrypt" if remembered else "Let's Encrypt"
    which = g.add_mutually_exclusive_group()
    which.add_argument("--server", metavar="URL", help=f"ACME directory URL (default: {default})")
    which.add_argument("--staging", action="store_true", help="Let's Encrypt's staging CA (untrusted certificates)")
    g.add_argument("--ca-bundle", metavar="PEM", help="trust this CA file for the ACME server's own TLS (private CA)")


def add_account_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("ACME account (created once per CA, then reused)")
    g.add_argument("-m", "--email", metavar="ADDRESS", help="contact address for the new account (optional)")
    g.add_argument("--agree-tos", action="store_true", help="agree to the CA's terms of service (needed once)")
    g.add_argument("--eab-kid", metavar="KID", help="External Account Binding key id, for CAs that require it")
    hmac = g.add_mutually_exclusive_group()
    hmac.add_argument("--eab-hmac-file", metavar="FILE", help="file holding the EAB HMAC key (base64url)")
    hmac.add_argument("--eab-hmac-env", metavar="VAR", help="environment variable holding the EAB HMAC key")
    g.add_argument("--profile", metavar="NAME", help="ACME profile, when the CA lists it (e.g. shortlived)")


def add_http01_arguments(parser: argparse.ArgumentParser, *, remembered: bool = False) -> None:
    """With remembered=True an option not given stays None, so that the managed
    certificate's recorded value can take its place (see http01_from_args)."""
    g = parser.add_argument_group("HTTP-01 challenge")
    recorded = "the managed certificate's, else " if remembered else ""
    g.add_argument(
        "--http01",
        choices=HTTP01_CHOICES,
        default=None,  # not given: --webroot implies webroot, else the record's, else auto (http01_from_args)
        help=f"auto: standalone when the port is free, stop-nginx when the nginx container holds it "
        f"(default: webroot with --webroot, else {recorded}auto)",
    )
    g.add_argument("--webroot", metavar="DIR",
                   help="the folder your web server serves (implies --http01 webroot)")
    g.add_argument("--http-port", type=int, default=None if remembered else 80, metavar="N",
                   help=f"port the CA validates on (default: {recorded}80)")
    g.add_argument(
        "--http-address",
        action="append",
        default=[],
        metavar="ADDR",
        help="address the standalone server binds (repeat; default every IPv4 and IPv6 address)",
    )


def add_challenge_arguments(parser: argparse.ArgumentParser, *, remembered: bool = False) -> None:
    """--challenge and the DNS-01 options. With remembered=True nothing has a default,
    so that the managed certificate's recorded settings can take their place."""
    recorded = "the managed certificate's, else " if remembered else ""
    parser.add_argument("--challenge", choices=CHALLENGES, default=None if remembered else "http-01",
                        help=f"how the CA checks control of the names (default: {recorded}http-01); "
                        "dns-01 needs no inbound port and allows wildcards")
    g = parser.add_argument_group("DNS-01 challenge (with --challenge dns-01)")
    g.add_argument("--dns-server", metavar="HOST[:PORT]", help="the zone's primary, for RFC 2136 updates")
    g.add_argument("--dns-tsig-name", metavar="NAME", help="TSIG key name for the updates")
    g.add_argument("--dns-tsig-algorithm", choices=TSIG_ALGORITHMS, default=None,
                   help="TSIG algorithm (default hmac-sha256)")
    secret = g.add_mutually_exclusive_group()
    secret.add_argument("--dns-tsig-file", metavar="FILE",
                        help="file holding the TSIG secret (base64, or a BIND/Knot key file); its path is recorded")
    secret.add_argument("--dns-tsig-env", metavar="VAR", help="environment variable holding the TSIG secret (this run only)")
    g.add_argument("--dns-zone", metavar="ZONE", help="the zone to update (default: found by SOA lookup)")
    g.add_argument("--dns-resolvers", nargs="+", metavar="HOST[:PORT]",
                   help="the servers the propagation check asks (default: the zone's authoritative servers)")
    g.add_argument("--dns-propagation-wait", type=float, metavar="S",
                   help="wait S seconds instead of checking (where no server can be asked)")
    g.add_argument("--dns-propagation-timeout", type=float, metavar="S",
                   help="give up when the servers do not serve the values after S seconds (default 120)")
    g.add_argument("--dns-auth-hook", metavar="CMD", help="certbot's manual auth hook (CERTBOT_DOMAIN, ...)")
    g.add_argument("--dns-cleanup-hook", metavar="CMD", help="certbot's manual cleanup hook")
    g.add_argument("--dns-exec-hook", metavar="CMD", help="lego's exec contract: CMD present|cleanup FQDN. VALUE")
    g.add_argument("--dns-hook-env", action="append", default=[], metavar="NAME",
                   help="pass this environment variable to the DNS hooks (repeat; recorded by name only)")
    g.add_argument("--dns-hook-timeout", type=float, metavar="S", help="stop a DNS hook after S seconds (default 60)")


#: The DNS-01 options with their "not given" values, for refusing them with http-01.
DNS01_ONLY: dict[str, object] = {
    "dns_server": None, "dns_tsig_name": None, "dns_tsig_algorithm": None, "dns_tsig_file": None,
    "dns_tsig_env": None, "dns_zone": None, "dns_resolvers": None, "dns_propagation_wait": None,
    "dns_propagation_timeout": None, "dns_auth_hook": None, "dns_cleanup_hook": None, "dns_exec_hook": None,
    "dns_hook_env": [], "dns_hook_timeout": None,
}


def challenge_from_args(args: argparse.Namespace, remembered: Any = None) -> str:
    """--challenge, else the managed certificate's (``remembered``: its ``AcmeSettings``), else http-01."""
    return str(getattr(args, "challenge", None) or getattr(remembered, "challenge", None) or "http-01")


def dns01_from_args(args: argparse.Namespace, remembered: Any = None) -> Any:
    """The DNS-01 options for --challenge dns-01 (None for http-01, which refuses DNS options).
    Given on the command line, else recorded with the managed certificate when it used DNS-01."""
    from ..errors import UsageError

    challenge = challenge_from_args(args, remembered)
    given = {k: getattr(args, k, default) for k, default in DNS01_ONLY.items()
             if getattr(args, k, default) != default}
    if challenge != "dns-01":
        if given:
            flag = "--" + next(iter(given)).replace("_", "-")
            raise UsageError(f"{flag} is a DNS-01 option: add --challenge dns-01")
        return None
    secret_sources = {getattr(args, "eab_hmac_env", None), args.dns_tsig_env} - {None}
    for name in args.dns_hook_env:
        if name in secret_sources:
            raise UsageError(f"--dns-hook-env {name}: that variable holds a secret of sesam-tls's own; "
                             "it is never passed to a hook")
    from ..dns01 import Dns01Options  # here: the HTTP-01 path does not load dns01
    from ..state import encode

    recorded = getattr(remembered, "dns01", None) if getattr(remembered, "challenge", None) == "dns-01" else None
    rec = dict(encode(recorded)) if recorded is not None else {}
    if not given and rec:
        return Dns01Options.from_settings(rec)
    return Dns01Options.build(
        server=args.dns_server,
        tsig_name=args.dns_tsig_name,
        tsig_algorithm=args.dns_tsig_algorithm or "hmac-sha256",
        tsig_file=args.dns_tsig_file,
        tsig_env=args.dns_tsig_env,
        zone=args.dns_zone,
        resolvers=args.dns_resolvers or (),
        propagation_wait=args.dns_propagation_wait,
        propagation_timeout=args.dns_propagation_timeout or 120.0,
        auth_hook=args.dns_auth_hook,
        cleanup_hook=args.dns_cleanup_hook,
        exec_hook=args.dns_exec_hook,
        hook_env=args.dns_hook_env,
        hook_timeout=args.dns_hook_timeout or 60.0,
    )


def directory_from_args(args: argparse.Namespace, remembered: Optional[str] = None) -> str:
    from ..providers.acme_net import LETSENCRYPT, LETSENCRYPT_STAGING

    if args.server:
        return str(args.server)
    if args.staging:
        return LETSENCRYPT_STAGING
    return remembered or LETSENCRYPT


def ca_bundle_from_args(args: argparse.Namespace, remembered: Optional[str] = None) -> Optional[str]:
    from ..errors import UsageError

    if not args.ca_bundle:
        return remembered if not (args.server or args.staging) else None
    path = Path(args.ca_bundle).absolute()
    if not path.is_file():
        raise UsageError(f"--ca-bundle {args.ca_bundle}: no such file")
    return str(path)


def eab_from_args(args: argparse.Namespace) -> Any:
    """The EAB kid and HMAC key; the key comes from a file or the environment, never argv."""
    from ..errors import UsageError
    from ..providers.acme_account import Eab

    source = args.eab_hmac_file or args.eab_hmac_env
    if not args.eab_kid and not source:
        return None
    if not args.eab_kid:
        raise UsageError("an EAB HMAC key was given without --eab-kid")
    if args.eab_hmac_file:
        from ..fsutil import read_bounded

        try:
            raw, _ = read_bounded(args.eab_hmac_file, MAX_EAB_FILE)
        except OSError as exc:
            raise UsageError(f"--eab-hmac-file {args.eab_hmac_file}: {exc.strerror or exc}") from None
        if len(raw) > MAX_EAB_FILE:
            raise UsageError(f"--eab-hmac-file {args.eab_hmac_file}: larger than 64 KiB, not an HMAC key file")
        try:
            value = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise UsageError(f"--eab-hmac-file {args.eab_hmac_file}: not text (an HMAC key is base64url)") from None
    elif args.eab_hmac_env:
        value = os.environ.get(args.eab_hmac_env, "").strip()
        if not value:
            raise UsageError(f"--eab-hmac-env {args.eab_hmac_env}: that environment variable is empty or unset")
    else:
        raise UsageError("--eab-kid needs the HMAC key: --eab-hmac-file FILE or --eab-hmac-env VAR")
    if not value:
        raise UsageError(f"--eab-hmac-file {args.eab_hmac_file}: the file is empty")
    return Eab(kid=args.eab_kid, hmac_key=value)


def http01_from_args(args: argparse.Namespace, remembered: Any = None) -> Any:
    """The HTTP-01 options: given on the command line, else recorded with the
    managed certificate (``remembered``: its ``AcmeSettings``), else defaults."""
    from ..http01 import Http01Options
    from ..providers.registry import AcmeSettings

    rec = remembered or AcmeSettings()
    kwargs: dict[str, Any] = {}
    listen = args.http_address or rec.http_address
    if listen:
        kwargs["listen"] = tuple(listen)
    webroot = args.webroot or rec.webroot
    return Http01Options(
        # certbot's habit: --webroot DIR alone means the webroot strategy
        strategy=args.http01 or ("webroot" if args.webroot else None) or rec.http01 or "auto",
        port=int(args.http_port if args.http_port is not None else rec.http_port or 80),
        webroot=Path(webroot).absolute() if webroot else None,
        **kwargs,
    )


def acme_provider(args: argparse.Namespace, node: Any, *, nginx: Any) -> Any:
    from ..providers.acme import Acme

    provider = Acme(
        state_dir=node.state_dir,
        directory=directory_from_args(args),
        ca_bundle=ca_bundle_from_args(args),
        email=args.email,
        agree_tos=args.agree_tos,
        eab=eab_from_args(args),
        profile=args.profile,
        http01=http01_from_args(args),
        nginx=nginx,
        challenge=challenge_from_args(args),
        dns01=dns01_from_args(args),
    )
    provider.eab_source = eab_source_from_args(args)  # type: ignore[attr-defined]  # an extra attribute Acme does not declare, recorded by the registry
    return provider


def eab_source_from_args(args: argparse.Namespace) -> Any:
    """Where the EAB HMAC key came from (never the key): a file, else an environment variable."""
    from ..state import SecretSource

    if args.eab_hmac_file:
        return SecretSource(kind="file", name=str(Path(args.eab_hmac_file).absolute()))
    if args.eab_hmac_env:
        return SecretSource(kind="env", name=args.eab_hmac_env)
    return None


def remembered_settings(node: Any) -> Any:
    """The managed certificate's ACME settings (``AcmeSettings``), when it came from an ACME CA, else None."""
    from ..state import load_record

    record = load_record(node.metadata_path)
    if record is None or record.provider != "acme":
        return None
    return record.provider_settings
