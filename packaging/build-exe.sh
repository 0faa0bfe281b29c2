#!/usr/bin/env bash
# Build the self-contained sesam-tls executable with PyInstaller.
#   packaging/build-exe.sh onefile   -> dist/sesam-tls          (make dist)
#   packaging/build-exe.sh onedir    -> dist/sesam-tls-dir/     (make dist-dir)
# PyInstaller is a build dependency only (extra `build` in pyproject.toml); it
# is installed into the repo's .venv when missing. PyInstaller freezes the
# Python running it: the build needs a Python built with --enable-shared
# (Debian's, pyenv's default builds) and 3.10 or newer.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
log() { printf '[dist] %s\n' "$*" >&2; }

MODE="${1:-onefile}"
VENV="$REPO/.venv"
PY="$VENV/bin/python"

# PyInstaller reads and strips the binaries it bundles with binutils; ldd is glibc's.
if ! command -v objdump >/dev/null || ! command -v strip >/dev/null; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        log "installing binutils (objdump, strip)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends binutils >/dev/null
    else
        log "PyInstaller needs objdump and strip: install binutils"; exit 1
    fi
fi

if [ ! -x "$PY" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
fi
if ! "$PY" -c 'import PyInstaller, sesam_tls, acme, josepy, docker, requests, cryptography' 2>/dev/null; then
    log "pip install -e '.[build]'"
    # (this machine's pip config names local wheel folders that may be absent)
    "$PY" -m pip install -q -e "$REPO[build]" \
        2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
fi

case "$MODE" in
    onefile) export SESAM_TLS_ONEDIR=0; out="dist/sesam-tls"; tree="dist/sesam-tls" ;;
    onedir) export SESAM_TLS_ONEDIR=1; out="dist/sesam-tls-dir/sesam-tls"; tree="dist/sesam-tls-dir" ;;
    *) log "usage: $0 onefile|onedir"; exit 2 ;;
esac

# Separate work folders keep each mode's analysis cache (a rebuild after a
# source change then takes a fraction of a clean build).
"$PY" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$REPO/dist" --workpath "$REPO/build/pyinstaller-$MODE" \
    packaging/sesam-tls.spec
touch "$out"

version="$("$out" --version)"
log "built $tree ($version, $(du -sh "$tree" | cut -f1))"
log "$("$PY" packaging/elfdeps.py glibc "$tree" | head -n1)"
