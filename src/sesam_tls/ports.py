"""Who holds a TCP port: /proc/net/tcp{,6} and /proc/*/fd, and whether it is the nginx container.

Used to decide between the HTTP-01 strategies and to name the holder in an
error; read-only, no network traffic.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DockerError

__all__ = ["Holder", "container_holds_port", "describe_holders", "port_holders"]

log = logging.getLogger("sesam_tls")


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.command})"


def port_holders(port: int, proc: Path = Path("/proc")) -> list[Holder]:
    """Processes with a listening TCP socket on ``port``, from /proc/net/tcp{,6} and /proc/*/fd.

    Empty when the holder is invisible (another PID namespace, no permission).
    """
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    if not inodes:
        return []
    wanted = {f"socket:[{inode}]" for inode in inodes}
    found: list[Holder] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        if _socket_links(entry / "fd") & wanted:
            found.append(Holder(int(entry.name), _command(entry)))
    return sorted(found, key=lambda h: h.pid)


def _socket_links(fd_dir: Path) -> set[str]:
    """Targets of a process's fds; one fd closing while we look must not hide the others."""
    links: set[str] = set()
    try:
        fds = list(fd_dir.iterdir())
    except OSError:
        return links
    for fd in fds:
        try:
            links.add(os.readlink(fd))
        except OSError:
            continue
    return links


def _command(entry: Path) -> str:
    try:
        argv = (entry / "cmdline").read_bytes().split(b"\0")
        text = " ".join(a.decode("utf-8", "replace") for a in argv if a)
    except OSError:
        text = ""
    return text[:120] or "?"


def _ancestors(pid: int, proc: Path = Path("/proc")) -> set[int]:
    seen: set[int] = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            stat = (proc / str(pid) / "stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return seen


def container_holds_port(nginx: Any, port: int, holders: list[Holder]) -> bool:
    """Whether the managed container holds ``port``: published (docker-proxy, DNAT) or, with
    host networking, a process of the container listening on it."""
    try:
        attrs = nginx.inspect()
    except DockerError as exc:
        log.debug("http01: cannot inspect container %s: %s", nginx.name, exc)
        return False
    state = attrs.get("State") or {}
    if state.get("Status") != "running":
        return False
    ports = ((attrs.get("NetworkSettings") or {}).get("Ports")) or {}
    for bindings in ports.values():
        for binding in bindings or []:
            if str(binding.get("HostPort")) == str(port):
                return True
    root_pid = int(state.get("Pid") or 0)
    container_id = str(attrs.get("Id") or "")
    for holder in holders:
        if root_pid and root_pid in _ancestors(holder.pid):
            return True
        if container_id and _in_cgroup(holder.pid, container_id):
            return True
    return False


def _in_cgroup(pid: int, container_id: str) -> bool:
    try:
        return container_id in Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False


def describe_holders(holders: list[Holder]) -> str:
    if not holders:
        return "a process this user cannot see (another container or namespace?)"
    return ", ".join(str(h) for h in holders)
