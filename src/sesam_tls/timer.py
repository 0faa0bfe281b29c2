"""The renewal timer: systemd units or a cron entry that run ``sesam-tls renew``.

Rendering is pure (node + command -> file text); the few effects (write,
delete, ``systemctl``) are at the bottom. The folders are under the node's
``root`` like every other path, so a rehearsal never touches the host, and
``systemctl`` is only ever run by a caller that passes a runner: the CLI does
that when no ``--root`` is set and systemd is the running init.

The units carry the node's settings as explicit flags, not environment
variables: the timer must keep working after the shell that installed it is
gone, and ``Node.from_settings`` would otherwise see a different environment.
"""

from __future__ import annotations

import logging
import os
import secrets
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

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


def render_service(argv: Sequence[str]) -> str:
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


def render_cron(argv: Sequence[str], *, minute: int, hour: int) -> str:
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
    return "\n".join(
        [MARK, "SHELL=/bin/sh", f"PATH={CRON_PATH}", f"{minute} {hour},{hour + 12} * * * root {job}", ""]
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


@dataclass
class Change:
    """What install/remove did, and what is left for the operator to run."""

    kind: str
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    to_run: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = describe_oserror(exc) if isinstance(exc, OSError) else "not text"
        raise StorageError(f"cannot read {path}: {reason}") from exc


def _put(path: Path, text: str, change: Change) -> None:
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


def _delete(path: Path, change: Change) -> None:
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


def _systemctl(systemctl: Optional[Systemctl], args: list[str], change: Change) -> None:
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
) -> Change:
    """Write the units (or the cron entry); enable the timer when ``systemctl`` is given.

    Idempotent: identical files are not rewritten, and a cron entry keeps
    the minute and hour it was first given.
    """
    argv = renew_command(command, node)
    if cron:
        change = Change("cron")
        path = cron_dir(node) / CRON_FILE
        when = _cron_time(_read(path) or "") or (randbelow(60), randbelow(12))
        _put(path, render_cron(argv, minute=when[0], hour=when[1]), change)
        if (systemd_dir(node) / TIMER).exists():
            change.notes.append(
                f"the systemd timer is installed too ({systemd_dir(node) / TIMER}); the lock keeps the runs apart"
            )
        return change
    change = Change("systemd")
    folder = systemd_dir(node)
    _put(folder / SERVICE, render_service(argv), change)
    _put(folder / TIMER, render_timer(), change)
    if change.written or systemctl is None:
        _systemctl(systemctl, ["daemon-reload"], change)
    _systemctl(systemctl, ["enable", "--now", TIMER], change)
    if (cron_dir(node) / CRON_FILE).exists():
        change.notes.append(
            f"a cron entry is installed too ({cron_dir(node) / CRON_FILE}); the lock keeps the runs apart"
        )
    return change


def _unlink_enablement(folder: Path, change: Change) -> None:
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
        change = Change("systemd")
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
        changes.append(change)
    path = cron_dir(node) / CRON_FILE
    if path.exists():
        change = Change("cron")
        _delete(path, change)
        changes.append(change)
    return changes


def status(node: Node, command: Sequence[str], *, systemctl: Optional[Systemctl] = None) -> dict[str, object]:
    """What is installed, its schedule and command, and whether it matches what install would write."""
    argv = renew_command(command, node)
    folder = systemd_dir(node)
    service, timer = _read(folder / SERVICE), _read(folder / TIMER)
    units: dict[str, object] = {
        "installed": service is not None and timer is not None,
        "files": [str(folder / SERVICE), str(folder / TIMER)],
    }
    if service is not None or timer is not None:
        units["command"] = next(iter(_ini_values(service or "", "ExecStart")), None)
        units["schedule"] = next(iter(_ini_values(timer or "", "OnCalendar")), None)
        units["randomized_delay_sec"] = next(iter(_ini_values(timer or "", "RandomizedDelaySec")), None)
        units["current"] = service == render_service(argv) and timer == render_timer()
        if systemctl is not None:
            props = "NextElapseUSecRealtime,LastTriggerUSec,ActiveState,UnitFileState"
            out = systemctl(["show", TIMER, f"--property={props}"])
            shown = dict(line.partition("=")[::2] for line in out.splitlines() if "=" in line)
            units.update(
                next_run=shown.get("NextElapseUSecRealtime") or None,
                last_run=shown.get("LastTriggerUSec") or None,
                active=shown.get("ActiveState"),
                enabled=shown.get("UnitFileState"),
            )
    path = cron_dir(node) / CRON_FILE
    text = _read(path)
    entry: dict[str, object] = {"installed": text is not None, "file": str(path)}
    when = _cron_time(text or "")
    if text is not None and when:
        minute, hour = when
        entry["schedule"] = f"{hour:02d}:{minute:02d} and {hour + 12:02d}:{minute:02d} daily"
        entry["current"] = text == render_cron(argv, minute=minute, hour=hour)
    return {"systemd": units, "cron": entry, "renew_command": shlex.join(argv)}
