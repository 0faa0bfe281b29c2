"""Small helpers shared by the unit tests (no testbed needed)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

EXAMPLE_CONFIG = Path(__file__).resolve().parents[1] / "testbed" / "sesam-agent-config.example.json"


def make_root(tmp: Path) -> Path:
    """A scratch node: the example agent config of Sesam's guide, nothing else."""
    root = tmp / "root"
    (root / "etc/sesam-agent").mkdir(parents=True)
    shutil.copy(EXAMPLE_CONFIG, root / "etc/sesam-agent/config.json")
    return root


def input_writer(folder: Path):
    """write(name, data, mode=None) -> path: the operator's input files, outside the node root."""
    folder.mkdir(parents=True, exist_ok=True)

    def write(name: str, data: bytes, mode: int | None = None) -> str:
        (folder / name).write_bytes(data)
        if mode is not None:
            os.chmod(folder / name, mode)
        return str(folder / name)

    return write


def run_import(capsys, root: Path, *args: str) -> tuple[int, str, str]:
    """``sesam-tls import ARGS --root ROOT --no-restart`` in-process: (exit code, stdout, stderr)."""
    from sesam_tls.cli import main

    code = main(["import", *args, "--root", str(root), "--no-restart"])
    out, err = capsys.readouterr()
    return code, out, err


def seed_own_pair(root: Path, name: str):
    """The operator's own self-signed pair as plain files in the node's ssl folder (the Sesam guide's way)."""
    from sesam_tls import CertRequest, SelfSigned

    ssl = root / "sesam/nginx/conf/ssl"
    ssl.mkdir(parents=True)
    own = SelfSigned().issue(CertRequest.build([name]))
    (ssl / "fullchain.pem").write_bytes(own.fullchain_pem())
    (ssl / "privkey.pem").write_bytes(own.key_pem())
    return ssl, own


def tree_digest(root: Path) -> dict[str, str]:
    """Every path under root with its type, mode and content hash: 'no change on disk'."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = os.lstat(p)
            if p.is_symlink():
                what = "link:" + os.readlink(p)
            elif p.is_dir():
                what = "dir"
            else:
                what = hashlib.sha256(p.read_bytes()).hexdigest()
            out[str(p.relative_to(root))] = f"{oct(st.st_mode)} {what}"
    return out


@contextlib.contextmanager
def read_only_mount(path: Path) -> Iterator[Path]:
    """Make ``path`` a read-only tmpfs (as root), as a full or read-only disk would be."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


class FakeClock:
    """A monotonic clock that moves only when slept on; it remembers each sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.slept.append(seconds)
        self.now += seconds


@contextlib.contextmanager
def serve_folder(folder: Path, port: int) -> Iterator[None]:
    """An existing web server on 127.0.0.1:``port`` serving ``folder`` (what ``--webroot`` writes into)."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
