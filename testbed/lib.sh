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

free_port() {  # a TCP port on 127.0.0.1 that was free a moment ago
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_ready NAME PID LOGFILE CHECK...: poll CHECK until it succeeds, at most $READY_TIMEOUT s
# (default 30); stop with the log tail when the process PID exits first
wait_ready() {
    local name="$1" pid="$2" logfile="$3"; shift 3
    local t0 now
    t0="$(date +%s%N)"
    until "$@"; do
        if ! [ -d "/proc/$pid" ] || grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null; then
            if grep -q 'address already in use' "$logfile" 2>/dev/null; then
                log "$name could not listen: $(grep -m1 -o '[^ ]*address already in use' "$logfile") (a port is taken by another process)"
            else
                log "$name exited during start; log tail ($logfile):"
                tail -n 30 "$logfile" >&2 || true
            fi
            exit 1
        fi
        now="$(date +%s%N)"
        if (( (now - t0) / 1000000000 >= ${READY_TIMEOUT:-30} )); then
            log "$name not ready within ${READY_TIMEOUT:-30}s; log tail ($logfile):"
            tail -n 30 "$logfile" >&2 || true
            exit 1
        fi
        sleep 0.1
    done
    now="$(date +%s%N)"
    log "$name ready after $(( (now - t0) / 1000000 )) ms (pid $pid)"
}

# docker CLI talking to the testbed's dockerd only
tdocker() { docker -H "$DOCKER_HOST" "$@"; }
