"""DNS-01 challenge responders: who puts the TXT value at ``_acme-challenge.<name>``.

For nodes that cannot open port 80 to the internet, and for wildcard names.
A responder has the same two verbs as HTTP-01's, ``present(name, value)`` and
``cleanup(name, value)``, in three kinds:

- ``rfc2136``: a dynamic update (RFC 2136) signed with TSIG, to the zone's
  primary (``dns01.server``); what BIND, Knot and PowerDNS speak. Built on
  dnspython, not hand-made packets.
- ``certbot``: the operator's certbot manual hooks (``CERTBOT_DOMAIN``,
  ``CERTBOT_VALIDATION``, ...), for any other DNS provider.
- ``exec``: lego's exec contract, ``HOOK present|cleanup <fqdn.> <value>``.

:func:`open_dns01` is a context manager that remembers every value it
presented and removes those, and only those, on the way out: on success,
failure, a CA error and Ctrl-C alike (other TXT values at the same name, a
parallel run's, stay). A CNAME at ``_acme-challenge.<name>`` (delegation to a
validation zone) is followed for the update and for the check.

Before the CA is asked, :func:`wait_visible` queries the zone's authoritative
servers directly (never a cache, never the system resolver for a zone a
``dns01.server`` serves) until each serves every value, or waits a fixed
time when nothing can be asked (``dns01.propagation_wait``).

Secrets: the TSIG secret comes from a file (its path is recorded, so the
timer can renew) or the environment (that run only); never argv, never
recorded, never logged. Hooks run with a minimal environment plus the
variables the operator names (``dns01.hook_env``), recorded by name only.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ipaddress
import logging
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .choices import CHALLENGES, TSIG_ALGORITHMS
from .deadline import Deadline, poll
from .errors import IssuanceError, UsageError

__all__ = [
    "CHALLENGES",
    "TSIG_ALGORITHMS",
    "Dns01Options",
    "Record",
    "open_dns01",
    "wait_visible",
    "parse_server",
]

log = logging.getLogger("sesam_tls")


PREFIX = "_acme-challenge"
TTL = 60
#: One query to one server; the whole check is bounded by the propagation timeout.
QUERY_TIMEOUT = 2.0
MAX_CNAME_HOPS = 8
#: What a hook gets from our own environment besides what the operator names.
BASE_ENV = ("PATH", "LANG", "LANGUAGE", "TZ")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_server(value: str, option: str) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT``, ``[V6]:PORT`` or a bare IPv6 address -> (host, port)."""
    text = value.strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise UsageError(f"{option} {value}: expected HOST[:PORT] or [IPV6]:PORT")
            port = _port(rest[1:], value, option)
    elif text.count(":") == 1:
        host, _, p = text.partition(":")
        port = _port(p, value, option)
    if not host:
        raise UsageError(f"{option} {value}: no host")
    return host, port


def _port(text: str, value: str, option: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"{option} {value}: the port must be a number from 1 to 65535")
    return int(text)


def _label(server: tuple[str, int]) -> str:
    host, port = server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Dns01Options:
    """How DNS-01 challenges are answered. ``secret`` is never recorded (see :meth:`settings`)."""

    server: Optional[str] = None
    tsig_name: Optional[str] = None
    tsig_algorithm: str = "hmac-sha256"
    tsig_file: Optional[str] = None
    tsig_from_env: bool = False
    zone: Optional[str] = None
    resolvers: tuple[str, ...] = ()
    propagation_wait: Optional[float] = None
    propagation_timeout: float = 120.0
    auth_hook: Optional[str] = None
    cleanup_hook: Optional[str] = None
    exec_hook: Optional[str] = None
    hook_env: tuple[str, ...] = ()
    hook_timeout: float = 60.0
    secret: Optional[str] = field(default=None, repr=False, compare=False)

    @classmethod
    def build(cls, *, tsig_env: Optional[str] = None, **kwargs: Any) -> "Dns01Options":
        """Checked options, the TSIG secret read now (from ``tsig_file`` or the variable ``tsig_env``),
        so that a bad value stops the run before any network call."""
        if kwargs.get("tsig_file"):
            kwargs["tsig_file"] = str(Path(kwargs["tsig_file"]).absolute())
        kwargs["resolvers"] = tuple(kwargs.get("resolvers") or ())
        kwargs["hook_env"] = tuple(kwargs.get("hook_env") or ())
        options = cls(tsig_from_env=bool(tsig_env), **kwargs)
        options.check()
        if options.method == "rfc2136":
            secret = _secret_from_env(tsig_env) if tsig_env else options.load_secret()
            options = _replace(options, secret=secret)
        return options

    @property
    def method(self) -> str:
        if self.exec_hook:
            return "exec"
        if self.auth_hook:
            return "certbot"
        return "rfc2136"

    def check(self) -> None:
        """The combinations that make sense (pure)."""
        if self.exec_hook and (self.auth_hook or self.cleanup_hook):
            raise UsageError("`dns01.exec_hook` and `dns01.auth_hook`/`dns01.cleanup_hook` are two contracts: choose one")
        if self.cleanup_hook and not self.auth_hook:
            raise UsageError("`dns01.cleanup_hook` needs `dns01.auth_hook`")
        if self.method == "rfc2136":
            if not self.server:
                raise UsageError(
                    "`challenge` dns-01 needs a way to publish the TXT record: `dns01.server` with a TSIG key "
                    "(RFC 2136), `dns01.exec_hook`, or `dns01.auth_hook`"
                )
            if not self.tsig_name:
                raise UsageError(f"`dns01.server` {self.server}: the update needs a TSIG key: add `dns01.tsig_name`")
            if not (self.tsig_file or self.tsig_from_env or self.secret):
                raise UsageError("`dns01.tsig_name` needs the secret: `dns01.tsig_file` FILE or `dns01.tsig_env` VAR")
        elif self.tsig_name or self.tsig_file or self.tsig_from_env:
            raise UsageError("the TSIG options are for RFC 2136 updates; a hook publishes the record itself")
        if self.tsig_algorithm not in TSIG_ALGORITHMS:
            raise UsageError(f"`dns01.tsig_algorithm` {self.tsig_algorithm}: choose {' or '.join(TSIG_ALGORITHMS)}")
        if self.server:
            parse_server(self.server, "`dns01.server`")
        for resolver in self.resolvers:
            parse_server(resolver, "`dns01.resolvers`")
        for name in self.hook_env:
            if not _ENV_NAME.match(name):
                raise UsageError(f"`dns01.hook_env` {name}: not an environment variable name")
        if self.propagation_wait is not None and not 0 <= self.propagation_wait <= 3600:
            raise UsageError(f"`dns01.propagation_wait` {self.propagation_wait:g}: must be 0 to 3600 seconds")
        if not 0 < self.propagation_timeout <= 3600:
            raise UsageError(f"`dns01.propagation_timeout` {self.propagation_timeout:g}: must be 1 to 3600 seconds")
        if not 0 < self.hook_timeout <= 3600:
            raise UsageError(f"`dns01.hook_timeout` {self.hook_timeout:g}: must be 1 to 3600 seconds")
        for hook, option in ((self.auth_hook, "`dns01.auth_hook`"), (self.cleanup_hook, "`dns01.cleanup_hook`"),
                             (self.exec_hook, "`dns01.exec_hook`")):
            if hook is not None:
                try:
                    if not shlex.split(hook):
                        raise ValueError("empty")
                except ValueError as exc:
                    raise UsageError(f"{option}: cannot split the command into words ({exc})") from None

    def load_secret(self) -> str:
        """The TSIG secret (base64), from the recorded file; a one-line error when it cannot be had."""
        if self.secret:
            return self.secret
        if self.tsig_from_env or not self.tsig_file:
            raise UsageError(
                "the TSIG secret was given with `dns01.tsig_env`, for that run only: a renewal cannot read it; "
                "issue again with `dns01.tsig_file` FILE (a file readable by root only)"
            )
        path = Path(self.tsig_file)
        try:
            text = path.read_text()
            mode = path.stat().st_mode
        except OSError as exc:
            raise UsageError(f"`dns01.tsig_file` {path}: {exc.strerror or exc}") from None
        if mode & 0o077:
            log.warning("`dns01.tsig_file` %s can be read by other users (mode %o): chmod 600 it", path, mode & 0o777)
        return _parse_secret(text, f"`dns01.tsig_file` {path}")

    def settings(self) -> dict[str, Any]:
        """What the metadata records: where the secret is, never the secret."""
        return {
            "method": self.method,
            "server": self.server,
            "tsig_name": self.tsig_name,
            "tsig_algorithm": self.tsig_algorithm if self.method == "rfc2136" else None,
            "tsig_file": self.tsig_file,
            "tsig_source": ("file" if self.tsig_file else "env (that run only)") if self.method == "rfc2136" else None,
            "zone": self.zone,
            "resolvers": list(self.resolvers),
            "propagation_wait": self.propagation_wait,
            "propagation_timeout": self.propagation_timeout,
            "auth_hook": self.auth_hook,
            "cleanup_hook": self.cleanup_hook,
            "exec_hook": self.exec_hook,
            "hook_env": list(self.hook_env),
            "hook_timeout": self.hook_timeout,
        }

    @classmethod
    def from_settings(cls, rec: dict[str, Any]) -> "Dns01Options":
        """Recorded settings back into options; the secret is read when the responder opens."""
        return cls(
            server=rec.get("server"),
            tsig_name=rec.get("tsig_name"),
            tsig_algorithm=rec.get("tsig_algorithm") or "hmac-sha256",
            tsig_file=rec.get("tsig_file"),
            tsig_from_env=str(rec.get("tsig_source") or "").startswith("env"),
            zone=rec.get("zone"),
            resolvers=tuple(rec.get("resolvers") or ()),
            propagation_wait=rec.get("propagation_wait"),
            propagation_timeout=float(rec.get("propagation_timeout") or 120.0),
            auth_hook=rec.get("auth_hook"),
            cleanup_hook=rec.get("cleanup_hook"),
            exec_hook=rec.get("exec_hook"),
            hook_env=tuple(rec.get("hook_env") or ()),
            hook_timeout=float(rec.get("hook_timeout") or 60.0),
        )

    def describe(self) -> str:
        if self.method == "rfc2136":
            return f"RFC 2136 updates to {self.server} signed with TSIG key {self.tsig_name!r} ({self.tsig_algorithm})"
        if self.method == "exec":
            return f"the exec hook {self.exec_hook!r} (lego's contract)"
        return f"the auth hook {self.auth_hook!r} (certbot's contract)"


def _replace(options: Dns01Options, **changes: Any) -> Dns01Options:
    import dataclasses

    return dataclasses.replace(options, **changes)


def _secret_from_env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value.strip():
        raise UsageError(f"`dns01.tsig_env` {name}: that environment variable is empty or unset")
    return _parse_secret(value, f"`dns01.tsig_env` {name}")


_BIND_SECRET = re.compile(r'secret\s+"([^"]+)"')


def _parse_secret(text: str, where: str) -> str:
    """A bare base64 secret, or a BIND/Knot key file (``key "name" { algorithm ..; secret "..."; };``)."""
    found = _BIND_SECRET.search(text)
    value = (found.group(1) if found else text).strip()
    if not value:
        raise UsageError(f"{where}: the file is empty" if where.startswith("`dns01.tsig_file`") else f"{where}: empty")
    try:
        if not base64.b64decode(value, validate=True):
            raise ValueError
    except (binascii.Error, ValueError):
        raise UsageError(f"{where}: the TSIG secret is not base64 (as tsig-keygen or keymgr write it)") from None
    return value


# --- records and lookups ------------------------------------------------------------------------


@dataclass
class Record:
    """One TXT value this run publishes for one name."""

    domain: str  # the identifier, without "*."
    value: str
    fqdn: str = ""  # where the value goes: _acme-challenge.<domain>., or the end of its CNAME chain
    zone: str = ""
    attempted: bool = False
    added: bool = False
    auth_output: str = ""


class Dns:
    """Queries to named servers only (no recursion asked, no system resolver), for one run."""

    def __init__(self, servers: Sequence[tuple[str, int]]) -> None:
        self.servers = [(_address(h), p) for h, p in servers]

    def query(self, server: tuple[str, int], name: str, rdtype: str, timeout: float = QUERY_TIMEOUT) -> Any:
        import dns.flags
        import dns.message
        import dns.query

        q = dns.message.make_query(name, rdtype)
        q.flags &= ~dns.flags.RD
        host, port = server
        try:
            response = dns.query.udp(q, host, port=port, timeout=timeout)
            if response.flags & dns.flags.TC:
                response = dns.query.tcp(q, host, port=port, timeout=timeout)
        except Exception as exc:  # dnspython raises its own and OSError kinds
            raise IssuanceError(f"the DNS server {_label(server)} did not answer a {rdtype} query for "
                                f"{name}: {_dns_reason(exc)}") from None
        return response

    def follow_cname(self, name: str) -> str:
        """The end of the CNAME chain at ``name`` (``name`` itself when there is none), as the server says."""
        import dns.rdatatype

        current = name
        for _ in range(MAX_CNAME_HOPS):
            response = self.query(self.servers[0], current, "TXT")
            target = None
            for rrset in response.answer:
                if rrset.rdtype == dns.rdatatype.CNAME and rrset.name.to_text() == current:
                    target = rrset[0].target.to_text()
            if target is None:
                return current
            log.info("DNS: %s is a CNAME to %s: the TXT record goes there", current, target)
            current = target
        raise IssuanceError(f"the CNAME chain at {name} is longer than {MAX_CNAME_HOPS} hops (a loop?)")

    def find_zone(self, name: str) -> str:
        """The zone that holds ``name``, from the SOA the server answers with."""
        import dns.rcode
        import dns.rdatatype

        server = self.servers[0]
        response = self.query(server, name, "SOA")
        for section in (response.answer, response.authority):
            for rrset in section:
                if rrset.rdtype == dns.rdatatype.SOA:
                    return rrset.name.to_text()
        raise IssuanceError(
            f"zone not found: the DNS server {_label(server)} is not authoritative for {name} "
            f"(answer {dns.rcode.to_text(response.rcode())}, no SOA): name the zone's primary in `dns01.server`, "
            "or the zone with `dns01.zone`"
        )

    def txt_values(self, server: tuple[str, int], name: str) -> set[str]:
        import dns.rdatatype

        response = self.query(server, name, "TXT", timeout=min(QUERY_TIMEOUT, 1.0))
        values: set[str] = set()
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.TXT and rrset.name.to_text() == name:
                for rdata in rrset:
                    values.add(b"".join(rdata.strings).decode("ascii", "replace"))
        return values

    def caa(self, name: str) -> list[Any]:
        """The CAA records at ``name`` itself, as the first named server answers."""
        import dns.rdatatype

        from .caa import Caa

        fqdn = name.rstrip(".") + "."
        response = self.query(self.servers[0], fqdn, "CAA")
        return [Caa(r.flags, r.tag.decode("ascii", "replace"), r.value.decode("utf-8", "replace"))
                for rrset in response.answer if rrset.rdtype == dns.rdatatype.CAA and rrset.name.to_text() == fqdn
                for r in rrset]

    def authoritative(self, zone: str) -> list[tuple[str, int]]:
        """The zone's servers: the first named server, plus the addresses of its NS hosts.

        An NS host whose address is the named server's counts as that server (on
        a port other than 53 it is the same machine). NS host names are looked up
        at the named server when it serves them; only names outside its zones go
        to the system resolver.
        """
        import dns.rdatatype

        first = self.servers[0]
        found = [first]
        try:
            response = self.query(first, zone, "NS")
        except IssuanceError as exc:
            log.warning("DNS: could not list the name servers of %s (%s); checking %s only", zone, exc, _label(first))
            return found
        hosts = [r.target.to_text() for rrset in response.answer if rrset.rdtype == dns.rdatatype.NS for r in rrset]
        for host in hosts:
            for address in self._addresses(host):
                server = (address, 53)
                if address == first[0] or server in found:
                    continue
                found.append(server)
        return found

    def _addresses(self, host: str) -> list[str]:
        import dns.rdatatype

        addresses: list[str] = []
        served = False
        for rdtype in ("A", "AAAA"):
            try:
                response = self.query(self.servers[0], host, rdtype)
            except IssuanceError:
                continue
            if response.answer or response.authority and any(
                    rr.rdtype == dns.rdatatype.SOA for rr in response.authority):
                served = True
            addresses += [r.address for rrset in response.answer if rrset.rdtype in (dns.rdatatype.A,
                                                                                   dns.rdatatype.AAAA) for r in rrset]
        if served:
            return addresses
        try:
            return sorted({str(i[4][0]) for i in socket.getaddrinfo(host.rstrip("."), 53, proto=socket.IPPROTO_UDP)})
        except OSError:
            log.warning("DNS: the name server %s does not resolve; not checked", host)
            return []


def _address(host: str) -> str:
    """An IP address for a server given by name (the system resolver: the server's own name, not the zone)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return str(socket.getaddrinfo(host, 53, proto=socket.IPPROTO_UDP)[0][4][0])
    except OSError as exc:
        raise IssuanceError(f"the DNS server {host} does not resolve: {exc.strerror or exc}") from None


def _dns_reason(exc: BaseException) -> str:
    import dns.exception

    if isinstance(exc, dns.exception.Timeout):
        return "no answer in time (is it running, is port 53 reachable from this node?)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens there)"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc) or type(exc).__name__


def _system_dns() -> Any:
    """For hooks with no server named: where the world looks (real nodes only; tests always name servers)."""
    import dns.resolver

    return dns.resolver.Resolver()


# --- responders ---------------------------------------------------------------------------------


class Rfc2136Responder:
    """Adds and deletes single TXT values with TSIG-signed dynamic updates."""

    def __init__(self, options: Dns01Options, dns_: Dns) -> None:
        import dns.name
        import dns.tsig

        self.options = options
        self.dns = dns_
        self.server = dns_.servers[0]
        self.label = options.server or _label(self.server)
        algorithm = {"hmac-sha256": dns.tsig.HMAC_SHA256, "hmac-sha512": dns.tsig.HMAC_SHA512}[options.tsig_algorithm]
        self.key = dns.tsig.Key(dns.name.from_text(options.tsig_name or ""), options.load_secret(), algorithm)
        self.description = options.describe()

    def present(self, record: Record) -> None:
        self._send(record, "add")
        record.added = True

    def cleanup(self, record: Record) -> None:
        if record.added:
            self._send(record, "delete")
            record.added = False

    def _send(self, record: Record, verb: str) -> None:
        import dns.query
        import dns.rcode
        import dns.tsig
        import dns.update

        update = dns.update.UpdateMessage(record.zone, keyring=self.key)
        rdata = f'"{record.value}"'
        if verb == "add":
            update.add(record.fqdn, TTL, "TXT", rdata)
        else:
            update.delete(record.fqdn, "TXT", rdata)  # this value only: a parallel run's stays
        host, port = self.server
        what = f"the DNS server {self.label}"
        key = f"TSIG key {self.options.tsig_name!r} ({self.options.tsig_algorithm})"
        try:
            response = dns.query.tcp(update, host, port=port, timeout=QUERY_TIMEOUT * 2)
        except dns.tsig.PeerBadKey:
            raise IssuanceError(f"{what} refused the {key}: BADKEY, it knows no key of that name and algorithm "
                                "(compare `dns01.tsig_name`/`dns01.tsig_algorithm` with the server's key)") from None
        except dns.tsig.PeerBadSignature:
            raise IssuanceError(f"{what} refused the {key}: BADSIG, the secret differs from the server's "
                                "(check the `dns01.tsig_file`/`dns01.tsig_env` secret)") from None
        except dns.tsig.PeerBadTime:
            raise IssuanceError(f"{what} refused the {key}: BADTIME, this node's clock and the server's differ "
                                "by more than 5 minutes") from None
        except (dns.tsig.BadSignature, dns.tsig.PeerError) as exc:
            raise IssuanceError(f"{what} refused the {key}: {exc} (a wrong secret or key name?)") from None
        except Exception as exc:  # noqa: BLE001 - network and protocol errors, all said in one line
            raise IssuanceError(f"could not {verb} the TXT record {record.fqdn} at {what}: "
                                f"{_dns_reason(exc)}") from None
        rcode = response.rcode()
        if rcode == dns.rcode.NOERROR:
            log.info("DNS: %s TXT %s %s at %s", "added" if verb == "add" else "removed", record.fqdn,
                     "for " + record.domain, self.label)
            return
        name = dns.rcode.to_text(rcode)
        why = {
            "REFUSED": f"the server does not allow the {key} to update {record.zone} (its ACL)",
            "NOTAUTH": f"the server is not authoritative for {record.zone}, or it refused the {key}",
            "NOTZONE": f"{record.fqdn} is not in the zone {record.zone}",
            "SERVFAIL": "the server failed (its log says why)",
        }.get(name, "see the server's log")
        raise IssuanceError(f"{what} answered {name} to the {verb} of TXT {record.fqdn}: {why}")


class HookResponder:
    """certbot's manual hooks or lego's exec hook, run with a clean environment and a deadline."""

    def __init__(self, options: Dns01Options, all_domains: Sequence[str], total: int) -> None:
        self.options = options
        self.all_domains = ",".join(all_domains)
        self.total = total
        self.done = 0
        self.description = options.describe()

    def present(self, record: Record) -> None:
        record.attempted = True
        if self.options.method == "exec":
            self._exec("present", record)
        else:
            self.done += 1
            env = {"CERTBOT_DOMAIN": record.domain, "CERTBOT_VALIDATION": record.value,
                   "CERTBOT_REMAINING_CHALLENGES": str(max(self.total - self.done, 0)),
                   "CERTBOT_ALL_DOMAINS": self.all_domains}
            record.auth_output = run_dns_hook("auth", self.options.auth_hook or "", [], env, self.options,
                                              record.domain).strip()
        record.added = True

    def cleanup(self, record: Record) -> None:
        if not record.attempted:
            return
        record.attempted = record.added = False
        if self.options.method == "exec":
            self._exec("cleanup", record)
        elif self.options.cleanup_hook:
            env = {"CERTBOT_DOMAIN": record.domain, "CERTBOT_VALIDATION": record.value,
                   "CERTBOT_REMAINING_CHALLENGES": "0", "CERTBOT_ALL_DOMAINS": self.all_domains,
                   "CERTBOT_AUTH_OUTPUT": record.auth_output}
            run_dns_hook("cleanup", self.options.cleanup_hook, [], env, self.options, record.domain)
        else:
            log.info("DNS: no `dns01.cleanup_hook`: the TXT record for %s stays as the auth hook left it", record.domain)

    def _exec(self, verb: str, record: Record) -> None:
        run_dns_hook(verb, self.options.exec_hook or "", [verb, record.fqdn, record.value], {}, self.options,
                     record.domain)


def hook_environment(allowed: Sequence[str], extra: dict[str, str]) -> dict[str, str]:
    """A minimal base (PATH, the locale), the variables the operator allowed by name, then ours."""
    env = {k: v for k, v in os.environ.items() if k in BASE_ENV or k.startswith("LC_")}
    env.setdefault("PATH", DEFAULT_PATH)
    for name in allowed:
        if name in os.environ:
            env[name] = os.environ[name]
    env.update(extra)
    return env


def run_dns_hook(verb: str, command: str, args: list[str], extra: dict[str, str], options: Dns01Options,
                 domain: str) -> str:
    """Run a DNS hook without a shell (the image has none), in a session of its own, so that
    a timeout stops it with everything it started. Returns its standard output."""
    argv = [*shlex.split(command), *args]
    what = f"the DNS {verb} hook for {domain}"
    log.info("DNS: running %s (%s)", what, argv[0])
    try:
        proc = subprocess.Popen(argv, env=hook_environment(options.hook_env, extra), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        raise IssuanceError(f"{what} could not be started: {argv[0]}: {exc.strerror or exc}") from None
    try:
        out, err = proc.communicate(timeout=options.hook_timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        raise IssuanceError(f"{what} did not finish within {options.hook_timeout:g} s; it was stopped "
                            "with every process it started (`dns01.hook_timeout`)") from None
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    _kill_group(proc)  # nothing it left running in the background outlives it
    text_out = out.decode("utf-8", "replace")
    text_err = err.decode("utf-8", "replace")
    for stream in (text_out, text_err):
        for line in stream.splitlines():
            log.info("DNS %s hook: %s", verb, line)
    if proc.returncode != 0:
        last = (text_err.strip().splitlines() or text_out.strip().splitlines() or ["no output"])[-1]
        raise IssuanceError(f"{what} exited with code {proc.returncode}: {last[:200]}")
    return text_out


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# --- the context manager ------------------------------------------------------------------------


class Dns01Session:
    """Locates records, presents them, and remembers what to remove."""

    def __init__(self, options: Dns01Options, domains: Sequence[str], total: int) -> None:
        self.options = options
        named = [parse_server(options.server, "`dns01.server`")] if options.server else []
        named += [parse_server(r, "`dns01.resolvers`") for r in options.resolvers]
        self.dns = Dns(named) if named else None
        if options.method == "rfc2136":
            assert self.dns is not None  # check() requires `dns01.server`
            self.responder: Any = Rfc2136Responder(options, self.dns)
        else:
            self.responder = HookResponder(options, domains, total)
        self.description = self.responder.description
        self.records: list[Record] = []

    def locate(self, record: Record) -> None:
        name = f"{PREFIX}.{record.domain}."
        if self.dns is not None:
            record.fqdn = self.dns.follow_cname(name)
            zone = self.options.zone
            if zone and (record.fqdn == zone.rstrip(".") + "." or record.fqdn.endswith("." + zone.rstrip(".") + ".")):
                record.zone = zone.rstrip(".") + "."
            else:
                record.zone = self.dns.find_zone(record.fqdn)
        else:  # a hook and no server named: where the world looks (real nodes; tests always name servers)
            import dns.resolver

            resolver = _system_dns()
            try:
                answer = resolver.resolve(name, "TXT", raise_on_no_answer=False)
                record.fqdn = answer.canonical_name.to_text()
            except Exception:  # noqa: BLE001 - no record yet is the usual case
                record.fqdn = name
            try:
                record.zone = (self.options.zone.rstrip(".") + "." if self.options.zone
                               else dns.resolver.zone_for_name(record.fqdn, resolver=resolver).to_text())
            except Exception as exc:  # noqa: BLE001 - said in one line
                raise IssuanceError(f"zone not found for {record.fqdn} through this node's resolver: "
                                    f"{_dns_reason(exc)}; name the zone's servers with `dns01.resolvers`") from None

    def servers_for_check(self, records: Sequence[Record]) -> list[tuple[str, int]]:
        """`dns01.resolvers`, else the zones' authoritative servers (the `dns01.server` first)."""
        if self.options.resolvers:
            return [(_address(h), p) for h, p in (parse_server(r, "`dns01.resolvers`") for r in self.options.resolvers)]
        if self.dns is not None:
            first = self.dns.servers[0]
            found = {s for z in {r.zone for r in records} for s in self.dns.authoritative(z)}
            return sorted(found, key=lambda s: (s != first, s))
        resolver = _system_dns()
        servers: set[tuple[str, int]] = set()
        for zone in {r.zone for r in records}:
            try:
                hosts = [r.target.to_text() for r in resolver.resolve(zone, "NS")]
                for host in hosts:
                    for rdtype in ("A", "AAAA"):
                        answer = resolver.resolve(host, rdtype, raise_on_no_answer=False)
                        servers.update((r.address, 53) for r in answer)
            except Exception as exc:  # noqa: BLE001 - said in one line
                raise IssuanceError(f"could not find the name servers of {zone} through this node's resolver: "
                                    f"{_dns_reason(exc)}; name them with `dns01.resolvers`, or use "
                                    "`dns01.propagation_wait` S") from None
        self.dns = Dns(sorted(servers))
        return sorted(servers)

    def present(self, domain: str, value: str) -> Record:
        record = Record(domain=domain, value=value)
        self.records.append(record)
        record.attempted = True
        self.locate(record)
        self.responder.present(record)
        return record

    def present_at(self, domain: str, value: str, fqdn: str, zone: str) -> Record:
        """A value at a place already located (``check``'s test record)."""
        record = Record(domain=domain, value=value, fqdn=fqdn, zone=zone, attempted=True)
        self.records.append(record)
        self.responder.present(record)
        return record

    def cleanup(self, domain: str, value: str) -> None:
        for record in self.records:
            if record.domain == domain and record.value == value:
                self.responder.cleanup(record)

    def cleanup_all(self) -> None:
        for record in self.records:
            if not (record.added or (record.attempted and isinstance(self.responder, HookResponder))):
                continue
            try:
                self.responder.cleanup(record)
            except Exception as exc:  # noqa: BLE001 - the rest must still be removed; the first error stays
                log.error("DNS: could not remove the TXT value for %s at %s: %s; remove it by hand",
                          record.domain, record.fqdn or f"{PREFIX}.{record.domain}", exc)


@contextlib.contextmanager
def open_dns01(options: Dns01Options, domains: Sequence[str], *, total: Optional[int] = None) -> Iterator[Dns01Session]:
    """A DNS-01 session whose presented values are all removed on the way out, whatever happened."""
    session = Dns01Session(options, domains, total if total is not None else len(domains))
    try:
        yield session
    finally:
        session.cleanup_all()


# --- the propagation check ----------------------------------------------------------------------


def wait_visible(session: Dns01Session, records: Sequence[Record], *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
    """Until every server the check asks serves every value, bounded; or the fixed wait.

    Asked at once, then every 20 ms doubling to 1 s until `dns01.propagation_timeout`; a server
    that has served a value is not asked for it again. ``clock`` and ``sleep``: for tests."""
    options = session.options
    if options.propagation_wait is not None:
        log.info("DNS: waiting %g s for the TXT records to propagate (`dns01.propagation_wait`)",
                 options.propagation_wait)
        sleep(options.propagation_wait)
        return
    servers = session.servers_for_check(records)
    dns_ = session.dns
    assert dns_ is not None
    started = clock()
    deadline = Deadline(options.propagation_timeout, "the TXT records' propagation", error=IssuanceError, clock=clock)
    waiting = {id(r): r for r in records}
    seen: dict[tuple[int, tuple[str, int]], bool] = {}

    def look() -> tuple[bool, None, None]:
        for key, record in list(waiting.items()):
            for server in servers:
                if seen.get((key, server)):
                    continue
                try:
                    seen[(key, server)] = record.value in dns_.txt_values(server, record.fqdn)
                except IssuanceError as exc:
                    log.debug("DNS: %s", exc)
            if all(seen.get((key, s)) for s in servers):
                del waiting[key]
                log.info("DNS: %s serves the value for %s on %s after %.2f s", record.fqdn, record.domain,
                         ", ".join(_label(s) for s in servers), clock() - started)
        return not waiting, None, None

    def give_up() -> IssuanceError:
        record = next(iter(waiting.values()))
        good = [_label(s) for s in servers if seen.get((id(record), s))]
        lagging = [_label(s) for s in servers if not seen.get((id(record), s))]
        more = f" ({len(waiting) - 1} more names waited too)" if len(waiting) > 1 else ""
        return IssuanceError(
            f"the TXT record {record.fqdn} for {record.domain} was not visible after "
            f"{options.propagation_timeout:g} s: served by {', '.join(good) or 'no server'} but not by "
            f"{', '.join(lagging)} (that server lags or does not get the zone's updates; "
            f"`dns01.resolvers` names the servers to ask, `dns01.propagation_timeout` waits longer){more}"
        )

    poll(look, deadline, "waiting for the TXT records", at_once=True, first=0.02, growth=2, cap=1.0,
         give_up=give_up, sleep=sleep)


def txt_value(key_authorization: str) -> str:
    """RFC 8555 section 8.4: base64url(SHA-256(key authorization)), unpadded."""
    import hashlib

    digest = hashlib.sha256(key_authorization.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


# --- check ----------------------------------------------------------------------------------------


def check_dns01(options: Dns01Options, domains: Sequence[str]) -> str:
    """``sesam-tls check`` for DNS-01: where each record goes (CNAME followed, zone found), the
    TSIG key accepted (a test record added and removed), the servers the check will ask answering."""
    parts = [options.describe()]
    named = [parse_server(options.server, "`dns01.server`")] if options.server else []
    named += [parse_server(r, "`dns01.resolvers`") for r in options.resolvers]
    if not named:
        parts.append("no `dns01.server` or `dns01.resolvers`: nothing to check before the CA looks")
        return "; ".join(parts)
    with open_dns01(options, domains) as session:
        assert session.dns is not None
        zones: dict[str, list[str]] = {}
        for domain in domains:
            record = Record(domain=domain, value="")
            session.locate(record)
            zones.setdefault(record.zone, []).append(record.fqdn)
        for zone, fqdns in zones.items():
            parts.append(f"zone {zone} holds {', '.join(fqdns)}")
        if options.method == "rfc2136":
            import secrets

            for zone, fqdns in zones.items():
                probe = f"sesam-tls-check-{secrets.token_hex(4)}"
                session.present_at(fqdns[0].removeprefix(PREFIX + ".").rstrip("."), probe, fqdns[0], zone)
                session.cleanup_all()
            parts.append(f"TSIG key {options.tsig_name!r} accepted (a test record added and removed)")
        if options.propagation_wait is not None:
            parts.append(f"propagation: a fixed wait of {options.propagation_wait:g} s (`dns01.propagation_wait`)")
        else:
            how = "`dns01.resolvers`" if options.resolvers else "the zone's authoritative servers"
            servers = session.servers_for_check([Record(domain="", value="", zone=z) for z in zones])
            for server in servers:
                session.dns.query(server, next(iter(zones)), "SOA")
            parts.append(f"propagation check asks {how}: {', '.join(_label(s) for s in servers)} (all answer)")
    return "; ".join(parts)


def caa_lookup(options: Optional[Dns01Options]) -> Callable[[str], list[Any]]:
    """How ``check`` reads CAA: at the first named DNS server with DNS-01, else through this node's
    resolver (as the CA would, from the internet)."""
    if options is not None and (options.server or options.resolvers):
        first = parse_server(options.server, "`dns01.server`") if options.server else \
            parse_server(options.resolvers[0], "`dns01.resolvers`")
        return Dns([first]).caa

    def system(name: str) -> list[Any]:
        import dns.resolver

        from .caa import Caa

        try:
            answer = _system_dns().resolve(name, "CAA", raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except Exception as exc:  # noqa: BLE001 - said in one line
            raise IssuanceError(f"could not read the CAA records of {name}: {_dns_reason(exc)}") from None
        return [Caa(r.flags, r.tag.decode("ascii", "replace"), r.value.decode("utf-8", "replace")) for r in answer]

    return system
