"""What sesam-tls keeps in its state folder: the node record (``certificate.json``), the lock.

The record is typed: :class:`NodeRecord` and the frozen dataclasses under it
are the only way any module reads or writes ``certificate.json``; no module
reads it by key strings. It says what the certificate *is* (provider and its
settings, names, key type, validity), how it is deployed, the settings a later
unattended renewal replays, and the renewal state. It never holds a secret:
a secret an unattended run needs is recorded by where it comes from (see
docs/state.md, which describes every field).

The ``schema`` number changes whenever a field's meaning does; readers refuse a
schema newer than they know and migrate older ones (:data:`MIGRATIONS`).

Adding a field is one line: a typed attribute with a default on the dataclass
it belongs to (plus its line in docs/state.md). The codec below reads the
types; a file without the field reads as the default, and a file with a field
no dataclass declares is refused with one line naming it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import fcntl
import json
import logging
import os
import stat
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, NewType, Optional, Union

from .deadline import Deadline, poll
from .errors import LockError, StorageError, UsageError
from .fsutil import TMP_MARK, atomic_write, describe_oserror, make_dirs, sweep_temp_siblings

__all__ = [
    "SCHEMA",
    "SETTINGS",
    "AcmeSettings",
    "AriWindow",
    "AttentionSent",
    "CertificateInfo",
    "DeploySettings",
    "Deployment",
    "Dns01Settings",
    "HistoryEntry",
    "Hooks",
    "ImportSettings",
    "NodeRecord",
    "Notify",
    "PendingEvent",
    "ProviderSettings",
    "Proxy",
    "RenewalState",
    "ReplacesDropped",
    "Request",
    "Revoked",
    "RolledBack",
    "SecretSource",
    "SelfSignedSettings",
    "Timestamp",
    "UnknownSettings",
    "load_metadata",
    "load_record",
    "node_lock",
    "record_classes",
    "save_record",
    "settings_class",
]

SCHEMA = 2

log = logging.getLogger("sesam_tls")

#: An ISO 8601 date and time, far enough from the calendar's ends to add a backoff to ("" reads as None).
Timestamp = NewType("Timestamp", str)
#: A small whole number (counts of failures and refusals).
Count = NewType("Count", int)


class ShapeError(ValueError):
    """A field of the record that is not what its type says; the message names it."""


# the record --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """What was asked for; a renewal asks for the same."""

    names: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    key_type: str = "ecdsa-p256"
    days: Optional[int] = None
    key_policy: Optional[str] = None


@dataclass(frozen=True)
class CertificateInfo:
    """The deployed certificate, as described when it was deployed."""

    names: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    key_type: Optional[str] = None
    serial: Optional[str] = None
    fingerprint_sha256: Optional[str] = None
    issuer: Optional[str] = None
    not_before: Optional[Timestamp] = None
    not_after: Optional[Timestamp] = None
    ari_cert_id: Optional[str] = None

    @property
    def identifiers(self) -> list[str]:
        return [*self.names, *self.ips]


@dataclass(frozen=True)
class RolledBack:
    """The live certificate is there by ``sesam-tls rollback``: from which version, to which, when."""

    from_version: Optional[str] = None
    to_version: Optional[str] = None
    at: Optional[Timestamp] = None


@dataclass(frozen=True)
class Deployment:
    """Where and how the certificate was put in place."""

    version: Optional[str] = None
    previous_version: Optional[str] = None
    deployed_at: Optional[Timestamp] = None
    action: Optional[str] = None
    verified: bool = False
    ssl_dir: Optional[str] = None
    agent_config: Optional[str] = None
    container: Optional[str] = None
    rolled_back: Optional[RolledBack] = None


@dataclass(frozen=True)
class SecretSource:
    """Where a secret comes from, never the secret: ``file`` (a path kept 0600 by the operator),
    ``credential`` (a systemd credential name, wired in by ``timer install``), ``env`` (a variable:
    that run only)."""

    kind: str = "file"
    name: str = ""


@dataclass(frozen=True)
class Proxy:
    """The outbound proxy of the watched run, replayed by the timer's run (no credentials: see docs)."""

    https_proxy: Optional[str] = None
    http_proxy: Optional[str] = None
    no_proxy: Optional[str] = None

    @property
    def environment(self) -> dict[str, str]:
        values = {"HTTPS_PROXY": self.https_proxy, "HTTP_PROXY": self.http_proxy, "NO_PROXY": self.no_proxy}
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class DeploySettings:
    """What ``issue``/``import``/``renew``/``configure`` were told that a later unattended run replays.

    ``None`` means "not given": the default (or the command line of the run) applies.
    """

    verify: Optional[str] = None
    verify_name: Optional[str] = None
    reload_mode: Optional[str] = None
    restart: Optional[bool] = None
    timeout: Optional[float] = None
    metrics_file: Optional[str] = None
    container: Optional[str] = None
    docker_host: Optional[str] = None
    proxy: Proxy = field(default_factory=Proxy)


@dataclass(frozen=True)
class Hooks:
    """Shell commands: after a deployment, after a failed renewal."""

    deploy: Optional[str] = None
    failure: Optional[str] = None
    #: the environment variables the hooks may see (``--hook-env``), by name, never by value
    env: tuple[str, ...] = ()


@dataclass(frozen=True)
class AriWindow:
    """The CA's renewal window (RFC 9773) and the moment chosen in it."""

    supported: Optional[bool] = None
    start: Optional[Timestamp] = None
    end: Optional[Timestamp] = None
    chosen: Optional[Timestamp] = None
    explanation: Optional[str] = None
    next_poll: Optional[Timestamp] = None


@dataclass(frozen=True)
class ReplacesDropped:
    """The CA refused an order because of ``replaces``; it was placed once more without it."""

    at: Optional[Timestamp] = None
    replaces: Optional[str] = None
    reason: Optional[str] = None


@dataclass(frozen=True)
class RenewalState:
    """The renewal bookkeeping: attempts, results, the backoff's counts, the ARI window."""

    failures: Count = Count(0)
    refusals: Count = Count(0)
    last_attempt: Optional[Timestamp] = None
    last_result: Optional[str] = None
    last_success: Optional[Timestamp] = None
    last_failure: Optional[Timestamp] = None
    ari: Optional[AriWindow] = None
    replaces_dropped: Optional[ReplacesDropped] = None


@dataclass(frozen=True)
class HistoryEntry:
    """A certificate deployed before the current one (newest first, at most 10)."""

    serial: Optional[str] = None
    fingerprint_sha256: Optional[str] = None
    not_after: Optional[Timestamp] = None
    version: Optional[str] = None


@dataclass(frozen=True)
class Revoked:
    """The managed certificate was revoked at its CA."""

    serial: Optional[str] = None
    reason: Optional[str] = None
    at: Optional[Timestamp] = None


@dataclass(frozen=True)
class PendingEvent:
    """A webhook event not delivered yet (the receiver was down): sent again by the next run."""

    event: str = ""
    node: Optional[str] = None
    names: tuple[str, ...] = ()
    serial: Optional[str] = None
    not_after: Optional[Timestamp] = None
    reason: Optional[str] = None
    time: Optional[Timestamp] = None
    text: Optional[str] = None


@dataclass(frozen=True)
class AttentionSent:
    """When an attention reason was last notified (at most once a day each)."""

    reason: str = ""
    at: Optional[Timestamp] = None


@dataclass(frozen=True)
class Notify:
    """Who is told, and what is still to tell (sesam_tls.notify)."""

    url_from: Optional[SecretSource] = None
    pending: tuple[PendingEvent, ...] = ()
    attention_sent: tuple[AttentionSent, ...] = ()


# the providers' settings: the record's ``provider_settings`` ---------------------------------------


class ProviderSettings:
    """What every provider's settings class shares: the record codec, and how a library caller's
    own provider is rebuilt for a renewal.

    A settings class is the typed ``provider_settings`` section of the record: what the provider
    was told, never a secret. The shipped ones are plain records; building a provider from them is
    the registry's (:func:`sesam_tls.providers.registry.build_provider`, above this module). A
    library caller's own settings class may define ``build(node, record, *, dry_run)`` instead.
    """

    name: ClassVar[str] = ""
    #: Whether the provider's certificates come from a CA (the gate then refuses a self-signed one).
    from_ca: ClassVar[bool] = True

    @classmethod
    def from_record(cls, data: Any) -> Any:
        return decode(cls, data or {}, "provider_settings")

    def to_record(self) -> dict[str, Any]:
        return {f.name: encode(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]  # fields() of a dataclass instance; mypy sees the class type

    def build(self, node: Any, record: "NodeRecord", *, dry_run: bool = False) -> Any:
        raise UsageError(f"the managed certificate's provider {record.provider!r} cannot be renewed by this sesam-tls")


@dataclass(frozen=True)
class SelfSignedSettings(ProviderSettings):
    """A self-signed certificate needs nothing but the request."""

    name: ClassVar[str] = "selfsigned"
    from_ca: ClassVar[bool] = False


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
class AcmeSettings(ProviderSettings):
    """Which CA and account, and how HTTP-01 was answered."""

    name: ClassVar[str] = "acme"

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
    eab_key_from: Optional[SecretSource] = None
    challenge: Optional[str] = None
    dns01: Optional[Dns01Settings] = None


@dataclass(frozen=True)
class ImportSettings(ProviderSettings):
    """Where the operator's files were; sesam-tls cannot renew them (``renewal.decide`` never asks)."""

    name: ClassVar[str] = "import"
    from_ca: ClassVar[bool] = False

    cert_file: Optional[str] = None
    key_file: Optional[str] = None
    chain_file: Optional[str] = None


@dataclass(frozen=True)
class UnknownSettings(ProviderSettings):
    """A library caller's own provider: recorded by name, with no settings; ``renew`` cannot rebuild it."""


#: From a provider's name to its settings class: how ``provider_settings`` is read. The registry
#: (:data:`sesam_tls.providers.registry.PROVIDERS`) is this same dict; adding a provider is one entry.
SETTINGS: dict[str, type[ProviderSettings]] = {
    SelfSignedSettings.name: SelfSignedSettings,
    AcmeSettings.name: AcmeSettings,
    ImportSettings.name: ImportSettings,
}


def settings_class(name: str) -> type[ProviderSettings]:
    """The settings class of the provider called ``name`` (:class:`UnknownSettings` for one not registered)."""
    return SETTINGS.get(name, UnknownSettings)


@dataclass(frozen=True)
class NodeRecord:
    """Everything sesam-tls knows about the node's managed certificate. See docs/state.md.

    ``provider_settings`` is the provider's own settings class (its type is
    chosen by ``provider`` through :data:`SETTINGS`).
    """

    provider: str
    provider_settings: Any = None
    request: Request = field(default_factory=Request)
    certificate: CertificateInfo = field(default_factory=CertificateInfo)
    deployment: Deployment = field(default_factory=Deployment)
    settings: DeploySettings = field(default_factory=DeploySettings)
    hooks: Hooks = field(default_factory=Hooks)
    renewal: RenewalState = field(default_factory=RenewalState)
    history: tuple[HistoryEntry, ...] = ()
    revoked: Optional[Revoked] = None
    notify: Notify = field(default_factory=Notify)

    def __post_init__(self) -> None:
        if self.provider_settings is None:
            object.__setattr__(self, "provider_settings", settings_class(self.provider)())

    def replace(self, **changes: Any) -> "NodeRecord":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The record as JSON values, in the file's order, with its schema number."""
        return {"schema": SCHEMA, **encode(self)}

    @classmethod
    def from_json(cls, data: Any) -> "NodeRecord":
        """The record from JSON values of any known schema; ShapeError names a wrong field."""
        if not isinstance(data, dict) or type(data.get("schema")) is not int:
            raise ShapeError("not a sesam-tls node record")
        version = data["schema"]
        if version > SCHEMA:
            raise ShapeError(f"schema {version}, newer than this sesam-tls knows ({SCHEMA})")
        while version < SCHEMA:
            if version not in MIGRATIONS:
                raise ShapeError(f"schema {version} is not one sesam-tls can read")
            data = MIGRATIONS[version](data)
            version += 1
        body = {k: v for k, v in data.items() if k != "schema"}
        provider = body.get("provider")
        if not isinstance(provider, str):
            raise ShapeError("'provider' is missing or not a string")
        settings = settings_class(provider).from_record(body.pop("provider_settings", None) or {})
        record = decode(cls, {**body, "provider": provider}, "")
        return record.replace(provider_settings=settings)


def record_classes() -> list[type]:
    """Every dataclass of the record, the providers' settings included (docs/state.md describes each field)."""
    return [NodeRecord, Request, CertificateInfo, Deployment, RolledBack, DeploySettings, Proxy, SecretSource, Hooks,
            RenewalState, AriWindow, ReplacesDropped, HistoryEntry, Notify, PendingEvent, AttentionSent, Revoked,
            *SETTINGS.values()]


# schema migrations --------------------------------------------------------------------------------


def _from_schema_1(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 had no replayed settings; the container it deployed to is the one to use again."""
    container = (data.get("deployment") or {}).get("container") if isinstance(data.get("deployment"), dict) else None
    settings = {"container": container} if isinstance(container, str) else {}
    return {**data, "schema": 2, "settings": settings}


#: From a schema number to the function that turns such a file into the next schema.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _from_schema_1}


# the codec: typed dataclasses <-> JSON values, by the declared types ------------------------------


def encode(value: Any) -> Any:
    """JSON values for a record dataclass (fields in declaration order), tuple or plain value."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        to_record = getattr(value, "to_record", None)
        if callable(to_record):
            return to_record()
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [encode(v) for v in value]
    return value


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls, localns=globals())
    return _HINTS[cls]


def decode(cls: type, data: Any, where: str) -> Any:
    """An instance of the dataclass ``cls`` from JSON values; a missing or null field takes its default."""
    if not isinstance(data, dict):
        raise ShapeError(f"'{where}' is not an object")
    hints = _hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{where}.{key}" if where else str(key)
        if key not in known:
            raise ShapeError(f"'{name}' is not a field sesam-tls knows")
        if value is None or known[key].type == "Any":
            if value is not None:
                kwargs[key] = value
            continue
        kwargs[key] = _value(hints[key], value, name)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field missing
        raise ShapeError(f"'{where or cls.__name__}' lacks a field: {exc}") from None


def _value(kind: Any, value: Any, name: str) -> Any:
    origin = typing.get_origin(kind)
    if origin is Union:  # Optional[X]
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        return _value(inner[0], value, name)
    if origin is tuple:
        if not isinstance(value, list):
            raise ShapeError(f"'{name}' is not a list")
        item = typing.get_args(kind)[0]
        return tuple(_value(item, v, f"{name}[{i}]") for i, v in enumerate(value))
    if kind is Timestamp:
        if value == "":
            return None
        if not _is_time(value):
            raise ShapeError(f"'{name}' is not a date and time")
        return value
    if kind is Count:
        if type(value) is not int or not 0 <= value < 1_000_000:
            raise ShapeError(f"'{name}' is not a small whole number")
        return value
    if dataclasses.is_dataclass(kind):
        return decode(kind, value, name)  # type: ignore[arg-type]  # is_dataclass() narrows to a class or an instance; kind is a class here
    if kind is bool:
        if not isinstance(value, bool):
            raise ShapeError(f"'{name}' is not true or false")
        return value
    if kind is int:
        if type(value) is not int:
            raise ShapeError(f"'{name}' is not a whole number")
        return value
    if kind is float:
        if type(value) not in (int, float) or not 0 <= value < 1e9:
            raise ShapeError(f"'{name}' is not a number of seconds")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ShapeError(f"'{name}' is not a string")
        return value
    raise ShapeError(f"'{name}' has a type this sesam-tls cannot read")  # pragma: no cover - a programming error


def _is_time(value: Any) -> bool:
    """An ISO 8601 time far enough from the calendar's ends to add a backoff or a window to."""
    if not isinstance(value, str):
        return False
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return 100 <= parsed.year <= 9000


# reading and writing ------------------------------------------------------------------------------


def load_record(path: Path) -> Optional[NodeRecord]:
    """The node record at ``path``; None when there is none; StorageError (one line) when it is unusable."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: "[[[[..." nested too deeply
        raise StorageError(f"cannot read {path}: {exc.__class__.__name__}; move it aside to start afresh") from None
    if not isinstance(data, dict) or type(data.get("schema")) is not int:
        raise StorageError(f"{path} is not a sesam-tls metadata file; move it aside to start afresh")
    if data["schema"] > SCHEMA:
        raise StorageError(f"{path} has schema {data['schema']}, newer than this sesam-tls knows ({SCHEMA})")
    try:
        return NodeRecord.from_json(data)
    except ShapeError as exc:
        raise StorageError(f"{path}: {exc}; fix it or move it aside to start afresh") from None


def load_metadata(path: Path) -> Optional[dict[str, Any]]:
    """The record as JSON values (checked and migrated), for callers that print or compare it."""
    record = load_record(path)
    return None if record is None else record.to_json()


def save_record(path: Path, record: NodeRecord) -> None:
    _ensure_dir(path.parent)
    body = json.dumps(record.to_json(), indent=2, sort_keys=False, allow_nan=False) + "\n"
    sweep_temp_siblings(path)
    atomic_write(path, body.encode(), 0o644, what=f"metadata {path}", point="metadata")


#: What sesam-tls keeps in its state folder; a folder holding anything else is not tightened.
_OURS = ("lock", "certificate.json", "accounts")
_WARNED: set[Path] = set()  # once per run, not at every write


def _ensure_dir(path: Path) -> None:
    """The state folder, 0700: it holds the hook commands (certificate.json) and the ACME account keys."""
    try:
        make_dirs(path, 0o700)
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            _tighten(path, mode)
    except OSError as exc:
        raise StorageError(f"cannot create state folder {path}: {describe_oserror(exc)}") from None


def _tighten(path: Path, mode: int) -> None:
    """An older or hand-made state folder open to others becomes 0700, unless it is not only ours."""
    foreign = [name for name in os.listdir(path) if name not in _OURS and TMP_MARK not in name]
    if foreign:
        if path in _WARNED:
            return
        _WARNED.add(path)
        log.warning("the state folder %s is open to others (mode %04o) and holds files sesam-tls did not make "
                    "(%s); not changing it: chmod 700 it, or choose another `state_dir`", path, mode, foreign[0])
        return
    os.chmod(path, 0o700)
    log.warning("tightened the state folder %s from mode %04o to 0700 (it holds the hook commands)", path, mode)


@contextlib.contextmanager
def node_lock(state_dir: Path, *, wait: float = 10.0, clock: Callable[[], float] = time.monotonic,
              sleep: Callable[[float], None] = time.sleep) -> Iterator[None]:
    """One sesam-tls run at a time per node; a second one waits ``wait`` s, then fails.

    Tried at once (with ``wait`` 0 too), then every 50 ms. ``clock`` and ``sleep``: for tests."""
    _ensure_dir(state_dir)
    path = state_dir / "lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StorageError(f"cannot open lock {path}: {describe_oserror(exc)}") from None
    try:
        def take() -> tuple[bool, None, None]:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True, None, None
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                return False, None, None

        def give_up() -> LockError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            return LockError(f"another sesam-tls run (pid {holder}) holds {path}; try again later")

        poll(take, Deadline(wait, f"the lock {path}", error=LockError, clock=clock), "waiting for the lock",
             at_once=True, first=0.05, growth=1, cap=0.05, give_up=give_up, sleep=sleep)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
