"""ACME options shared by ``issue``, ``check``, ``revoke`` and ``account``: which CA, which account,
how HTTP-01 is answered. Parsing only; the values are turned into objects by the helpers below."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Optional

#: An EAB HMAC key is some 50 characters; a larger file is the wrong file.
MAX_EAB_FILE = 64 * 1024

HTTP01_CHOICES = ("auto", "standalone", "stop-nginx", "webroot")


def add_ca_arguments(parser: argparse.ArgumentParser, *, remembered: bool = False) -> None:
    g = parser.add_argument_group("ACME server")
    default = "the managed certificate's CA, else Let's Encrypt" if remembered else "Let's Encrypt"
    which = g.add_mutually_exclusive_group()
    which.add_argument("--server", metavar="URL", help=f"ACME directory URL (default: {default})")
    which.add_argument("--staging", action="store_true", help="Let's Encrypt's staging CA (untrusted certificates)")
    g.add_argument("--ca-bundle", metavar="PEM", help="trust this CA file for the ACME server's own TLS (private CA)")


def add_account_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("ACME account (created once per CA, then reused)")
    g.add_argument("--email", metavar="ADDRESS", help="contact address for the new account (optional)")
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
        default=None if remembered else "auto",
        help=f"auto: standalone when the port is free, stop-nginx when the nginx container holds it "
        f"(default: {recorded}auto)",
    )
    g.add_argument("--webroot", metavar="DIR", help="with --http01 webroot: the folder your web server serves")
    g.add_argument("--http-port", type=int, default=None if remembered else 80, metavar="N",
                   help=f"port the CA validates on (default: {recorded}80)")
    g.add_argument(
        "--http-address",
        action="append",
        default=[],
        metavar="ADDR",
        help="address the standalone server binds (repeat; default every IPv4 and IPv6 address)",
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
        strategy=args.http01 or rec.http01 or "auto",
        port=int(args.http_port if args.http_port is not None else rec.http_port or 80),
        webroot=Path(webroot).absolute() if webroot else None,
        **kwargs,
    )


def acme_provider(args: argparse.Namespace, node: Any, *, nginx: Any) -> Any:
    from ..providers.acme import Acme

    return Acme(
        state_dir=node.state_dir,
        directory=directory_from_args(args),
        ca_bundle=ca_bundle_from_args(args),
        email=args.email,
        agree_tos=args.agree_tos,
        eab=eab_from_args(args),
        profile=args.profile,
        http01=http01_from_args(args),
        nginx=nginx,
    )


def remembered_settings(node: Any) -> Any:
    """The managed certificate's ACME settings (``AcmeSettings``), when it came from an ACME CA, else None."""
    from ..state import load_record

    record = load_record(node.metadata_path)
    if record is None or record.provider != "acme":
        return None
    return record.provider_settings
