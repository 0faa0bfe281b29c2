#!/usr/bin/env bash
# Install what the integration testbed needs (idempotent, run as root):
#   - Debian packages pebble, nginx, docker.io, systemd, knot, knot-dnsutils
#     (only those missing; systemd for systemd-analyze verify: nothing starts
#     without it as PID 1; knot is the DNS server of the DNS-01 tests)
#   - the repo's .venv with `pip install -e '.[test]'`
# No service is left running: Debian's nginx/docker services are kept from
# starting (policy-rc.d), and any host nginx the package started is stopped.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[setup] %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    log "must run as root (apt-get install)"
    exit 1
fi

# ---- Debian packages --------------------------------------------------------
# package -> a binary that proves it is installed
declare -A PKG_BIN=(
    [pebble]=/usr/bin/pebble
    [nginx]=/usr/sbin/nginx
    [docker.io]=/usr/sbin/dockerd
    [systemd]=/usr/bin/systemd-analyze
    [knot]=/usr/sbin/knotd
    [knot-dnsutils]=/usr/bin/knsupdate
)
missing=()
for pkg in pebble nginx docker.io systemd knot knot-dnsutils; do
    if [ -x "${PKG_BIN[$pkg]}" ] && dpkg -s "$pkg" >/dev/null 2>&1; then
        continue
    fi
    missing+=("$pkg")
done

if [ "${#missing[@]}" -gt 0 ]; then
    log "installing: ${missing[*]}"
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [ ! -e "$policy" ]; then
        # Keep package postinst scripts from starting services (nginx on :80,
        # the system dockerd with its bridge network, knot on :53).
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        created_policy=1
    fi
    cleanup_policy() { if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi; }
    trap cleanup_policy EXIT
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck source=dpkg-lock.sh
    . "$REPO/testbed/dpkg-lock.sh"
    wait_dpkg_lock
    # apt waits for the lock by itself too, should another run take it between our check and its start
    lock_wait=(-o "DPkg::Lock::Timeout=${SESAM_DPKG_LOCK_TIMEOUT:-600}")
    apt-get "${lock_wait[@]}" update -qq
    apt-get "${lock_wait[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    cleanup_policy
    trap - EXIT
else
    log "debian packages present: pebble nginx docker.io systemd knot knot-dnsutils"
fi

# A host nginx must not be running (it would hold port 80). Stop only the one
# the package may have started, by its pid file.
if [ -s /run/nginx.pid ]; then
    pid="$(cat /run/nginx.pid)"
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'nginx'; then
        log "stopping host nginx started by the package (pid $pid)"
        kill "$pid" || true
        for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    fi
fi

for bin in /usr/bin/pebble /usr/bin/pebble-challtestsrv /usr/sbin/nginx /usr/sbin/dockerd /usr/bin/systemd-analyze \
        /usr/sbin/knotd /usr/bin/kdig /usr/bin/knsupdate; do
    if [ ! -x "$bin" ]; then
        log "expected $bin after install, not found"
        exit 1
    fi
done

# ---- Python venv --------------------------------------------------------------
VENV="$REPO/.venv"
if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
fi
# Re-install only when pyproject.toml changed since the last install.
stamp="$VENV/.sesam-tls-installed"
if [ ! -f "$stamp" ] || [ "$REPO/pyproject.toml" -nt "$stamp" ] \
        || ! "$VENV/bin/python" -c 'import pytest, hypothesis, docker, acme, josepy, cryptography, requests' 2>/dev/null; then
    log "pip install -e '.[test]'"
    # (this machine's pip config names local wheel folders that may be absent:
    # drop pip's warnings about those, keep everything else)
    "$VENV/bin/python" -m pip install -q -e "$REPO[test]" \
        2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
    touch "$stamp"
else
    log "venv up to date"
fi
log "done"
