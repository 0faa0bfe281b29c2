"""ACME options shared by ``issue``, ``check``, ``revoke`` and ``account``: which CA, which account,
how HTTP-01 is answered. Parsing only; the helpers below hand the values to the library
(:mod:`sesam_tls.acme_source`), which checks them and builds the objects."""

from __future__ import annotations

import argparse
from typing import Any

from ..choices import CHALLENGES, HTTP01_STRATEGIES as HTTP01_CHOICES, TSIG_ALGORITHMS



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


def _dns01_only() -> dict[str, object]:
    from .. import DNS01_PARAMETERS

    return DNS01_PARAMETERS


#: The DNS-01 options with their "not given" values, for refusing them with http-01 (the library's list).
DNS01_ONLY: dict[str, object] = _dns01_only()


def challenge_from_args(args: argparse.Namespace, remembered: Any = None) -> str:
    """--challenge, else the managed certificate's (``remembered``: its ``AcmeSettings``), else http-01."""
    return str(getattr(args, "challenge", None) or getattr(remembered, "challenge", None) or "http-01")


def dns01_from_args(args: argparse.Namespace, remembered: Any = None) -> Any:
    """The DNS-01 options for --challenge dns-01 (None for http-01): :func:`sesam_tls.dns01_options`."""
    from .. import dns01_options

    given = {k: getattr(args, k, default) for k, default in DNS01_ONLY.items()}
    return dns01_options(challenge_from_args(args, remembered), remembered=remembered,
                         secret_env=(getattr(args, "eab_hmac_env", None),), given=given)




def eab_from_args(args: argparse.Namespace) -> Any:
    """The EAB kid and HMAC key (:func:`sesam_tls.read_eab`); the key comes from a file or the environment."""
    from .. import read_eab

    return read_eab(args.eab_kid, hmac_file=args.eab_hmac_file, hmac_env=args.eab_hmac_env)


def http01_from_args(args: argparse.Namespace, remembered: Any = None) -> Any:
    """The HTTP-01 options: given on the command line, else recorded with the
    managed certificate (``remembered``: its ``AcmeSettings``), else defaults."""
    from .. import http01_options

    return http01_options(args.http01, webroot=args.webroot, http_port=args.http_port,
                          http_address=args.http_address, remembered=remembered)


def acme_source_from_args(args: argparse.Namespace) -> Any:
    """What ``issue`` asks the CA for, as :class:`sesam_tls.AcmeSource`: checked by the library."""
    from .. import AcmeSource

    return AcmeSource(
        directory=args.server,
        staging=args.staging,
        ca_bundle=args.ca_bundle,
        email=args.email,
        agree_tos=args.agree_tos,
        eab_kid=args.eab_kid,
        eab_hmac_file=args.eab_hmac_file,
        eab_hmac_env=args.eab_hmac_env,
        profile=args.profile,
        challenge=challenge_from_args(args),
        http01=http01_from_args(args),
        dns01=dns01_from_args(args),
    )
