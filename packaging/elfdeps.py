"""What the frozen executable needs from the system it runs on.

    python packaging/elfdeps.py libs  dist/sesam-tls     host libraries it loads (ldd), one per line
    python packaging/elfdeps.py glibc dist/sesam-tls     highest GLIBC_ symbol version it needs, and where

The argument is the one-file executable or the one-folder build. For the
one-file executable the ELF files inside its archive (libpython, extension
modules, bundled libraries) are extracted to a temporary folder first: they
are what the executable loads after it unpacks itself at start-up.
Needs PyInstaller (for the archive reader), `ldd` and `objdump`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ELF_MAGIC = b"\x7fELF"
LIB_DIRS_KEY = "LD_LIBRARY_PATH"


def _is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == ELF_MAGIC
    except OSError:
        return False


def _extract_onefile(exe: Path, into: Path) -> list[Path]:
    from PyInstaller.archive.readers import CArchiveReader

    reader = CArchiveReader(str(exe))
    out = []
    for name, entry in reader.toc.items():
        typecode = entry[-1]
        if typecode not in ("b", "x"):  # binaries and data files; not modules, scripts, the PYZ
            continue
        data = reader.extract(name)
        if not data.startswith(ELF_MAGIC):
            continue
        dest = into / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        dest.chmod(0o755)
        out.append(dest)
    return out


def bundle_elves(target: Path, scratch: Path) -> tuple[list[Path], Path]:
    """(every ELF file of the build, the folder the bundled ones live in)."""
    if target.is_dir():
        elves = [p for p in sorted(target.rglob("*")) if p.is_file() and not p.is_symlink() and _is_elf(p)]
        return elves, target
    return [target, *_extract_onefile(target, scratch)], scratch


def host_libs(target: Path) -> list[str]:
    """Absolute paths of the system libraries the build loads (not bundled ones),
    the dynamic loader included."""
    with tempfile.TemporaryDirectory(prefix="sesam-tls-elfdeps-") as tmp:
        scratch = Path(tmp)
        elves, bundle = bundle_elves(target, scratch)
        lib_dirs = sorted({str(p.parent) for p in elves if p != target})
        env = dict(os.environ, **{LIB_DIRS_KEY: ":".join(lib_dirs)})
        found: set[str] = set()
        bundle_root = str(bundle.resolve())
        for elf in elves:
            # The bootloader itself starts before anything is unpacked: its own
            # needs come from the system library path alone.
            top = elf == target or elf.parent == target
            proc = subprocess.run(["ldd", str(elf)], capture_output=True, text=True,
                                  env=os.environ if top else env)
            for line in proc.stdout.splitlines():
                if "not found" in line:
                    raise SystemExit(f"{elf.name}: {line.strip()}")
                m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
                if not m:
                    continue
                path = m.group(1)
                if os.path.realpath(path).startswith(bundle_root + os.sep):
                    continue
                found.add(path)
        return sorted(found)


def glibc_needs(target: Path) -> list[tuple[tuple[int, ...], str, str]]:
    """[(version tuple, 'GLIBC_x.y', file name)] for each ELF's highest needed GLIBC_ version."""
    out = []
    with tempfile.TemporaryDirectory(prefix="sesam-tls-elfdeps-") as tmp:
        elves, bundle = bundle_elves(target, Path(tmp))
        for elf in elves:
            text = subprocess.run(["objdump", "-T", str(elf)], capture_output=True, text=True).stdout
            versions = {
                tuple(int(x) for x in v.split("."))
                for line in text.splitlines() if "*UND*" in line
                for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", line)
            }
            if versions:
                top = max(versions)
                name = elf.name if elf == target else str(elf.relative_to(bundle))
                out.append((top, "GLIBC_" + ".".join(map(str, top)), name))
    return sorted(out, reverse=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("libs", "glibc"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    target = Path(argv[1])
    if argv[0] == "libs":
        print("\n".join(host_libs(target)))
        return 0
    needs = glibc_needs(target)
    if not needs:
        print("no GLIBC_ symbol versions needed")
        return 0
    print(f"needs glibc >= {'.'.join(map(str, needs[0][0]))}")
    for _, version, name in needs[:8]:
        print(f"  {version:<12} {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
