#!/usr/bin/env bash
# `make demo`: the main job for real, on the loopback testbed.
#   testbed/demo.sh          run the demo (leaves the demo node running)
#   testbed/demo.sh clean    remove the demo's container and /etc/hosts line
#
# A scratch Sesam node under $SESAM_TESTBED_DIR/demo: the agent config from
# Sesam's guide, an nginx container named `nginx` (on the testbed's own
# dockerd) serving 127.0.0.1:<free port> from the node's ssl folder. sesam-tls
# then gets a certificate from a Pebble of the demo's own (free ports) over
# HTTP-01, deploys it, and we look at what nginx serves with a real TLS
# handshake. The demo name resolves to 127.0.0.1 through one /etc/hosts line
# (marked, removed by `make clean-testbed`), so that `sesam-tls check` can
# pass on the demo node as it would on a real one.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$REPO/testbed/lib.sh"
LOG_TAG=demo

DEMO="$SESAM_TESTBED_DIR/demo"
ROOT="$DEMO/root"
SSL="$ROOT/sesam/nginx/conf/ssl"
NAME=node.example.test
HOSTS="${SESAM_TESTBED_HOSTS:-/etc/hosts}"
MARK="# sesam-tls testbed demo"
SESAM_TLS="$REPO/.venv/bin/sesam-tls"

hosts_remove() {
    [ -w "$HOSTS" ] && grep -qF "$MARK" "$HOSTS" || return 0
    local t
    t="$(mktemp)"
    grep -vF "$MARK" "$HOSTS" >"$t" || true
    cat "$t" >"$HOSTS"   # in place: /etc/hosts may be a bind mount
    rm -f "$t"
    log "removed the demo's line from $HOSTS"
}

hosts_add() {
    if getent hosts "$NAME" >/dev/null 2>&1; then
        return 0
    fi
    if [ -w "$HOSTS" ]; then
        printf '127.0.0.1 %s %s\n' "$NAME" "$MARK" >>"$HOSTS"
        log "$NAME -> 127.0.0.1 through one line in $HOSTS (removed by make clean-testbed)"
    else
        log "cannot write $HOSTS: 'sesam-tls check' will say that $NAME does not resolve"
    fi
}

if [ "${1:-}" = clean ]; then
    if tdocker info >/dev/null 2>&1; then
        tdocker rm -f nginx >/dev/null 2>&1 && log "removed the demo's nginx container" || true
    fi
    PEBBLE_INSTANCE=demo "$REPO/testbed/pebble.sh" stop >/dev/null 2>&1 || true
    hosts_remove
    exit 0
fi

export SESAM_TLS_ROOT="$ROOT"

tdocker rm -f nginx >/dev/null 2>&1 || true   # only ever the demo's own container on the testbed dockerd
rm -rf "$DEMO"
mkdir -p "$ROOT/etc/sesam-agent" "$DEMO/sites"
cp "$REPO/testbed/sesam-agent-config.example.json" "$ROOT/etc/sesam-agent/config.json"
hosts_add

log "0. a Pebble of the demo's own, on free ports"
PEBBLE_CA_BUNDLE="$(PEBBLE_INSTANCE=demo PEBBLE_PORT=auto PEBBLE_MGMT_PORT=auto PEBBLE_HTTP_PORT=auto \
    PEBBLE_TLS_PORT=auto PEBBLE_DNS_PORT=auto PEBBLE_CHALL_MGMT_PORT=auto \
    "$REPO/testbed/pebble.sh" start | tail -n 1)"
pebble_port() { sed -n "s/^$1=//p" "$SESAM_TESTBED_DIR/pebble/demo/ports.env"; }
DIRECTORY="https://127.0.0.1:$(pebble_port PORT)/dir"
HTTP01_PORT="$(pebble_port HTTP_PORT)"
PORT="$(free_port)"

log "1. the node's first certificate, as the Sesam guide's self-signed option would give it"
"$SESAM_TLS" issue --self-signed --domain "$NAME" --no-restart

log "2. the node's nginx container, serving https://127.0.0.1:$PORT from $SSL"
cat >"$DEMO/sites/default.conf" <<CONF
server {
    listen 127.0.0.1:$PORT ssl;
    ssl_certificate     /etc/nginx/includes.d/ssl/fullchain.pem;
    ssl_certificate_key /etc/nginx/includes.d/ssl/privkey.pem;
    location / { default_type text/plain; return 200 "sesam node\n"; }
}
CONF
tdocker run -d --name nginx --network host \
    -v "$SSL:/etc/nginx/includes.d/ssl:ro" -v "$DEMO/sites:/etc/nginx/sites:ro" \
    sesam-nginx-test:1 >/dev/null

log "3. a certificate from the ACME CA (Pebble) over HTTP-01, deployed into the container and verified"
log "   (--replace: the node's managed certificate is self-signed; switching provider is asked for)"
"$SESAM_TLS" issue --domain "$NAME" --email ops@example.test --agree-tos --replace \
    --server "$DIRECTORY" --ca-bundle "$PEBBLE_CA_BUNDLE" \
    --http-port "$HTTP01_PORT" --http-address 127.0.0.1 \
    --verify "127.0.0.1:$PORT"

log "4. status"
"$SESAM_TLS" status --verify "127.0.0.1:$PORT"

log "5. the preflight for the next renewal: the recorded names, CA and HTTP-01 settings"
"$SESAM_TLS" check

log "6. what nginx serves, seen by openssl s_client"
openssl s_client -connect "127.0.0.1:$PORT" -servername "$NAME" </dev/null 2>/dev/null \
    | openssl x509 -noout -subject -issuer -dates -ext subjectAltName

log "the agent config now reads (secrets masked):"
python3 - "$ROOT/etc/sesam-agent/config.json" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
data["docker_password"] = "********"
print(json.dumps(data, indent=2))
PY

cat <<TXT

The demo node keeps running: nginx (container "nginx" on the testbed's dockerd,
https://127.0.0.1:$PORT), dockerd (pid $(cat "$SESAM_TESTBED_DIR/dockerd/dockerd.pid")) and
Pebble ($DIRECTORY). To keep going:

  export SESAM_TLS_ROOT=$ROOT DOCKER_HOST=$DOCKER_HOST
  $SESAM_TLS status --verify 127.0.0.1:$PORT
  $SESAM_TLS renew --dry-run

Stop it all with: make clean-testbed
TXT
