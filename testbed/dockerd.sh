#!/usr/bin/env bash
# Loopback-only Docker engine for the tests: no bridge, no iptables, its own
# socket and state under $SESAM_TESTBED_DIR/dockerd. Containers must use
# --network host and listen on 127.0.0.1 only.
#   testbed/dockerd.sh start|stop|status
# `start` prints the DOCKER_HOST url on stdout.
set -euo pipefail
LOG_TAG=dockerd
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

D="$SESAM_TESTBED_DIR/dockerd"
SOCK="$D/docker.sock"
PIDFILE="$D/dockerd.pid"
LOGFILE="$D/dockerd.log"
READY_TIMEOUT="${SESAM_DOCKERD_TIMEOUT:-30}"

answers() { tdocker info >/dev/null 2>&1; }

# Mounts dockerd leaves behind when it is gone (the host network's nsfs
# under exec/netns, a container's shm): unmount them, deepest first.
unmount_leftovers() {
    local m
    [ -d "$D" ] || return 0
    findmnt -rn -o TARGET | awk -v d="$D/" 'index($0, d) == 1' | sort -r | while read -r m; do
        log "unmounting $m (left by dockerd)"
        umount "$m" 2>/dev/null || umount -l "$m" || log "could not unmount $m"
    done
}

start() {
    command -v dockerd >/dev/null || die "no dockerd binary: run 'make testbed' (testbed/setup.sh) first"
    command -v docker >/dev/null || die "no docker CLI on PATH"
    if pid_alive "$PIDFILE" dockerd && answers; then
        log "already running (pid $(cat "$PIDFILE")), $DOCKER_HOST"
        echo "$DOCKER_HOST"
        return 0
    fi
    mkdir -p "$D"
    if pid_alive "$PIDFILE" dockerd; then
        log "pid $(cat "$PIDFILE") is alive but does not answer yet: waiting for it"
    else
        # Stale state from a dockerd that is gone (killed, machine reused).
        rm -f "$PIDFILE" "$SOCK"
        log "starting dockerd, log $LOGFILE"
        setsid dockerd \
            --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
            --data-root "$D/data" --exec-root "$D/exec" \
            -H "unix://$SOCK" --pidfile "$PIDFILE" \
            >"$LOGFILE" 2>&1 </dev/null &
        started_pid=$!
    fi
    local t0=$SECONDS
    until answers; do
        if [ -n "${started_pid:-}" ] && ! [ -d "/proc/$started_pid" ]; then
            log "dockerd exited during start; log tail:"
            tail -n 30 "$LOGFILE" >&2 || true
            unmount_leftovers
            exit 1
        fi
        if (( SECONDS - t0 >= READY_TIMEOUT )); then
            log "dockerd did not answer within ${READY_TIMEOUT}s; log tail:"
            tail -n 30 "$LOGFILE" >&2 || true
            exit 1
        fi
        sleep 0.2
    done
    log "ready after $((SECONDS - t0))s (pid $(cat "$PIDFILE")), $DOCKER_HOST"
    echo "$DOCKER_HOST"
}

stop() { stop_pidfile "$PIDFILE" dockerd 30; rm -f "$SOCK"; unmount_leftovers; }

status() {
    if pid_alive "$PIDFILE" dockerd && answers; then
        echo "dockerd running (pid $(cat "$PIDFILE")), DOCKER_HOST=$DOCKER_HOST"
    else
        echo "dockerd not running"
        return 1
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
