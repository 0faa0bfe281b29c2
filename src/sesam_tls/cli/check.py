"""``sesam-tls check``: the preflight for ``issue`` and ``renew``. Orders nothing; one line per check, with the fix.

Without ``--domain``/``--ip`` it checks the managed certificate's names, and
without ``--server``/``--http01``/... the CA and HTTP-01 settings recorded with
it: what the next ``renew`` will use.

Exit 0 when every check passes, else the exit code of the first failed
check's kind (2 usage, 4 agent config, 5 storage, 6 Docker, 8 CA/challenge).
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import Callable
from typing import Any

from .acme_args import (
    add_account_arguments,
    add_ca_arguments,
    add_challenge_arguments,
    add_http01_arguments,
    ca_bundle_from_args,
    challenge_from_args,
    dns01_from_args,
    directory_from_args,
    eab_from_args,
    http01_from_args,
)
from .common import add_name_argument, add_node_arguments, emit_json, node_from_args
from ..text import printable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("certificate")
    add_name_argument(g, "a DNS name (default: the managed certificate's names)")
    g.add_argument("--ip", action="append", default=[], metavar="ADDRESS", help="an IP address (repeat for more)")
    add_ca_arguments(parser, remembered=True)
    add_account_arguments(parser)
    add_challenge_arguments(parser, remembered=True)
    add_http01_arguments(parser, remembered=True)
    parser.add_argument("--no-restart", action="store_true", help="nginx is left alone (as with issue --no-restart)")
    add_node_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..errors import SesamTLSError
    from ..nginx import NginxContainer

    node = node_from_args(args)
    recorded = _recorded(node)
    nginx = None if args.no_restart else NginxContainer(node.container, node.docker_host, timeout=10.0)
    checks: list[tuple[str, Callable[[], str]]] = [
        ("names", lambda: _names(args, recorded)),
        ("ACME server", lambda: _directory(args, node, recorded)),
        ("docker", lambda: _docker(nginx) if nginx is not None else "not used (--no-restart)"),
        ("challenge", lambda: _challenge(args, nginx, recorded)),
        ("CAA", lambda: _caa(args, node, recorded)),
        ("agent config", lambda: _agent_config(node)),
        ("ssl folder", lambda: _ssl_folder(node)),
        ("state folder", lambda: _state_folder(node)),
    ]
    results: list[dict[str, Any]] = []
    code = 0
    for title, check in checks:
        try:
            detail, ok = check(), True
        except SesamTLSError as exc:
            detail, ok = str(exc), False
            code = code or exc.exit_code
        results.append({"check": title, "ok": ok, "detail": detail})
        if not args.json:
            print(printable(f"{'ok' if ok else 'FAIL':<4}  {title}: {detail}"), flush=True)
    if args.json:
        emit_json({"ok": code == 0, "checks": results})
    return code


def _recorded(node: Any) -> dict[str, Any]:
    """The managed certificate's names and ACME settings (empty when there is none,
    or it cannot be read: the agent config/state checks report that)."""
    from ..errors import SesamTLSError
    from ..state import load_record

    try:
        record = load_record(node.metadata_path)
    except SesamTLSError:
        return {}
    if record is None:
        return {}
    settings = record.provider_settings if record.provider == "acme" else None
    return {"names": list(record.request.names), "ips": list(record.request.ips), "acme": settings}


def _names(args: argparse.Namespace, recorded: dict[str, Any]) -> str:
    from ..errors import UsageError
    from ..providers.base import CertRequest

    domains, ips = args.domain, args.ip
    if not domains and not ips:
        domains, ips = recorded.get("names") or [], recorded.get("ips") or []
        if not domains and not ips:
            raise UsageError("no names to check: give --domain NAME (no managed certificate to take them from)")
    dns01 = challenge_from_args(args, recorded.get("acme")) == "dns-01"
    request = CertRequest.build(domains, ips, allow_wildcard=dns01)
    parts = []
    for name in request.names:
        if dns01:
            parts.append(f"{name} (DNS-01: needs no address record)")
            continue
        try:
            infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
        except socket.gaierror as exc:
            raise UsageError(
                f"{name} does not resolve ({exc.strerror}): add an A (and AAAA) record pointing at this node"
            ) from None
        addresses = sorted({str(info[4][0]) for info in infos})
        parts.append(f"{name} -> {', '.join(_mark_local(a) for a in addresses)}")
    parts += [f"{ip} (IP address)" for ip in request.ips]
    return "; ".join(parts)


def _names_for_dns(args: argparse.Namespace, recorded: dict[str, Any]) -> list[str]:
    names = args.domain or recorded.get("names") or []
    return list(dict.fromkeys(n.strip().rstrip(".").lower().removeprefix("*.") for n in names))


def _mark_local(address: str) -> str:
    """Whether an address belongs to this host: binding it succeeds only then (no traffic)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return f"{address} (not on this host: fine behind NAT that forwards port 80 here)"
    return f"{address} (this host)"


def _directory(args: argparse.Namespace, node: Any, recorded: dict[str, Any]) -> str:
    from ..errors import UsageError
    from ..providers.acme_account import AccountStore
    from ..providers.acme_net import Connection

    acme = recorded.get("acme")
    url = directory_from_args(args, acme.directory if acme else None)
    ca_bundle = ca_bundle_from_args(args, acme.ca_bundle if acme else None)
    conn = Connection(url, ca_bundle=ca_bundle, timeout=10.0)
    directory = conn.directory()
    conn.check_clock()  # what issue would stop on before ordering
    meta = directory.meta
    profiles = sorted(dict(getattr(meta, "profiles", None) or {}))
    if args.profile and args.profile not in profiles:
        offered = ", ".join(profiles) or "none"
        raise UsageError(f"{url} answers, but does not offer --profile {args.profile} (profiles: {offered})")
    account = AccountStore(node.state_dir, url).load_meta()
    notes = [f"{url} answers"]
    if profiles:
        notes.append(f"profiles {', '.join(profiles)}")
    if account:
        notes.append(f"account {account['uri']}")
    else:
        if getattr(meta, "external_account_required", False) and eab_from_args(args) is None:
            raise UsageError(f"{url} requires External Account Binding: add --eab-kid and --eab-hmac-file/--eab-hmac-env")
        terms = getattr(meta, "terms_of_service", None)
        if terms and not args.agree_tos:
            raise UsageError(f"{url} answers; the first issue registers an account and needs --agree-tos ({terms})")
        notes.append("no account yet: issue registers one")
    return "; ".join(notes)


def _docker(nginx: Any) -> str:
    state = nginx.check()
    return f"container {nginx.name} is {state} (Docker engine at {nginx.host_label})"


def _challenge(args: argparse.Namespace, nginx: Any, recorded: dict[str, Any]) -> str:
    from ..http01 import plan

    if challenge_from_args(args, recorded.get("acme")) == "dns-01":
        from ..dns01 import check_dns01

        return check_dns01(dns01_from_args(args, recorded.get("acme")), _names_for_dns(args, recorded))
    options = http01_from_args(args, recorded.get("acme"))
    return f"HTTP-01 {options.strategy}: {plan(options, nginx)}"


def _caa(args: argparse.Namespace, node: Any, recorded: dict[str, Any]) -> str:
    """RFC 8659/8657: does a CAA record forbid this CA, this account or this challenge method?"""
    from ..caa import SPECIAL_USE, judge, relevant
    from ..dns01 import caa_lookup
    from ..errors import IssuanceError
    from ..providers.acme_account import AccountStore
    from ..providers.acme_net import LETSENCRYPT, LETSENCRYPT_STAGING, Connection

    acme = recorded.get("acme")
    method = challenge_from_args(args, acme)
    names = list(dict.fromkeys(n.strip().rstrip(".").lower() for n in (args.domain or recorded.get("names") or [])))
    if not names:
        return "no names to check"
    dns01 = dns01_from_args(args, acme) if method == "dns-01" else None
    lookup = caa_lookup(dns01)
    system = dns01 is None or not (dns01.server or dns01.resolvers)  # this node's resolver: the world's view
    url = directory_from_args(args, getattr(acme, "directory", None))
    try:
        meta = Connection(url, ca_bundle=ca_bundle_from_args(args, getattr(acme, "ca_bundle", None)),
                          timeout=10.0).directory().meta
        identities = list(getattr(meta, "caa_identities", None) or ())
    except Exception:  # noqa: BLE001 - the ACME server check says what is wrong with the CA
        identities = []
    if not identities and url in (LETSENCRYPT, LETSENCRYPT_STAGING):
        identities = ["letsencrypt.org"]
    account = (AccountStore(node.state_dir, url).load_meta() or {}).get("uri")
    parts: list[str] = []
    refused: list[str] = []
    for name in names:
        if system and name.rsplit(".", 1)[-1] in SPECIAL_USE:
            parts.append(f"{name}: a special-use name, no public CAA")
            continue
        owner, records = relevant(lookup, name)
        if not records:
            parts.append(f"{name}: no CAA record, any CA may issue")
            continue
        ok, why = judge(records, owner=owner, identities=identities, method=method, account=account,
                        wildcard=name.startswith("*."))
        (parts if ok else refused).append(f"{name}: {why}")
    if refused:
        raise IssuanceError("; ".join(refused))
    return "; ".join(parts)


def _agent_config(node: Any) -> str:
    from ..agent_config import AgentConfig

    change = AgentConfig.read(node.agent_config).plan(node.container_cert_path, node.container_key_path)
    return f"{node.agent_config} " + ("will be pointed at the ssl folder" if change is not None else "points at the ssl folder")


def _ssl_folder(node: Any) -> str:
    from ..store import SslFolder

    SslFolder(node.ssl_dir).check_writable()
    return f"{node.ssl_dir} is writable"


def _state_folder(node: Any) -> str:
    import os
    import secrets

    from ..errors import StorageError
    from ..fsutil import TMP_MARK, describe_oserror, write_new

    probe = node.state_dir / f".check{TMP_MARK}{secrets.token_hex(4)}"
    try:
        node.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_new(probe, b"", 0o600)
        os.unlink(probe)
    except OSError as exc:
        raise StorageError(f"cannot write in {node.state_dir}: {describe_oserror(exc)}") from None
    return f"{node.state_dir} is writable"
