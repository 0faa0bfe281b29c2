#!/usr/bin/env bash
# Occupy the ports a testbed would use by default, the way another Pebble on
# the same machine does, to prove that `make test` never needs them:
#   Pebble on 14000/15000 (DNS 8053/8055), an EAB Pebble on 14100/15100
#   (DNS 8153/8155), and listeners on 5002 and 5102 (HTTP-01).
#   testbed/squat.sh start|stop
# State in $SESAM_SQUAT_DIR (default /tmp/sesam-squat), apart from the
# testbed's, so `make clean-testbed` and the tests never touch it.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SQUAT="${SESAM_SQUAT_DIR:-/tmp/sesam-squat}"
export SESAM_TESTBED_DIR="$SQUAT"
LOG_TAG=squat
. "$HERE/lib.sh"

listen() {  # listen PORT: a process of ours holding 127.0.0.1:PORT, pid in $SQUAT/listen-PORT.pid
    setsid python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
time.sleep(86400)' "$1" </dev/null >/dev/null 2>&1 &
    echo $! >"$SQUAT/listen-$1.pid"
}

case "${1:-}" in
    start)
        mkdir -p "$SQUAT"
        # a port something else already holds is squatted already
        if tcp_open 14000; then log "14000 is taken already"; else
            env -u PEBBLE_PORT -u PEBBLE_MGMT_PORT -u PEBBLE_DNS_PORT "$HERE/pebble.sh" start >/dev/null; fi
        if tcp_open 14100; then log "14100 is taken already"; else "$HERE/pebble.sh" start-eab >/dev/null; fi
        for p in 5002 5102; do tcp_open "$p" || listen "$p"; done
        log "squatting 14000 15000 8053 8055 14100 15100 8153 8155 5002 5102 (state $SQUAT)" ;;
    stop)
        "$HERE/pebble.sh" stop-all >/dev/null 2>&1 || true
        for p in 5002 5102; do stop_pidfile "$SQUAT/listen-$p.pid" python3 5 2>/dev/null; done
        rm -rf "$SQUAT" ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
