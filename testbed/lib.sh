# Internal helpers for the testbed scripts (sourced, not executed).
# shellcheck shell=bash
TESTBED_SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
. "$TESTBED_SCRIPTS/env.sh"

log() { printf '[%s] %s\n' "${LOG_TAG:-testbed}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# pid_alive PIDFILE NAME: true when PIDFILE holds the pid of a live process
# whose executable name is NAME (guards against a recycled pid).
pid_alive() {
    local pidfile="$1" name="$2" pid comm
    [ -s "$pidfile" ] || return 1
    pid="$(cat "$pidfile" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [ -r "/proc/$pid/comm" ] || return 1
    # a zombie (exited, not yet reaped) is not alive
    grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null && return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null)" || return 1
    # /proc/PID/comm is cut to 15 characters
    [ "$comm" = "${name:0:15}" ]
}

# stop_pidfile PIDFILE NAME [TIMEOUT_S]: SIGTERM the process named in PIDFILE
# (only if it is NAME), wait, SIGKILL after TIMEOUT_S, remove the pid file.
stop_pidfile() {
    local pidfile="$1" name="$2" timeout="${3:-20}" pid i
    if pid_alive "$pidfile" "$name"; then
        pid="$(cat "$pidfile")"
        log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < timeout * 10; i++)); do
            [ -d "/proc/$pid" ] || break
            # a zombie child of ours counts as gone
            grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null && break
            sleep 0.1
        done
        if [ -d "/proc/$pid" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null; then
            log "$name (pid $pid) still alive after ${timeout}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    else
        log "$name not running"
    fi
    rm -f "$pidfile"
}

# docker CLI talking to the testbed's dockerd only
tdocker() { docker -H "$DOCKER_HOST" "$@"; }
