#!/usr/bin/env bash
# Knot (knotd), an authoritative DNS server with RFC 2136 dynamic updates, on
# loopback: the DNS side of DNS-01 tests. Pebble resolves through it
# (PEBBLE_DNS_SERVER=127.0.0.1:PORT testbed/pebble.sh start).
#   testbed/knot.sh start|stop|status      one instance (KNOT_INSTANCE, default "knot")
#   testbed/knot.sh stop-all               every instance under $SESAM_TESTBED_DIR/knot
# Env: KNOT_PORT=auto (a free port chosen now, or a number)
#      KNOT_UPDATES=1|0  0: the same zones, but no update is ever accepted (a
#                        secondary that lags for ever, for propagation tests)
# Zone: example.test (SOA, NS ns.example.test, "@", "ns" and "*" A 127.0.0.1,
#       _acme-challenge.alias CNAME alias.validation.example.test.: a delegation
#       of the challenge to a validation name; in the same zone, because Knot
#       answers a CNAME with its target's records only inside one zone and
#       Pebble's VA (Go's resolver) does not chase a CNAME itself). TTL 5.
# TSIG: key "test-key", hmac-sha256, its base64 secret alone in tsig.secret
#       (0600 from the first byte); the key may update the zone.
# The instance's files are in $SESAM_TESTBED_DIR/knot/NAME/; `start` prints
# the path of its ports.env (PORT, KEY_NAME, KEY_ALGORITHM, SECRET_FILE).
# Listens on 127.0.0.1 only. `start` restarts an instance running with other settings.
set -euo pipefail
LOG_TAG=knot
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

D="$SESAM_TESTBED_DIR/knot"
READY_TIMEOUT="${SESAM_KNOT_TIMEOUT:-30}"

need_bins() {
    command -v knotd >/dev/null && command -v kdig >/dev/null && command -v knsupdate >/dev/null \
        || die "no knotd/kdig/knsupdate: run 'make testbed' (testbed/setup.sh installs knot and knot-dnsutils)"
}
answers() {  # answers PORT: the zone's SOA comes back
    kdig @127.0.0.1 -p "$1" +time=1 +retry=0 +short SOA example.test 2>/dev/null | grep -q 'ns.example.test'
}

write_files() {  # write_files DIR PORT UPDATES
    local dir="$1" port="$2" updates="$3"
    mkdir -p "$dir/db" "$dir/run"
    if [ ! -s "$dir/tsig.secret" ]; then
        (umask 077; head -c 32 /dev/urandom | base64 >"$dir/tsig.secret")
    fi
    local acl=""
    [ "$updates" = 1 ] && acl="    acl: upd"
    cat >"$dir/knot.conf" <<EOF
server:
    rundir: "$dir/run"
    listen: 127.0.0.1@$port
log:
  - target: stderr
    any: info
key:
  - id: test-key
    algorithm: hmac-sha256
    secret: $(cat "$dir/tsig.secret")
acl:
  - id: upd
    key: test-key
    action: update
template:
  - id: default
    storage: "$dir/db"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: example.test
$acl
database:
    storage: "$dir/db"
EOF
    chmod 600 "$dir/knot.conf"
    cat >"$dir/db/example.test.zone" <<'EOF'
$ORIGIN example.test.
$TTL 5
@ SOA ns.example.test. admin.example.test. 1 60 60 3600 5
@ NS ns.example.test.
@ A 127.0.0.1
ns A 127.0.0.1
* A 127.0.0.1
_acme-challenge.alias CNAME alias.validation.example.test.
EOF
    printf 'PORT=%s\nKEY_NAME=test-key\nKEY_ALGORITHM=hmac-sha256\nSECRET_FILE=%s\nUPDATES=%s\n' \
        "$port" "$dir/tsig.secret" "$updates" >"$dir/ports.env"
}

start_knot() {  # start_knot NAME PORT UPDATES
    local name="$1" updates="$3" dir="$D/$1"
    need_bins
    if pid_alive "$dir/knotd.pid" knotd; then
        # shellcheck source=/dev/null
        if . "$dir/ports.env" && [ "$UPDATES" = "$updates" ] && { [ "$2" = auto ] || [ "$2" = "$PORT" ]; } \
                && answers "$PORT"; then
            log "$name already running (pid $(cat "$dir/knotd.pid")), 127.0.0.1:$PORT"
            echo "$dir/ports.env"
            return 0
        fi
        log "$name runs with other settings: restarting"
    fi
    stop_knot "$name" quiet
    rm -rf "$dir"
    (umask 077; mkdir -p "$dir")
    local port="$2"
    if [ "$port" = auto ]; then port="$(free_port)"; fi
    [[ "$port" =~ ^[0-9]+$ ]] || die "bad KNOT_PORT '$port' (a number or auto)"
    write_files "$dir" "$port" "$updates"
    log "starting $name on 127.0.0.1:$port (updates $([ "$updates" = 1 ] && echo allowed || echo refused))"
    setsid knotd -c "$dir/knot.conf" >"$dir/knotd.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$dir/knotd.pid"
    wait_ready "$name" "$pid" "$dir/knotd.log" answers "$port"
    echo "$dir/ports.env"
}

stop_knot() {  # stop_knot NAME [quiet]
    local dir="$D/$1"
    if [ "${2:-}" = quiet ] && [ ! -e "$dir/knotd.pid" ]; then return 0; fi
    stop_pidfile "$dir/knotd.pid" knotd 10
}

status_knot() {
    local dir="$D/$1"
    # shellcheck source=/dev/null
    if pid_alive "$dir/knotd.pid" knotd && . "$dir/ports.env" && answers "$PORT"; then
        echo "$1 running (pid $(cat "$dir/knotd.pid")), 127.0.0.1:$PORT"
    else
        echo "$1 not running"
        return 1
    fi
}

INSTANCE="${KNOT_INSTANCE:-knot}"
[[ "$INSTANCE" =~ ^[A-Za-z0-9_-]+$ ]] || die "bad KNOT_INSTANCE '$INSTANCE'"
UPD="${KNOT_UPDATES:-1}"
[[ "$UPD" =~ ^[01]$ ]] || die "bad KNOT_UPDATES '$UPD' (0 or 1)"
case "${1:-}" in
    start) start_knot "$INSTANCE" "${KNOT_PORT:-auto}" "$UPD" ;;
    stop) stop_knot "$INSTANCE"; rm -rf "${D:?}/$INSTANCE" ;;
    status) status_knot "$INSTANCE" ;;
    stop-all)
        for f in "$D"/*/; do
            [ -d "$f" ] || continue
            i="$(basename "$f")"
            stop_knot "$i" quiet; rm -rf "${D:?}/$i"
        done ;;
    *) echo "usage: $0 start|stop|status|stop-all" >&2; exit 2 ;;
esac
