#!/usr/bin/env bash
# `make demo`: the main job for real, on the loopback testbed.
#
# A scratch Sesam node under $SESAM_TESTBED_DIR/demo: the agent config from
# Sesam's guide, an nginx container named `nginx` (on the testbed's own
# dockerd) serving 127.0.0.1:8443 from the node's ssl folder. sesam-tls then
# gets a certificate from Pebble over HTTP-01, deploys it, and we look at
# what nginx serves with a real TLS handshake.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$REPO/testbed/lib.sh"
LOG_TAG=demo

DEMO="$SESAM_TESTBED_DIR/demo"
ROOT="$DEMO/root"
SSL="$ROOT/sesam/nginx/conf/ssl"
NAME=node.example.test
PORT=8443
SESAM_TLS="$REPO/.venv/bin/sesam-tls"
export SESAM_TLS_ROOT="$ROOT"

tdocker rm -f nginx >/dev/null 2>&1 || true   # only ever the demo's own container on the testbed dockerd
rm -rf "$DEMO"
mkdir -p "$ROOT/etc/sesam-agent" "$DEMO/sites"
cp "$REPO/testbed/sesam-agent-config.example.json" "$ROOT/etc/sesam-agent/config.json"

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
"$SESAM_TLS" issue --domain "$NAME" --email ops@example.test --agree-tos \
    --server "$PEBBLE_DIRECTORY" --ca-bundle "$PEBBLE_CA_BUNDLE" \
    --http-port "${PEBBLE_HTTP_PORT:-5002}" --http-address 127.0.0.1 \
    --verify "127.0.0.1:$PORT"

log "4. status"
"$SESAM_TLS" status --verify "127.0.0.1:$PORT"

log "5. what nginx serves, seen by openssl s_client"
openssl s_client -connect "127.0.0.1:$PORT" -servername "$NAME" </dev/null 2>/dev/null \
    | openssl x509 -noout -subject -issuer -dates -ext subjectAltName

log "the agent config now reads (secrets masked):"
python3 - "$ROOT/etc/sesam-agent/config.json" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
data["docker_password"] = "********"
print(json.dumps(data, indent=2))
PY
