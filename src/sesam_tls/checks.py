"""``check``: the preflight for ``issue`` and ``renew``. Orders nothing; says, item by item, what would
stop a run and how to fix it.

    report = sesam_tls.check(node)              # what the next renew will use
    report = sesam_tls.check(node, names=["node.example.com"], agree_tos=True)
    if not report.ok:
        print(report.exit_code, [item.detail for item in report.items if not item.ok])

Without ``names``/``ips`` it checks the managed certificate's names, and
without ``directory``/``http01``/... the CA, CA bundle, challenge and HTTP-01
settings recorded with it: what the next ``renew`` will use.

Every item runs, whatever the one before found: a failure is an item with
``ok`` False, the one line of the :class:`~sesam_tls.errors.SesamTLSError`
that the real run would stop on, and its exit code (2 usage, 4 agent config,
5 storage, 6 Docker, 8 CA/challenge). Each rule is asked where it lives:
the names of ``CertRequest.build``, the CA of :func:`acme_target`, the
account of ``acme_account.check_registration``, the ssl folder's write
probe of ``store``, the HTTP-01 plan of ``http01`` and DNS-01 of ``dns01``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from .errors import SesamTLSError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from .dns01 import Dns01Options
    from .nginx import NginxContainer
    from .node import Node
    from .providers.acme_account import Eab
    from .state import AcmeSettings, NodeRecord

__all__ = ["CheckItem", "CheckReport", "check"]

#: The items, in the order they run and are reported.
ITEMS = ("names", "ACME server", "docker", "challenge", "CAA", "agent config", "ssl folder", "state folder")


@dataclass(frozen=True)
class CheckItem:
    """One thing checked: ``check`` (what: ``"names"``, ``"ACME server"``, ...), whether it passed,
    its one-line ``detail`` (what was found, or why it fails and the fix), and ``exit_code``: 0 when
    it passed, else the exit code of the error a real run would stop on."""

    check: str
    ok: bool
    detail: str
    exit_code: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class CheckReport:
    """Every item, in order (:data:`ITEMS`)."""

    items: tuple[CheckItem, ...]

    @property
    def ok(self) -> bool:
        return all(item.ok for item in self.items)

    @property
    def exit_code(self) -> int:
        """0 when every item passed, else the first failed item's exit code."""
        return next((item.exit_code for item in self.items if not item.ok), 0)

    @property
    def failed(self) -> tuple[CheckItem, ...]:
        return tuple(item for item in self.items if not item.ok)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [item.to_json() for item in self.items]}


def check(
    node: "Optional[Node]" = None,
    *,
    names: Sequence[str] = (),
    ips: Sequence[str] = (),
    directory: Optional[str] = None,
    staging: bool = False,
    ca_bundle: Optional[str] = None,
    agree_tos: bool = False,
    eab: "Optional[Eab]" = None,
    profile: Optional[str] = None,
    challenge: Optional[str] = None,
    dns01: "Optional[Dns01Options]" = None,
    http01: Optional[str] = None,
    http_port: Optional[int] = None,
    webroot: "Optional[str | Path]" = None,
    http_address: Sequence[str] = (),
    restart: bool = True,
    on_item: Optional[Callable[[CheckItem], None]] = None,
) -> CheckReport:
    """Check what ``issue`` (or the next ``renew``) needs, ordering nothing.

    Each parameter left out is the managed certificate's (its record), else
    the default, as for ``renew``: ``names``/``ips``; the CA (``directory``,
    or ``staging``; ``ca_bundle``); ``challenge``; the HTTP-01 strategy
    ``http01`` (``auto``, ``standalone``, ``stop-nginx``, ``webroot``),
    ``http_port``, ``webroot`` and ``http_address``, each on its own; and the
    DNS-01 options. ``dns01`` given (see ``Dns01Options.build``) means DNS-01.
    ``agree_tos``, ``eab`` and ``profile`` are what ``issue`` would be given:
    with no account yet at the CA, a missing agreement or binding fails the
    ACME server item. ``restart=False``: nginx is left alone, as ``issue``
    would leave it (Docker is not asked). ``on_item`` is called with each item
    as soon as it is done (a check may wait on DNS or the network).

    Raises only for contradictory parameters (``directory`` with ``staging``,
    ``dns01`` with ``challenge="http-01"``, an unknown ``challenge``);
    everything else is an item.
    """
    from .choices import CHALLENGES
    from .node import Node

    node = node or Node.from_settings()
    if challenge is not None and challenge not in CHALLENGES:
        raise UsageError(f"`challenge` {challenge!r}: choose {' or '.join(CHALLENGES)}")
    if dns01 is not None and challenge == "http-01":
        raise UsageError("DNS-01 options were given with `challenge` http-01: give one")
    names = (names,) if isinstance(names, str) else tuple(names)  # one name, not its letters
    ips = (ips,) if isinstance(ips, str) else tuple(ips)
    record = _record(node)
    acme = record.provider_settings if record is not None and record.provider == "acme" else None
    if not (names or ips) and record is not None:
        names, ips = record.request.names, record.request.ips
    plan = _Plan(
        node=node,
        names=tuple(names),
        ips=tuple(ips),
        acme=acme,
        # the record is passed on only when it reads: an unreadable one is for its own items to say
        ca=_Ca(node if record is not None else None, directory=directory, staging=staging, ca_bundle=ca_bundle),
        challenge=challenge or ("dns-01" if dns01 is not None else None) or getattr(acme, "challenge", None)
        or "http-01",
        given_dns01=dns01,
    )
    nginx = None
    if restart:
        from .nginx import NginxContainer

        nginx = NginxContainer(node.container, node.docker_host, timeout=10.0)
    steps: dict[str, Callable[[], str]] = {
        "names": lambda: _names(plan),
        "ACME server": lambda: _acme_server(plan, agree_tos=agree_tos, eab=eab, profile=profile),
        "docker": lambda: _docker(nginx) if nginx is not None else "not used (--no-restart)",
        "challenge": lambda: _challenge(plan, nginx, http01=http01, http_port=http_port, webroot=webroot,
                                        http_address=http_address),
        "CAA": lambda: _caa(plan),
        "agent config": lambda: _agent_config(node),
        "ssl folder": lambda: _ssl_folder(node),
        "state folder": lambda: _state_folder(node),
    }
    items = []
    for title in ITEMS:
        try:
            item = CheckItem(title, True, steps[title]())
        except SesamTLSError as exc:
            item = CheckItem(title, False, str(exc), exc.exit_code)
        items.append(item)
        if on_item is not None:
            on_item(item)
    return CheckReport(tuple(items))


def _record(node: "Node") -> "Optional[NodeRecord]":
    """The managed certificate's record; None when there is none or it cannot be read (then the
    defaults are checked, and the run that needs the record says what is wrong with it)."""
    from .state import load_record

    try:
        return load_record(node.metadata_path)
    except SesamTLSError:
        return None


class _Ca:
    """The ACME server (:func:`acme_target`) and its directory, fetched once for the items that ask."""

    def __init__(self, node: "Optional[Node]", *, directory: Optional[str], staging: bool,
                 ca_bundle: Optional[str]) -> None:
        from .acme_target import acme_target

        self._node, self._directory, self._staging, self._ca_bundle = node, directory, staging, ca_bundle
        # the URL alone never fails on the CA bundle: the CAA item needs it whatever the bundle
        self.url = acme_target(node, directory=directory, staging=staging).directory
        self._fetched: Optional[tuple[Any, Any]] = None
        self._error: Optional[BaseException] = None

    def fetch(self) -> tuple[Any, Any]:
        """(the connection, the directory), or the error of the one attempt."""
        if self._error is not None:
            raise self._error
        if self._fetched is None:
            from .acme_target import acme_target
            from .providers.acme_net import Connection

            try:
                target = acme_target(self._node, directory=self._directory, staging=self._staging,
                                     ca_bundle=self._ca_bundle)
                conn = Connection(target.directory, ca_bundle=target.ca_bundle, timeout=10.0)
                self._fetched = (conn, conn.directory())
            except Exception as exc:
                self._error = exc
                raise
        return self._fetched


@dataclass(frozen=True)
class _Plan:
    """What the items share: the node, the names, the recorded ACME settings, the CA, the challenge."""

    node: "Node"
    names: tuple[str, ...]
    ips: tuple[str, ...]
    acme: "Optional[AcmeSettings]"
    ca: _Ca
    challenge: str
    given_dns01: "Optional[Dns01Options]"

    def dns01(self) -> "Dns01Options":
        """The DNS-01 options: given, else recorded with the managed certificate when it used DNS-01,
        else none (which ``Dns01Options.build`` refuses, saying what is needed)."""
        from .dns01 import Dns01Options

        if self.given_dns01 is not None:
            return self.given_dns01
        recorded = self.acme.dns01 if self.acme is not None and self.acme.challenge == "dns-01" else None
        if recorded is not None:
            from .state import encode

            return Dns01Options.from_settings(dict(encode(recorded)))
        return Dns01Options.build()

    def dns_names(self, *, wildcards: bool) -> list[str]:
        """The DNS names as the CA sees them (lower case, no trailing dot), each once; with
        ``wildcards=False`` a wildcard counts as its base name (where its DNS-01 record goes)."""
        cleaned = (n.strip().rstrip(".").lower() for n in self.names)
        return list(dict.fromkeys(n if wildcards else n.removeprefix("*.") for n in cleaned))


def _names(plan: _Plan) -> str:
    from .providers.base import CertRequest

    if not plan.names and not plan.ips:
        raise UsageError("no names to check: give `names` NAME (no managed certificate to take them from)")
    dns01 = plan.challenge == "dns-01"
    request = CertRequest.build(plan.names, plan.ips, challenge=plan.challenge)
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


def _mark_local(address: str) -> str:
    """Whether an address belongs to this host: binding it succeeds only then (no traffic)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return f"{address} (not on this host: fine behind NAT that forwards port 80 here)"
    return f"{address} (this host)"


def _acme_server(plan: _Plan, *, agree_tos: bool, eab: "Optional[Eab]", profile: Optional[str]) -> str:
    from .providers.acme_account import AccountStore, check_registration

    conn, directory = plan.ca.fetch()
    url = plan.ca.url
    conn.check_clock()  # what issue would stop on before ordering
    meta = directory.meta
    profiles = sorted(dict(getattr(meta, "profiles", None) or {}))
    if profile and profile not in profiles:
        offered = ", ".join(profiles) or "none"
        raise UsageError(f"{url} answers, but does not offer `profile` {profile} (profiles: {offered})")
    account = AccountStore(plan.node.state_dir, url).load_meta()
    notes = [f"{url} answers"]
    if profiles:
        notes.append(f"profiles {', '.join(profiles)}")
    if account:
        notes.append(f"account {account['uri']}")
    else:
        check_registration(url, meta, agree_tos=agree_tos, eab=eab)
        notes.append("no account yet: issue registers one")
    return "; ".join(notes)


def _docker(nginx: "NginxContainer") -> str:
    state = nginx.check()
    return f"container {nginx.name} is {state} (Docker engine at {nginx.host_label})"


def _challenge(plan: _Plan, nginx: "Optional[NginxContainer]", *, http01: Optional[str],
               http_port: Optional[int], webroot: "Optional[str | Path]", http_address: Sequence[str]) -> str:
    if plan.challenge == "dns-01":
        from .dns01 import check_dns01

        return check_dns01(plan.dns01(), plan.dns_names(wildcards=False))
    from .http01 import Http01Options, plan as http01_plan

    options = Http01Options.given_or_recorded(plan.acme, strategy=http01, port=http_port, webroot=webroot,
                                              listen=http_address)
    return f"HTTP-01 {options.strategy}: {http01_plan(options, nginx)}"


def _caa(plan: _Plan) -> str:
    """RFC 8659/8657: does a CAA record forbid this CA, this account or this challenge method?"""
    from .acme_target import LETSENCRYPT, LETSENCRYPT_STAGING
    from .caa import SPECIAL_USE, judge, relevant
    from .dns01 import caa_lookup
    from .errors import IssuanceError
    from .providers.acme_account import AccountStore

    names = plan.dns_names(wildcards=True)
    if not names:
        return "no names to check"
    dns01 = plan.dns01() if plan.challenge == "dns-01" else None
    lookup = caa_lookup(dns01)
    system = dns01 is None or not (dns01.server or dns01.resolvers)  # this node's resolver: the world's view
    url = plan.ca.url
    try:
        identities = list(getattr(plan.ca.fetch()[1].meta, "caa_identities", None) or ())
    except Exception:  # noqa: BLE001 - the ACME server item says what is wrong with the CA
        identities = []
    if not identities and url in (LETSENCRYPT, LETSENCRYPT_STAGING):
        identities = ["letsencrypt.org"]
    account = (AccountStore(plan.node.state_dir, url).load_meta() or {}).get("uri")
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
        ok, why = judge(records, owner=owner, identities=identities, method=plan.challenge, account=account,
                        wildcard=name.startswith("*."))
        (parts if ok else refused).append(f"{name}: {why}")
    if refused:
        raise IssuanceError("; ".join(refused))
    return "; ".join(parts)


def _agent_config(node: "Node") -> str:
    from .agent_config import AgentConfig

    change = AgentConfig.read(node.agent_config).plan(node.container_cert_path, node.container_key_path)
    return f"{node.agent_config} " + ("will be pointed at the ssl folder" if change is not None else "points at the ssl folder")


def _ssl_folder(node: "Node") -> str:
    from .store import SslFolder

    SslFolder(node.ssl_dir).check_writable()
    return f"{node.ssl_dir} is writable"


def _state_folder(node: "Node") -> str:
    from .errors import StorageError
    from .fsutil import describe_oserror
    from .store import write_probe

    try:
        node.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_probe(node.state_dir)
    except OSError as exc:
        raise StorageError(f"cannot write in {node.state_dir}: {describe_oserror(exc)}") from None
    return f"{node.state_dir} is writable"
