#!/usr/bin/env bash
# Pebble (Let's Encrypt's ACME test server) on loopback, each instance with a
# pebble-challtestsrv of its own as its DNS server (every name -> 127.0.0.1).
#   testbed/pebble.sh start|stop|restart|status      one instance (PEBBLE_INSTANCE, default "pebble")
#   testbed/pebble.sh start-eab|stop-eab|restart-eab|status-eab
#                                                     the instance "pebble-eab", EAB required
#   testbed/pebble.sh stop-all                        every instance under $SESAM_TESTBED_DIR/pebble
# Env: PEBBLE_PORT=14000 PEBBLE_MGMT_PORT=15000 PEBBLE_HTTP_PORT=5002
#      PEBBLE_TLS_PORT=5001 PEBBLE_DNS_PORT=8053 PEBBLE_CHALL_MGMT_PORT=8055
#      (for pebble-eab: PEBBLE_EAB_PORT=14100 PEBBLE_EAB_MGMT_PORT=15100, DNS 8153/8155)
#      Any port given as "auto" is a free port chosen now; the ports an
#      instance runs on are in $SESAM_TESTBED_DIR/pebble/NAME/ports.env.
#      PEBBLE_INSTANCE=NAME PEBBLE_EAB=0|1: start|stop|restart|status act on
#      instance NAME (state in $SESAM_TESTBED_DIR/pebble/NAME/).
#      PEBBLE_DNS_SERVER=HOST:PORT: the instance starts no challtestsrv and its
#      VA resolves through that server instead (testbed/knot.sh, for DNS-01).
# A port that another process holds stops the start with a line that says so.
# Pebble's own knobs pass through: every other PEBBLE_* variable in the
# environment (e.g. PEBBLE_WFE_NONCEREJECT=50) reaches pebble; defaults are
# PEBBLE_VA_NOSLEEP=1 PEBBLE_AUTHZREUSE=0. `start` is a no-op when the
# instance runs with the same knobs and ports, and restarts it when they differ.
# `start`/`start-eab` print the CA bundle that verifies pebble's API cert.
# Note: pebble makes new issuing roots at every start (GET MGMT/roots/0).
set -euo pipefail
LOG_TAG=pebble
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

D="$SESAM_TESTBED_DIR/pebble"
READY_TIMEOUT="${SESAM_PEBBLE_TIMEOUT:-30}"
EAB_EXAMPLE=/usr/share/doc/pebble/examples/pebble-config-external-account-bindings.json
# Variables of ours, not pebble's: never passed to pebble.
OURS='^PEBBLE_(INSTANCE|EAB|PORT|MGMT_PORT|HTTP_PORT|TLS_PORT|EAB_PORT|EAB_MGMT_PORT|DNS_PORT|CHALL_MGMT_PORT|CA_BUNDLE|DIRECTORY|DNS_SERVER)='

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
dir_answers() {  # dir_answers PORT
    curl -fsS --max-time 2 --cacert "$D/api-ca.pem" "https://127.0.0.1:$1/dir" >/dev/null 2>&1
}
port_or_auto() {  # port_or_auto VALUE: VALUE, or a free port for "auto"
    if [ "$1" = auto ]; then free_port; else
        [[ "$1" =~ ^[0-9]+$ ]] || die "bad port '$1' (a number or auto)"
        echo "$1"
    fi
}
# port_free PORT WHAT: stop with a line that says so when another process holds PORT
port_free() {
    if tcp_open "$1"; then
        local who
        who="$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(("[^"]*",pid=[0-9]*' | head -1 \
            | sed 's/users:(("\([^"]*\)",pid=\([0-9]*\)/\1, pid \2/')"
        die "127.0.0.1:$1 ($2) is already in use by another process${who:+ ($who)}: choose other ports (PEBBLE_*PORT=auto picks free ones)"
    fi
}

# The PEBBLE_* knobs for pebble itself, one NAME=VALUE a line, sorted.
pebble_knobs() {
    {
        env | grep '^PEBBLE_' | grep -Ev "$OURS" || true
        env | grep -q '^PEBBLE_VA_NOSLEEP=' || echo PEBBLE_VA_NOSLEEP=1
        env | grep -q '^PEBBLE_AUTHZREUSE=' || echo PEBBLE_AUTHZREUSE=0
    } | LC_ALL=C sort
}

write_config() {  # write_config DIR PORT MGMT_PORT HTTP_PORT TLS_PORT EAB(0|1)
    python3 - "$1/config.json" "$2" "$3" "$6" "$EAB_EXAMPLE" \
        "$D/api-cert.pem" "$D/api-key.pem" "$4" "$5" <<'PY'
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

# start_pebble NAME PORT MGMT_PORT HTTP_PORT TLS_PORT DNS_PORT CHALL_MGMT_PORT EAB(0|1)
# Ports may be "auto". The instance's files live in $D/NAME/.
start_pebble() {
    local name="$1" eab="$8"
    local dir="$D/$name"
    need_bins
    api_cert
    mkdir -p "$dir"
    local knobs wanted
    knobs="$(pebble_knobs)"
    local dns_server="${PEBBLE_DNS_SERVER:-}"
    [ -z "$dns_server" ] || [[ "$dns_server" =~ ^127\.0\.0\.1:[0-9]+$ ]] \
        || die "bad PEBBLE_DNS_SERVER '$dns_server' (127.0.0.1:PORT: the testbed stays on loopback)"
    wanted="$(printf '%s\n' "$knobs" "ports $2 $3 $4 $5 $6 $7 eab=$eab dns=$dns_server")"
    if pid_alive "$dir/pebble.pid" pebble; then
        # shellcheck source=/dev/null
        if [ "$wanted" = "$(cat "$dir/wanted" 2>/dev/null)" ] && . "$dir/ports.env" && dir_answers "$PORT"; then
            log "$name already running (pid $(cat "$dir/pebble.pid")), https://127.0.0.1:$PORT/dir"
            echo "$D/api-ca.pem"
            return 0
        fi
        log "$name runs with other settings: restarting"
    fi
    stop_pebble "$name" quiet
    mkdir -p "$dir"
    local port mgmt http tls dns chall
    port="$(port_or_auto "$2")"; mgmt="$(port_or_auto "$3")"
    http="$(port_or_auto "$4")"; tls="$(port_or_auto "$5")"
    dns="$(port_or_auto "$6")"; chall="$(port_or_auto "$7")"
    port_free "$port" "$name ACME API"; port_free "$mgmt" "$name management API"
    if [ -z "$dns_server" ]; then
        port_free "$dns" "$name DNS (challtestsrv)"; port_free "$chall" "$name challtestsrv management"
    fi
    printf 'PORT=%s\nMGMT_PORT=%s\nHTTP_PORT=%s\nTLS_PORT=%s\nDNS_PORT=%s\nCHALL_MGMT_PORT=%s\nDNS_SERVER=%s\n' \
        "$port" "$mgmt" "$http" "$tls" "$dns" "$chall" "${dns_server:-127.0.0.1:$dns}" >"$dir/ports.env"

    if [ -z "$dns_server" ]; then
        log "starting $name's pebble-challtestsrv (dns 127.0.0.1:$dns)"
        setsid pebble-challtestsrv -dns01 "127.0.0.1:$dns" \
            -http01 "" -https01 "" -tlsalpn01 "" \
            -management "127.0.0.1:$chall" -defaultIPv6 "" \
            >"$dir/dns.log" 2>&1 </dev/null &
        local dpid=$!
        echo "$dpid" >"$dir/dns.pid"
        wait_ready "$name pebble-challtestsrv" "$dpid" "$dir/dns.log" tcp_open "$chall"
        dns_server="127.0.0.1:$dns"
    else
        log "$name resolves through $dns_server (no challtestsrv)"
    fi

    write_config "$dir" "$port" "$mgmt" "$http" "$tls" "$eab"
    log "starting $name on 127.0.0.1:$port (mgmt $mgmt, HTTP-01 $http) with: $(echo "$knobs" | tr '\n' ' ')"
    # shellcheck disable=SC2046
    env -u PEBBLE_CA_BUNDLE -u PEBBLE_DIRECTORY -u PEBBLE_DNS_SERVER $(echo "$knobs") \
        setsid pebble -config "$dir/config.json" -dnsserver "$dns_server" \
        >"$dir/pebble.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$dir/pebble.pid"
    echo "$wanted" >"$dir/wanted"
    wait_ready "$name" "$pid" "$dir/pebble.log" dir_answers "$port"
    echo "$D/api-ca.pem"
}

stop_pebble() {  # stop_pebble NAME [quiet]: pebble and its challtestsrv, by pid files
    local dir="$D/$1"
    if [ "${2:-}" = quiet ]; then
        if [ -e "$dir/pebble.pid" ]; then stop_pidfile "$dir/pebble.pid" pebble 10; fi
        if [ -e "$dir/dns.pid" ]; then stop_pidfile "$dir/dns.pid" pebble-challtestsrv 10; fi
    else
        stop_pidfile "$dir/pebble.pid" pebble 10
        if [ -e "$dir/dns.pid" ]; then stop_pidfile "$dir/dns.pid" pebble-challtestsrv 10; fi
    fi
    rm -f "$dir/wanted"
}

instances() {  # names of instances with a folder
    local f
    for f in "$D"/*/; do
        [ -d "$f" ] || continue
        basename "$f"
    done
}

status_pebble() {  # status_pebble NAME
    local dir="$D/$1"
    # shellcheck source=/dev/null
    if pid_alive "$dir/pebble.pid" pebble && . "$dir/ports.env" && dir_answers "$PORT"; then
        echo "$1 running (pid $(cat "$dir/pebble.pid")), https://127.0.0.1:$PORT/dir, CA bundle $D/api-ca.pem"
    else
        echo "$1 not running"
        return 1
    fi
}

INSTANCE="${PEBBLE_INSTANCE:-pebble}"
[[ "$INSTANCE" =~ ^[A-Za-z0-9_-]+$ ]] || die "bad PEBBLE_INSTANCE '$INSTANCE'"
EAB="${PEBBLE_EAB:-0}"
main_ports() {
    start_pebble "$INSTANCE" "${PEBBLE_PORT:-14000}" "${PEBBLE_MGMT_PORT:-15000}" \
        "${PEBBLE_HTTP_PORT:-5002}" "${PEBBLE_TLS_PORT:-5001}" \
        "${PEBBLE_DNS_PORT:-8053}" "${PEBBLE_CHALL_MGMT_PORT:-8055}" "$EAB"
}
eab_ports() {
    start_pebble pebble-eab "${PEBBLE_EAB_PORT:-14100}" "${PEBBLE_EAB_MGMT_PORT:-15100}" \
        "${PEBBLE_HTTP_PORT:-5002}" "${PEBBLE_TLS_PORT:-5001}" \
        "${PEBBLE_DNS_PORT:-8153}" "${PEBBLE_CHALL_MGMT_PORT:-8155}" 1
}
case "${1:-}" in
    start) main_ports ;;
    restart) stop_pebble "$INSTANCE"; main_ports ;;
    stop) stop_pebble "$INSTANCE"; rm -rf "${D:?}/$INSTANCE" ;;
    status) status_pebble "$INSTANCE" ;;
    start-eab) eab_ports ;;
    restart-eab) stop_pebble pebble-eab; eab_ports ;;
    stop-eab) stop_pebble pebble-eab; rm -rf "${D:?}/pebble-eab" ;;
    status-eab) status_pebble pebble-eab ;;
    stop-all)
        for i in $(instances); do stop_pebble "$i" quiet; rm -rf "${D:?}/$i"; done
        # the layout before per-instance folders: NAME.pid files beside the API cert
        for f in "$D"/*.pid; do
            [ -e "$f" ] || continue
            case "$f" in
                */challtestsrv.pid) stop_pidfile "$f" pebble-challtestsrv 10 ;;
                *) stop_pidfile "$f" pebble 10 ;;
            esac
        done ;;
    *) echo "usage: $0 start|stop|restart|status|start-eab|stop-eab|restart-eab|status-eab|stop-all" >&2; exit 2 ;;
esac
