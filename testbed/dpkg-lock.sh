#!/usr/bin/env bash
# Wait (bounded) until no other apt-get/dpkg holds the dpkg lock, saying what
# we wait for: on a new cloud machine's first boot, unattended-upgrades or
# cloud-init often holds it for a minute or two.
#   testbed/dpkg-lock.sh wait      (setup.sh sources this file and calls wait_dpkg_lock)
# Env: SESAM_DPKG_LOCK_TIMEOUT (seconds, default 600),
#      SESAM_DPKG_LOCK_FILES (default /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock).
# The locks are fcntl (POSIX) locks; python3 tests them without taking them for long.

# dpkg_lock_holder FILE: the pid holding FILE's lock ("" when free, "?" when held by an unknown pid)
dpkg_lock_holder() {
    python3 - "$1" <<'PY'
import fcntl, os, sys
path = sys.argv[1]
try:
    fd = os.open(path, os.O_RDWR)
except OSError:
    sys.exit(0)  # no lock file: nothing holds it
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    inode = os.fstat(fd).st_ino
    holder = "?"
    with open("/proc/locks") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 5 and parts[1] == "POSIX" and parts[5].rsplit(":", 1)[-1] == str(inode):
                holder = parts[4]
                break
    print(holder)
else:
    fcntl.lockf(fd, fcntl.LOCK_UN)
PY
}

wait_dpkg_lock() {
    local timeout="${SESAM_DPKG_LOCK_TIMEOUT:-600}" files="${SESAM_DPKG_LOCK_FILES:-/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock}"
    local t0=$SECONDS said="" f pid what
    while :; do
        pid=""
        for f in $files; do
            pid="$(dpkg_lock_holder "$f")"
            [ -n "$pid" ] && break
        done
        [ -z "$pid" ] && { [ -n "$said" ] && printf '[setup] the dpkg lock is free after %ss\n' "$((SECONDS - t0))" >&2; return 0; }
        if [ -z "$said" ]; then
            what="pid $pid"
            [ -r "/proc/$pid/cmdline" ] && what="pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-80)"
            printf '[setup] waiting up to %ss for the dpkg lock %s, held by another package manager (%s)\n' \
                "$timeout" "$f" "$what" >&2
            said=1
        fi
        if (( SECONDS - t0 >= timeout )); then
            printf '[setup] ERROR: the dpkg lock %s is still held after %ss (pid %s); try again when that apt/dpkg run has ended\n' \
                "$f" "$timeout" "$pid" >&2
            return 1
        fi
        sleep 1
    done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case "${1:-}" in
        wait) wait_dpkg_lock ;;
        *) echo "usage: $0 wait" >&2; exit 2 ;;
    esac
fi
