"""The renewal timer: systemd units or a cron entry that run ``sesam-tls renew``.

Rendering is pure (node + command -> file text); the few effects (write,
delete, ``systemctl``) are at the bottom. The folders are under the node's
``root`` like every other path, so a rehearsal never touches the host, and
``systemctl`` is only ever run by a caller that passes a runner: the CLI does
that when no ``--root`` is set and systemd is the running init. The public
operations (:func:`install_timer`, :func:`remove_timer`, :func:`timer_status`)
make those choices for the caller: the command that runs us, whether systemd
may be driven, what the recorded settings need beside the command line.

The units carry the node's settings as explicit flags, not environment
variables: the timer must keep working after the shell that installed it is
gone, and ``Node.from_settings`` would otherwise see a different environment.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from .errors import StorageError, UsageError
from .fsutil import atomic_write, describe_oserror, fsync_dir
from .node import Node

__all__ = [
    "SERVICE",
    "TIMER",
    "CRON_FILE",
    "Change",
    "systemd_dir",
    "cron_dir",
    "systemd_live",
    "renew_command",
    "render_service",
    "render_timer",
    "render_cron",
    "install",
    "remove",
    "status",
    "CronEntry",
    "SystemdTimer",
    "TimerChanges",
    "TimerStatus",
    "install_timer",
    "own_command",
    "remove_timer",
    "timer_status",
]

log = logging.getLogger("sesam_tls")

SERVICE = "sesam-tls-renew.service"
TIMER = "sesam-tls-renew.timer"
CRON_FILE = "sesam-tls"  # cron ignores files in /etc/cron.d whose names contain a dot
DEFAULT_SYSTEMD_DIR = "/etc/systemd/system"
DEFAULT_CRON_DIR = "/etc/cron.d"
#: Twice a day, as Let's Encrypt asks; each machine then adds its own fixed
#: delay of up to 12 hours, so nodes do not all knock at midnight.
ON_CALENDAR = "*-*-* 00,12:00:00"
RANDOMIZED_DELAY_SEC = 43200
CRON_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: A renewal run's time limit, the same under systemd (TimeoutStartSec) and cron
#: (timeout(1)): a hung CA or Docker must not hold the node lock past it.
RUN_TIME_LIMIT = 3600
#: After the limit's SIGTERM, this long until SIGKILL (systemd's default TimeoutStopSec).
KILL_AFTER = 90
#: First line of every file we write: status recognises ours, remove deletes only ours.
MARK = "# Written by `sesam-tls timer install`; `sesam-tls timer remove` deletes it."

# flag, Node field, whether it is a host path (made absolute: the timer runs from /)
_FLAGS = (
    ("--ssl-dir", "ssl_dir", True),
    ("--container-ssl-dir", "container_ssl_dir", False),
    ("--agent-config", "agent_config", True),
    ("--container", "container", False),
    ("--state-dir", "state_dir", True),
    ("--docker-host", "docker_host", False),
)


def _under_root(node: Node, default: str) -> Path:
    return Path(node.root, default.lstrip("/")) if node.root else Path(default)


def systemd_dir(node: Node) -> Path:
    return _under_root(node, DEFAULT_SYSTEMD_DIR)


def cron_dir(node: Node) -> Path:
    return _under_root(node, DEFAULT_CRON_DIR)


def systemd_live(node: Node) -> bool:
    """May we drive systemctl? Only for the real host (no root) booted with systemd (sd_booted)."""
    return node.root is None and os.path.isdir("/run/systemd/system")


# ---- rendering (pure) -----------------------------------------------------------


def renew_command(command: Sequence[str], node: Node) -> list[str]:
    """``command renew`` plus the flags that rebuild ``node`` with an empty environment.

    ``--root`` when set; then each setting that differs from what that root
    (or no root) gives by default, so an explicit path next to ``--root`` is
    kept too.
    """
    if not command or not os.path.isabs(command[0]):
        raise UsageError(f"the renewal command must start with an absolute path, not {command[:1]}")
    argv = [*command, "renew"]
    if node.root is not None:
        argv += ["--root", os.path.abspath(node.root)]
    default = Node.from_settings(env={}, root=str(node.root) if node.root else None)
    for flag, name, host_path in _FLAGS:
        value, base = getattr(node, name), getattr(default, name)
        if value is None or str(value) == str(base):
            continue
        argv += [flag, os.path.abspath(value) if host_path else str(value)]
    return argv


def systemd_quote(word: str) -> str:
    """One ExecStart word, as systemd's parser will read it back.

    Double quotes with C-style escapes for ``\\`` and ``"``; ``%%`` and ``$$``
    because systemd expands specifiers and variables even inside quotes.
    A lone ``;`` is quoted so it is not taken as a command separator.
    """
    if any(ord(c) < 0x20 or c == "\x7f" for c in word):
        raise UsageError(f"refusing a control character in the renewal command: {word!r}")
    if word and all(c.isalnum() or c in "/._-+=:,@" for c in word):
        return word
    escaped = word.replace("%", "%%").replace("$", "$$")
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


#: The systemd credential that carries a recorded secret file into the unit (``LoadCredential=``).
EAB_CREDENTIAL = "eab-hmac"


def replayed_environment(record: Any) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """What the timer's run needs beside its command line, from the node record (None: nothing).

    The recorded proxy as environment variables; each recorded secret file as
    a systemd credential (name -> path); one line per secret the unattended
    run will not have (it came from an environment variable).
    """
    from .replay import missing_secrets

    if record is None:
        return {}, {}, []
    credentials = {}
    source = getattr(record.provider_settings, "eab_key_from", None)
    if source is not None and source.kind == "file":
        credentials[EAB_CREDENTIAL] = source.name
    return record.settings.proxy.environment, credentials, missing_secrets(record)


def _unit_value(text: str) -> str:
    """A value systemd reads back as is: specifiers doubled, quotes and backslashes escaped."""
    if any(ord(c) < 0x20 or c == "\x7f" for c in text):
        raise UsageError(f"refusing a control character in the renewal unit: {text!r}")
    return text.replace("%", "%%").replace("\\", "\\\\").replace('"', '\\"')


def render_service(argv: Sequence[str], *, environment: Mapping[str, str] = {},  # noqa: B006 - read only
                   credentials: Mapping[str, str] = {}) -> str:  # noqa: B006

    """A oneshot service. Hardened only where it cannot break the renewal.

    No ProtectSystem=/ProtectHome=: renew writes the ssl folder, the agent
    config's folder, the state folder, an optional ``--metrics-file``, and
    runs operator hooks that may write anywhere; a ``DOCKER_HOST=ssh://``
    needs ``~/.ssh``. No device or address-family limits: the Docker socket
    is an AF_UNIX socket under /run and the CA is on the network.
    """
    if "$" in argv[0]:
        # systemd reads "$$" as "$" in arguments but not in the command's path.
        raise UsageError(f"systemd cannot run a command whose path contains '$': {argv[0]}")
    return "\n".join(
        [
            MARK,
            "[Unit]",
            "Description=Renew the Sesam node's TLS certificate when it is due (sesam-tls)",
            "Wants=network-online.target",
            "After=network-online.target docker.service",
            "",
            "[Service]",
            "Type=oneshot",
            "ExecStart=" + " ".join(systemd_quote(w) for w in argv),
            *(f'Environment="{_unit_value(k)}={_unit_value(v)}"' for k, v in environment.items()),
            *(f"LoadCredential={_unit_value(k)}:{_unit_value(v)}" for k, v in credentials.items()),
            "# a hung CA or Docker must not block every later run",
            f"TimeoutStartSec={RUN_TIME_LIMIT // 3600}h",
            "PrivateTmp=yes",
            "NoNewPrivileges=yes",
            "ProtectKernelTunables=yes",
            "ProtectKernelModules=yes",
            "ProtectControlGroups=yes",
            "RestrictSUIDSGID=yes",
            "RestrictRealtime=yes",
            "LockPersonality=yes",
            "",
        ]
    )


def render_timer() -> str:
    """Twice a day; FixedRandomDelay keeps each machine's moment stable (systemd >= 247)."""
    return "\n".join(
        [
            MARK,
            "[Unit]",
            "Description=Check the Sesam node's TLS certificate twice a day (sesam-tls)",
            "",
            "[Timer]",
            f"OnCalendar={ON_CALENDAR}",
            f"RandomizedDelaySec={RANDOMIZED_DELAY_SEC}",
            "FixedRandomDelay=yes",
            "# a run missed while the machine was off happens at the next boot",
            "Persistent=true",
            "",
            "[Install]",
            "WantedBy=timers.target",
            "",
        ]
    )


def render_cron(argv: Sequence[str], *, minute: int, hour: int,
                environment: Mapping[str, str] = {}) -> str:  # noqa: B006 - read only
    """An /etc/cron.d entry at ``hour:minute`` and twelve hours later, logged to syslog.

    cron hands the line to /bin/sh after turning ``%`` into newlines, hence
    ``\\%``. A failure is logged with its exit status (the pipe would hide it).
    ``timeout`` (coreutils) gives a run the systemd unit's time limit; it exits 124 then.
    """
    if not (0 <= minute < 60 and 0 <= hour < 12):
        raise ValueError(f"cron time out of range: {hour}:{minute}")
    cmd = " ".join(shlex.quote(w) for w in argv).replace("%", "\\%")
    limited = f"timeout --kill-after={KILL_AFTER} {RUN_TIME_LIMIT} {cmd}"
    job = f'{{ {limited} || echo "sesam-tls renew failed with exit status $?"; }} 2>&1 | logger -t sesam-tls'
    # cron takes the rest of the line as the value, as is (no specifiers)
    env = [f"{k}={v}" for k, v in environment.items() if _unit_value(k + v)]
    return "\n".join(
        [MARK, "SHELL=/bin/sh", f"PATH={CRON_PATH}", *env, f"{minute} {hour},{hour + 12} * * * root {job}", ""]
    )


def _cron_time(text: str) -> Optional[tuple[int, int]]:
    """The (minute, hour) of a cron file we wrote, so a re-install keeps the node's moment."""
    for line in text.splitlines():
        fields = line.split(None, 5)
        if len(fields) == 6 and fields[5].startswith("root ") and fields[0].isdigit():
            hour = fields[1].split(",")[0]
            if hour.isdigit() and 0 <= int(fields[0]) < 60 and 0 <= int(hour) < 12:
                return int(fields[0]), int(hour)
    return None


def _ini_values(text: str, key: str) -> list[str]:
    return [line.partition("=")[2] for line in text.splitlines() if line.startswith(key + "=")]


# ---- effects ------------------------------------------------------------------------

#: Runs ``systemctl ARGS...`` and returns its stdout; raises SesamTLSError on failure.
Systemctl = Callable[[Sequence[str]], str]


@dataclass(frozen=True)
class Change:
    """What install/remove did to one flavour (``kind``: systemd or cron), and what is left for
    the operator to run (``to_run``: systemd was not driven)."""

    kind: str
    written: tuple[Path, ...] = ()
    unchanged: tuple[Path, ...] = ()
    removed: tuple[Path, ...] = ()
    ran: tuple[str, ...] = ()
    to_run: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "written": [str(p) for p in self.written],
                "unchanged": [str(p) for p in self.unchanged], "removed": [str(p) for p in self.removed],
                "ran": list(self.ran), "to_run": list(self.to_run), "notes": list(self.notes)}


@dataclass
class _Steps:
    """A :class:`Change` while it is being made."""

    kind: str
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    to_run: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def done(self) -> Change:
        return Change(self.kind, tuple(self.written), tuple(self.unchanged), tuple(self.removed), tuple(self.ran),
                      tuple(self.to_run), tuple(self.notes))


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = describe_oserror(exc) if isinstance(exc, OSError) else "not text"
        raise StorageError(f"cannot read {path}: {reason}") from exc


def _put(path: Path, text: str, change: _Steps) -> None:
    current = _read(path)
    if current == text:
        change.unchanged.append(path)
        return
    if current is not None and not current.startswith(MARK):
        raise UsageError(f"{path} exists and was not written by sesam-tls; move it away first")
    try:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {path.parent}: {describe_oserror(exc)}") from exc
    atomic_write(path, text.encode(), 0o644)
    log.info("wrote %s", path)
    change.written.append(path)


def _delete(path: Path, change: _Steps) -> None:
    current = _read(path)
    if current is None:
        return
    if not current.startswith(MARK):
        change.notes.append(f"left {path} alone: not written by sesam-tls")
        return
    try:
        path.unlink()
        fsync_dir(path.parent)
    except OSError as exc:
        raise StorageError(f"cannot remove {path}: {describe_oserror(exc)}") from exc
    log.info("removed %s", path)
    change.removed.append(path)


def _systemctl(systemctl: Optional[Systemctl], args: list[str], change: _Steps) -> None:
    line = "systemctl " + " ".join(args)
    if systemctl is None:
        change.to_run.append(line)
        return
    systemctl(args)
    log.info("ran %s", line)
    change.ran.append(line)


def install(
    node: Node,
    command: Sequence[str],
    *,
    cron: bool = False,
    systemctl: Optional[Systemctl] = None,
    randbelow: Callable[[int], int] = secrets.randbelow,
    environment: Mapping[str, str] = {},  # noqa: B006 - read only
    credentials: Mapping[str, str] = {},  # noqa: B006
) -> Change:
    """Write the units (or the cron entry); enable the timer when ``systemctl`` is given.

    Idempotent: identical files are not rewritten, and a cron entry keeps
    the minute and hour it was first given.
    """
    argv = renew_command(command, node)
    if cron:
        change = _Steps("cron")
        path = cron_dir(node) / CRON_FILE
        when = _cron_time(_read(path) or "") or (randbelow(60), randbelow(12))
        _put(path, render_cron(argv, minute=when[0], hour=when[1], environment=environment), change)
        if credentials:
            change.notes.append(f"cron has no credentials: the run reads {', '.join(credentials.values())} itself")
        if (systemd_dir(node) / TIMER).exists():
            change.notes.append(
                f"the systemd timer is installed too ({systemd_dir(node) / TIMER}); the lock keeps the runs apart"
            )
        return change.done()
    change = _Steps("systemd")
    folder = systemd_dir(node)
    _put(folder / SERVICE, render_service(argv, environment=environment, credentials=credentials), change)
    _put(folder / TIMER, render_timer(), change)
    if change.written or systemctl is None:
        _systemctl(systemctl, ["daemon-reload"], change)
    _systemctl(systemctl, ["enable", "--now", TIMER], change)
    if (cron_dir(node) / CRON_FILE).exists():
        change.notes.append(
            f"a cron entry is installed too ({cron_dir(node) / CRON_FILE}); the lock keeps the runs apart"
        )
    return change.done()


def _unlink_enablement(folder: Path, change: _Steps) -> None:
    """Without a live systemd, ``disable`` is this: drop our link in timers.target.wants."""
    link = folder / "timers.target.wants" / TIMER
    if link.is_symlink() and Path(os.readlink(link)).name == TIMER:
        try:
            link.unlink()
        except OSError as exc:
            raise StorageError(f"cannot remove {link}: {describe_oserror(exc)}") from exc
        log.info("removed %s", link)
        change.removed.append(link)


def remove(node: Node, *, systemctl: Optional[Systemctl] = None) -> list[Change]:
    """Delete whichever of our files exist (systemd and cron), disabling the timer first."""
    changes = []
    folder = systemd_dir(node)
    if (folder / TIMER).exists() or (folder / SERVICE).exists():
        change = _Steps("systemd")
        if systemctl is not None:
            if (folder / TIMER).exists():  # disable refuses a unit file that is gone
                _systemctl(systemctl, ["disable", "--now", TIMER], change)
        else:
            _unlink_enablement(folder, change)
            if (folder / TIMER).exists():
                # the link is gone (that is `disable`); a timer systemd already loaded still runs until stopped
                _systemctl(systemctl, ["stop", TIMER], change)
        _delete(folder / TIMER, change)
        _delete(folder / SERVICE, change)
        if change.removed:
            _systemctl(systemctl, ["daemon-reload"], change)
        changes.append(change.done())
    path = cron_dir(node) / CRON_FILE
    if path.exists():
        change = _Steps("cron")
        _delete(path, change)
        changes.append(change.done())
    return changes


@dataclass(frozen=True)
class SystemdTimer:
    """Our systemd units: there, complete, what they run, and (``loaded``: systemd was asked) its state."""

    installed: bool
    files: tuple[str, ...]
    #: a unit file of ours is there: ``installed``, or incomplete when only one is
    found: bool = False
    command: Optional[str] = None
    schedule: Optional[str] = None
    randomized_delay_sec: Optional[str] = None
    #: the files are what ``install`` with this node and this sesam-tls would write
    current: Optional[bool] = None
    loaded: bool = False
    next_run: Optional[str] = None
    last_run: Optional[str] = None
    active: Optional[str] = None
    enabled: Optional[str] = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"installed": self.installed, "files": list(self.files)}
        if self.found:
            out.update(command=self.command, schedule=self.schedule, randomized_delay_sec=self.randomized_delay_sec,
                       current=self.current)
            if self.loaded:
                out.update(next_run=self.next_run, last_run=self.last_run, active=self.active, enabled=self.enabled)
        return out


@dataclass(frozen=True)
class CronEntry:
    """Our cron file: there, and when it is ours and readable, its schedule and whether it is current."""

    installed: bool
    file: str
    #: None when there is none, or it is not ours or unreadable
    schedule: Optional[str] = None
    current: Optional[bool] = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"installed": self.installed, "file": self.file}
        if self.schedule is not None:
            out.update(schedule=self.schedule, current=self.current)
        return out


@dataclass(frozen=True)
class TimerStatus:
    """``timer status``: both flavours (either may be installed, or both) and the command they should run."""

    systemd: SystemdTimer
    cron: CronEntry
    renew_command: str

    def to_json(self) -> dict[str, Any]:
        return {"systemd": self.systemd.to_json(), "cron": self.cron.to_json(), "renew_command": self.renew_command}


def status(node: Node, command: Sequence[str], *, systemctl: Optional[Systemctl] = None,
           environment: Mapping[str, str] = {},  # noqa: B006 - read only
           credentials: Mapping[str, str] = {}) -> TimerStatus:  # noqa: B006
    """What is installed, its schedule and command, and whether it matches what install would write."""
    argv = renew_command(command, node)
    folder = systemd_dir(node)
    service, timer = _read(folder / SERVICE), _read(folder / TIMER)
    units = SystemdTimer(installed=service is not None and timer is not None,
                         files=(str(folder / SERVICE), str(folder / TIMER)))
    if service is not None or timer is not None:
        units = SystemdTimer(
            installed=units.installed,
            files=units.files,
            found=True,
            command=next(iter(_ini_values(service or "", "ExecStart")), None),
            schedule=next(iter(_ini_values(timer or "", "OnCalendar")), None),
            randomized_delay_sec=next(iter(_ini_values(timer or "", "RandomizedDelaySec")), None),
            current=(service == render_service(argv, environment=environment, credentials=credentials)
                     and timer == render_timer()),
        )
        if systemctl is not None:
            props = "NextElapseUSecRealtime,LastTriggerUSec,ActiveState,UnitFileState"
            out = systemctl(["show", TIMER, f"--property={props}"])
            shown = dict(line.partition("=")[::2] for line in out.splitlines() if "=" in line)
            units = dataclasses.replace(
                units,
                loaded=True,
                next_run=shown.get("NextElapseUSecRealtime") or None,
                last_run=shown.get("LastTriggerUSec") or None,
                active=shown.get("ActiveState"),
                enabled=shown.get("UnitFileState"),
            )
    path = cron_dir(node) / CRON_FILE
    text = _read(path)
    entry = CronEntry(installed=text is not None, file=str(path))
    when = _cron_time(text or "")
    if text is not None and when:
        minute, hour = when
        entry = CronEntry(
            installed=True,
            file=str(path),
            schedule=f"{hour:02d}:{minute:02d} and {hour + 12:02d}:{minute:02d} daily",
            current=text == render_cron(argv, minute=minute, hour=hour, environment=environment),
        )
    return TimerStatus(units, entry, shlex.join(argv))


# ---- the public operations: the choices made for the caller ----------------------------


@dataclass(frozen=True)
class TimerChanges:
    """What ``install_timer``/``remove_timer`` did (``changes``: none when there was nothing to remove).

    ``root`` is the node's scratch root when it has one: the files point at
    it and nothing was enabled or stopped (``to_run`` is for the live node).
    """

    action: str
    changes: tuple[Change, ...]
    root: Optional[str] = None
    #: systemctl was run (a live host booted with systemd); else what it would run is in ``to_run``
    systemd_live: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "changes": [c.to_json() for c in self.changes]}


def own_command() -> list[str]:
    """How we were started, as the units should start us: the sesam-tls script, else python -m.

    ``sys.executable`` is kept as is, not resolved: a venv's python is a
    symlink whose path is what selects the venv.
    """
    import sys

    if getattr(sys, "frozen", False):  # the one-file/one-folder executable: it is its own command
        return [sys.executable]
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "sesam-tls" and os.path.isfile(argv0) and os.access(argv0, os.X_OK):
        return [os.path.abspath(argv0)]
    return [sys.executable, "-m", "sesam_tls"]


def run_systemctl(args: Sequence[str]) -> str:
    """``systemctl ARGS...`` on this host: its stdout; a failure is one SesamTLSError line (its last stderr line)."""
    import subprocess

    from .errors import SesamTLSError

    try:
        done = subprocess.run(["systemctl", *args], check=False, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SesamTLSError(f"systemctl {' '.join(args)}: {exc}") from exc
    if done.returncode != 0:
        why = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise SesamTLSError(f"systemctl {' '.join(args)}: {why[0]}")
    return done.stdout


def _live_systemctl(node: Node) -> Optional[Systemctl]:
    return run_systemctl if systemd_live(node) else None


def _replayed(node: Node) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """:func:`replayed_environment` of the node's record; an unreadable record gives nothing
    (``renew`` says why at its first run)."""
    from .errors import SesamTLSError
    from .state import load_record

    try:
        record = load_record(node.metadata_path)
    except SesamTLSError:
        record = None
    return replayed_environment(record)


def install_timer(node: Optional[Node] = None, *, cron: bool = False,
                  command: Optional[Sequence[str]] = None) -> TimerChanges:
    """Install the renewal timer: systemd units (enabled when this is a live systemd host), or a cron entry.

    ``command`` is what runs sesam-tls (default: how this process was
    started, :func:`own_command`). The units carry the node as flags and what
    the record needs beside them (its proxy, its secret files as systemd
    credentials); a secret the unattended run will not have is one note.
    """
    node = node or Node.from_settings()
    environment, credentials, missing = _replayed(node)
    change = install(node, command or own_command(), cron=cron, systemctl=_live_systemctl(node),
                     environment=environment, credentials=credentials)
    change = dataclasses.replace(change, notes=change.notes + tuple(missing))
    return TimerChanges("install", (change,), _root(node), systemd_live(node))


def remove_timer(node: Optional[Node] = None) -> TimerChanges:
    """Disable and delete our units and cron entry, whichever are there; files not ours are left alone."""
    node = node or Node.from_settings()
    return TimerChanges("remove", tuple(remove(node, systemctl=_live_systemctl(node))), _root(node),
                        systemd_live(node))


def timer_status(node: Optional[Node] = None, *, command: Optional[Sequence[str]] = None) -> TimerStatus:
    """What is installed, its schedule, whether it is what :func:`install_timer` would write now,
    and on a live systemd host its next and last run."""
    node = node or Node.from_settings()
    environment, credentials, _ = _replayed(node)
    return status(node, command or own_command(), systemctl=_live_systemctl(node), environment=environment,
                  credentials=credentials)


def _root(node: Node) -> Optional[str]:
    return str(node.root) if node.root else None
