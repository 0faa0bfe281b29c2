#!/usr/bin/env bash
# Pebble (Let's Encrypt's ACME test server) on loopback, with
# pebble-challtestsrv as its DNS server (every name -> 127.0.0.1).
#   testbed/pebble.sh start|stop|restart|status      main instance, no EAB
#   testbed/pebble.sh start-eab|stop-eab|restart-eab|status-eab
#                                                     second instance, EAB required
#   testbed/pebble.sh stop-all                        every instance + challtestsrv
# Env: PEBBLE_PORT=14000 PEBBLE_MGMT_PORT=15000 PEBBLE_HTTP_PORT=5002
#      PEBBLE_EAB_PORT=14100 PEBBLE_EAB_MGMT_PORT=15100
#      PEBBLE_DNS_PORT=8053 (challtestsrv; its management on 8055)
#      PEBBLE_INSTANCE=NAME PEBBLE_EAB=0|1: start|stop|restart|status act on an
#      extra instance NAME (state $SESAM_TESTBED_DIR/pebble/NAME.*) on
#      PEBBLE_PORT/PEBBLE_MGMT_PORT, e.g. one with faults beside the main one.
# Pebble's own knobs pass through: every other PEBBLE_* variable in the
# environment (e.g. PEBBLE_WFE_NONCEREJECT=50) reaches pebble; defaults are
# PEBBLE_VA_NOSLEEP=1 PEBBLE_AUTHZREUSE=0. `start` is a no-op when the
# instance runs with the same knobs, and restarts it when they differ.
# `start`/`start-eab` print the CA bundle that verifies pebble's API cert.
# Note: pebble makes new issuing roots at every start (GET MGMT/roots/0).
set -euo pipefail
LOG_TAG=pebble
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

D="$SESAM_TESTBED_DIR/pebble"
PEBBLE_PORT="${PEBBLE_PORT:-14000}"
PEBBLE_MGMT_PORT="${PEBBLE_MGMT_PORT:-15000}"
PEBBLE_HTTP_PORT="${PEBBLE_HTTP_PORT:-5002}"
PEBBLE_TLS_PORT="${PEBBLE_TLS_PORT:-5001}"
PEBBLE_EAB_PORT="${PEBBLE_EAB_PORT:-14100}"
PEBBLE_EAB_MGMT_PORT="${PEBBLE_EAB_MGMT_PORT:-15100}"
PEBBLE_DNS_PORT="${PEBBLE_DNS_PORT:-8053}"
CHALL_MGMT_PORT="${PEBBLE_CHALL_MGMT_PORT:-8055}"
READY_TIMEOUT="${SESAM_PEBBLE_TIMEOUT:-30}"
EAB_EXAMPLE=/usr/share/doc/pebble/examples/pebble-config-external-account-bindings.json
# Variables of ours, not pebble's: never passed to pebble.
OURS='^PEBBLE_(INSTANCE|EAB|PORT|MGMT_PORT|HTTP_PORT|TLS_PORT|EAB_PORT|EAB_MGMT_PORT|DNS_PORT|CHALL_MGMT_PORT|CA_BUNDLE|DIRECTORY)='

need_bins() {
    command -v pebble >/dev/null && command -v pebble-challtestsrv >/dev/null \
        || die "no pebble binary: run 'make testbed' (testbed/setup.sh) first"
}

# ---- pebble's API certificate: a small CA and a leaf for 127.0.0.1/localhost --
api_cert() {
    mkdir -p "$D"
    [ -s "$D/api-ca.pem" ] && [ -s "$D/api-cert.pem" ] && [ -s "$D/api-key.pem" ] && return 0
    log "generating pebble API certificate in $D"
    local t
    t="$(mktemp -d)"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=sesam-tls testbed pebble API CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$t/ca.key" -out "$t/ca.pem" >/dev/null 2>&1
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=localhost" -keyout "$t/key.pem" -out "$t/leaf.csr" >/dev/null 2>&1
    printf '%s\n' \
        "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth" \
        "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost" \
        "subjectKeyIdentifier=hash" \
        "authorityKeyIdentifier=keyid" >"$t/leaf.ext"
    openssl x509 -req -in "$t/leaf.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" \
        -CAcreateserial -days 3650 -extfile "$t/leaf.ext" -out "$t/cert.pem" >/dev/null 2>&1
    mv "$t/key.pem" "$D/api-key.pem"
    mv "$t/cert.pem" "$D/api-cert.pem"
    mv "$t/ca.pem" "$D/api-ca.pem"   # last: its presence means "all done"
    rm -rf "$t"
}

# ---- helpers -------------------------------------------------------------------
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
dir_answers() {  # dir_answers PORT
    curl -fsS --max-time 2 --cacert "$D/api-ca.pem" "https://127.0.0.1:$1/dir" >/dev/null 2>&1
}

# wait_ready NAME PID LOGFILE CHECK...: poll CHECK until it succeeds
wait_ready() {
    local name="$1" pid="$2" logfile="$3"; shift 3
    local t0 now
    t0="$(date +%s%N)"
    until "$@"; do
        if ! [ -d "/proc/$pid" ] || grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null; then
            log "$name exited during start; log tail ($logfile):"
            tail -n 30 "$logfile" >&2 || true
            exit 1
        fi
        now="$(date +%s%N)"
        if (( (now - t0) / 1000000000 >= READY_TIMEOUT )); then
            log "$name not ready within ${READY_TIMEOUT}s; log tail ($logfile):"
            tail -n 30 "$logfile" >&2 || true
            exit 1
        fi
        sleep 0.1
    done
    now="$(date +%s%N)"
    log "$name ready after $(( (now - t0) / 1000000 )) ms (pid $pid)"
}

start_challtestsrv() {
    local pidfile="$D/challtestsrv.pid" logfile="$D/challtestsrv.log"
    if pid_alive "$pidfile" pebble-challtestsrv; then
        return 0
    fi
    log "starting pebble-challtestsrv (dns 127.0.0.1:$PEBBLE_DNS_PORT)"
    setsid pebble-challtestsrv -dns01 "127.0.0.1:$PEBBLE_DNS_PORT" \
        -http01 "" -https01 "" -tlsalpn01 "" \
        -management "127.0.0.1:$CHALL_MGMT_PORT" -defaultIPv6 "" \
        >"$logfile" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$pidfile"
    wait_ready pebble-challtestsrv "$pid" "$logfile" tcp_open "$CHALL_MGMT_PORT"
}

# The PEBBLE_* knobs for pebble itself, one NAME=VALUE a line, sorted.
pebble_knobs() {
    {
        env | grep '^PEBBLE_' | grep -Ev "$OURS" || true
        env | grep -q '^PEBBLE_VA_NOSLEEP=' || echo PEBBLE_VA_NOSLEEP=1
        env | grep -q '^PEBBLE_AUTHZREUSE=' || echo PEBBLE_AUTHZREUSE=0
    } | LC_ALL=C sort
}

write_config() {  # write_config NAME PORT MGMT_PORT EAB(0|1)
    local name="$1" port="$2" mgmt="$3" eab="$4"
    python3 - "$D/$name.json" "$port" "$mgmt" "$eab" "$EAB_EXAMPLE" \
        "$D/api-cert.pem" "$D/api-key.pem" "$PEBBLE_HTTP_PORT" "$PEBBLE_TLS_PORT" <<'PY'
import json, sys
out, port, mgmt, eab, example, cert, key, http_port, tls_port = sys.argv[1:]
cfg = {
    "listenAddress": f"127.0.0.1:{port}",
    "managementListenAddress": f"127.0.0.1:{mgmt}",
    "certificate": cert,
    "privateKey": key,
    "httpPort": int(http_port),
    "tlsPort": int(tls_port),
    "ocspResponderURL": "",
    "externalAccountBindingRequired": False,
}
if eab == "1":
    with open(example) as f:
        ex = json.load(f)["pebble"]
    cfg["externalAccountBindingRequired"] = True
    cfg["externalAccountMACKeys"] = ex["externalAccountMACKeys"]
with open(out, "w") as f:
    json.dump({"pebble": cfg}, f, indent=2)
PY
}

start_pebble() {  # start_pebble NAME PORT MGMT_PORT EAB(0|1)
    local name="$1" port="$2" mgmt="$3" eab="$4"
    local pidfile="$D/$name.pid" logfile="$D/$name.log" knobsfile="$D/$name.knobs"
    need_bins
    api_cert
    local knobs
    knobs="$(pebble_knobs)"
    if pid_alive "$pidfile" pebble; then
        if [ "$knobs" = "$(cat "$knobsfile" 2>/dev/null)" ] && dir_answers "$port"; then
            log "$name already running (pid $(cat "$pidfile")), https://127.0.0.1:$port/dir"
            echo "$D/api-ca.pem"
            return 0
        fi
        log "$name runs with other settings: restarting"
        stop_pidfile "$pidfile" pebble 10
    fi
    rm -f "$pidfile"
    start_challtestsrv
    write_config "$name" "$port" "$mgmt" "$eab"
    log "starting $name on 127.0.0.1:$port (mgmt $mgmt) with: $(echo "$knobs" | tr '\n' ' ')"
    # shellcheck disable=SC2046
    env -u PEBBLE_CA_BUNDLE -u PEBBLE_DIRECTORY $(echo "$knobs") \
        setsid pebble -config "$D/$name.json" -dnsserver "127.0.0.1:$PEBBLE_DNS_PORT" \
        >"$logfile" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$pidfile"
    echo "$knobs" >"$knobsfile"
    wait_ready "$name" "$pid" "$logfile" dir_answers "$port"
    echo "$D/api-ca.pem"
}

stop_pebble() {  # stop_pebble NAME
    stop_pidfile "$D/$1.pid" pebble 10
    rm -f "$D/$1.knobs"
}

instances() {  # names of instances with a pid file
    local f
    for f in "$D"/*.pid; do
        [ -e "$f" ] || continue
        f="$(basename "$f" .pid)"
        [ "$f" = challtestsrv ] || echo "$f"
    done
}

stop_challtestsrv_if_unused() {
    local i
    for i in $(instances); do
        pid_alive "$D/$i.pid" pebble && return 0
    done
    stop_pidfile "$D/challtestsrv.pid" pebble-challtestsrv 10
}

status_pebble() {  # status_pebble NAME PORT
    if pid_alive "$D/$1.pid" pebble && dir_answers "$2"; then
        echo "$1 running (pid $(cat "$D/$1.pid")), https://127.0.0.1:$2/dir, CA bundle $D/api-ca.pem"
    else
        echo "$1 not running"
        return 1
    fi
}

INSTANCE="${PEBBLE_INSTANCE:-pebble}"
[[ "$INSTANCE" =~ ^[A-Za-z0-9_-]+$ ]] && [ "$INSTANCE" != challtestsrv ] || die "bad PEBBLE_INSTANCE '$INSTANCE'"
EAB="${PEBBLE_EAB:-0}"
case "${1:-}" in
    start) start_pebble "$INSTANCE" "$PEBBLE_PORT" "$PEBBLE_MGMT_PORT" "$EAB" ;;
    restart) stop_pebble "$INSTANCE"; start_pebble "$INSTANCE" "$PEBBLE_PORT" "$PEBBLE_MGMT_PORT" "$EAB" ;;
    stop) stop_pebble "$INSTANCE"; stop_challtestsrv_if_unused ;;
    status) status_pebble "$INSTANCE" "$PEBBLE_PORT" ;;
    start-eab) start_pebble pebble-eab "$PEBBLE_EAB_PORT" "$PEBBLE_EAB_MGMT_PORT" 1 ;;
    restart-eab) stop_pebble pebble-eab; start_pebble pebble-eab "$PEBBLE_EAB_PORT" "$PEBBLE_EAB_MGMT_PORT" 1 ;;
    stop-eab) stop_pebble pebble-eab; stop_challtestsrv_if_unused ;;
    status-eab) status_pebble pebble-eab "$PEBBLE_EAB_PORT" ;;
    stop-all)
        for i in $(instances); do stop_pebble "$i"; done
        stop_challtestsrv_if_unused ;;
    *) echo "usage: $0 start|stop|restart|status|start-eab|stop-eab|restart-eab|status-eab|stop-all" >&2; exit 2 ;;
esac
