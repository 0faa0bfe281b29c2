"""What a command imports, summed by top-level package (``python -X importtime``), for the bench report.

``import_table(cmd, env)`` runs ``cmd`` (a console script or ``python -m``) with
``PYTHONPROFILEIMPORTTIME=1`` and parses the ``import time:`` lines it writes to
stderr: self time in microseconds and the module's dotted name; each module's self
time is added to its top-level package. Returns {package: (modules, milliseconds)}
and the total.
"""

from __future__ import annotations

import collections
import os
import subprocess
from typing import Optional


def parse_importtime(stderr: str) -> tuple[dict[str, tuple[int, float]], float, int]:
    """({top-level package: (modules, ms)}, total ms, modules) from ``-X importtime`` output (pure)."""
    per: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        parts = line.split(":", 1)[1].split("|")
        if len(parts) != 3:
            continue
        try:
            us = int(parts[0])
        except ValueError:
            continue
        name = parts[2]
        top = name.strip().split(".")[0]
        per[top][0] += 1
        per[top][1] += us / 1000.0
    table = {k: (int(v[0]), v[1]) for k, v in per.items()}
    return table, sum(v[1] for v in table.values()), sum(v[0] for v in table.values())


def import_table(cmd: list[str], env: Optional[dict[str, str]] = None,
                 timeout: float = 120) -> tuple[dict[str, tuple[int, float]], float, int, int]:
    """Run ``cmd`` with import profiling on; (table, total ms, modules, exit code)."""
    e = dict(os.environ if env is None else env)
    e["PYTHONPROFILEIMPORTTIME"] = "1"
    p = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=timeout)
    table, total, modules = parse_importtime(p.stderr)
    return table, total, modules, p.returncode


def top(table: dict[str, tuple[int, float]], n: int = 8) -> str:
    """The ``n`` packages that cost most, as 'pkg 12.3 ms (40), ...'."""
    rows = sorted(table.items(), key=lambda kv: -kv[1][1])[:n]
    return ", ".join(f"{k} {ms:.0f} ms ({count})" for k, (count, ms) in rows)
