"""The nginx container, driven through the Docker Engine API: restart, reload, test, wait.

``docker`` is imported lazily: verbs that never touch the container do not
pay for it.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Optional

from .deadline import Deadline, poll
from .errors import DockerError, one_line

__all__ = ["NginxContainer"]

log = logging.getLogger("sesam_tls")

#: How long a running container whose processes cannot be listed must stay up to count as ready.
UNLISTED_GRACE = 2.0


class NginxContainer:
    def __init__(self, name: str, docker_host: Optional[str] = None, *, timeout: float = 30.0) -> None:
        self.name = name
        self.docker_host = docker_host
        self.timeout = timeout
        self._client: Any = None

    # connection -------------------------------------------------------------------
    @property
    def host_label(self) -> str:
        import os

        return self.docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    def _docker(self) -> Any:
        if self._client is None:
            import docker

            try:
                if self.docker_host:
                    client = docker.DockerClient(base_url=self.docker_host, timeout=int(self.timeout))
                else:
                    client = docker.from_env(timeout=int(self.timeout))
                client.ping()
            except Exception as exc:  # docker raises many kinds; all mean "not reachable"
                raise DockerError(
                    f"cannot reach the Docker engine at {self.host_label} "
                    f"({one_line(exc, 300)}); is dockerd running? (--docker-host / DOCKER_HOST)"
                ) from exc
            self._client = client
        return self._client

    def _container(self) -> Any:
        import docker.errors

        try:
            return self._docker().containers.get(self.name)
        except docker.errors.NotFound:
            raise DockerError(
                f"no container named {self.name!r} on the Docker engine at {self.host_label} "
                "(--container names another)"
            ) from None
        except DockerError:
            raise
        except Exception as exc:
            raise DockerError(f"cannot inspect container {self.name!r} at {self.host_label}: {one_line(exc, 300)}") from exc

    # queries ----------------------------------------------------------------------
    def bind_mounts(self) -> list[tuple[str, str, bool]]:
        """The container's bind mounts: ``(host folder, folder in the container, writable)``."""
        mounts = self._container().attrs.get("Mounts") or []
        return [(str(m.get("Source") or ""), str(m.get("Destination") or ""), bool(m.get("RW")))
                for m in mounts if m.get("Type") == "bind" and m.get("Source") and m.get("Destination")]

    def check(self) -> str:
        """Raise DockerError unless the engine answers and the container exists; return its state."""
        return self._container().status

    def is_running(self) -> bool:
        return self._container().status == "running"

    def inspect(self) -> dict[str, Any]:
        """The engine's inspection of the container (``docker inspect``): its state, pid, ports."""
        return dict(self._container().attrs)

    def _workers(self, container: Any) -> Optional[set[str]]:
        """PIDs of nginx workers that accept connections, or None when they cannot be listed.

        A worker told to finish retitles itself "worker process is shutting
        down" and has closed its listeners: it no longer counts.
        """
        try:
            top = container.top(ps_args="-o pid,args")
        except Exception:
            return None
        titles = top.get("Titles") or []
        try:
            pid_i, args_i = titles.index("PID"), titles.index("COMMAND")
        except ValueError:
            pid_i, args_i = 0, len(titles) - 1
        return {
            p[pid_i]
            for p in top.get("Processes") or []
            if "worker process" in p[args_i] and "shutting down" not in p[args_i]
        }

    # actions ----------------------------------------------------------------------
    def exec(self, *cmd: str) -> tuple[int, str]:
        container = self._container()
        try:
            result = container.exec_run(list(cmd), demux=False)
        except Exception as exc:
            raise DockerError(f"cannot run {' '.join(cmd)!r} in container {self.name!r}: {one_line(exc, 300)}") from exc
        output = (result.output or b"").decode("utf-8", "replace").strip()
        return result.exit_code, output

    def test_config(self) -> None:
        """``nginx -t`` inside the container: config and certificate pair load."""
        code, output = self.exec("nginx", "-t")
        if code != 0:
            raise DockerError(f"nginx -t failed in container {self.name!r}: {_last_line(output)}")

    def test_pair(self, config: str) -> None:
        """``nginx -t -c CONFIG`` inside the container: a config of the rehearsal's own that loads
        only a copy of the new pair, so this nginx (and its OpenSSL) is asked whether it takes
        that pair while the live config, the live pair and the running nginx are left alone."""
        code, output = self.exec("nginx", "-t", "-q", "-c", config)
        if code != 0:
            raise DockerError(f"nginx -t refused the new pair in container {self.name!r}: {_last_line(output)}")

    def reload(self) -> None:
        """``nginx -s reload`` and wait until new workers run the new configuration.

        nginx answers a reload signal with exit 0 even when the new config
        fails to load (the master then keeps the old workers), so the proof
        is new worker processes, not the exit code.
        """
        container = self._container()
        before = self._workers(container)
        code, output = self.exec("nginx", "-s", "reload")
        if code != 0:
            raise DockerError(f"nginx -s reload failed in container {self.name!r}: {_last_line(output)}")
        if before is None:
            return
        seconds = min(self.timeout, 10.0)
        deadline = Deadline(seconds, "the reload", error=DockerError,
                            message=f"nginx in container {self.name!r} did not start new workers after reload")

        def new_workers() -> tuple[bool, None, None]:
            now = self._workers(container)
            return bool(now and not now & before), None, None  # only new workers accept; old ones drain

        poll(new_workers, deadline, "reloading", first=0, growth=2, cap=0.2)

    def restart(self) -> None:
        container = self._container()
        try:
            container.restart(timeout=10)
        except Exception as exc:
            raise DockerError(f"cannot restart container {self.name!r}: {one_line(exc, 300)}") from exc
        self.wait_ready(container)

    def stop(self) -> None:
        container = self._container()
        try:
            container.stop(timeout=10)
        except Exception as exc:
            raise DockerError(f"cannot stop container {self.name!r}: {one_line(exc, 300)}") from exc

    def start(self) -> None:
        container = self._container()
        try:
            container.start()
        except Exception as exc:
            raise DockerError(f"cannot start container {self.name!r}: {one_line(exc, 300)}") from exc
        self.wait_ready(container)

    def wait_ready(self, container: Any = None) -> None:
        """Wait until nginx runs workers (it loaded config and certificates) or the container died."""
        container = container or self._container()
        deadline = Deadline(self.timeout, "the start", error=DockerError,
                            message=f"nginx in container {self.name!r} did not come up within {self.timeout:.0f} s")
        unlisted_since: list[float] = []

        def ready() -> tuple[bool, None, None]:
            try:
                container.reload()
            except Exception as exc:
                raise DockerError(f"lost container {self.name!r}: {one_line(exc, 300)}") from exc
            state = container.attrs.get("State", {})
            if state.get("Status") in ("exited", "dead") or (
                state.get("Status") != "running" and state.get("ExitCode")
            ):
                raise DockerError(
                    f"nginx in container {self.name!r} exited (code {state.get('ExitCode')}): "
                    f"{self._log_tail(container)}"
                )
            if state.get("Status") != "running":
                return False, None, None
            workers = self._workers(container)
            if workers:
                return True, None, None
            # The processes cannot be listed (a dying container, or no `ps`
            # for the engine): only a container that stays up a while counts.
            if workers is None:
                unlisted_since[:] = unlisted_since or [time.monotonic()]
                return time.monotonic() - unlisted_since[0] >= UNLISTED_GRACE, None, None
            unlisted_since.clear()
            return False, None, None

        poll(ready, deadline, "waiting for nginx", first=0, growth=2, cap=0.2)

    def _log_tail(self, container: Any) -> str:
        try:
            logs = container.logs(tail=5).decode("utf-8", "replace")
        except Exception:
            return "no log"
        return _last_line(logs)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if "[emerg]" in line or "error" in line.lower():
            return line
    return lines[-1] if lines else "no output"
