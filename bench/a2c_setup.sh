#!/usr/bin/env bash
# bench/a2c_setup.sh DIR: a CA (openssl req -x509) and acme_srv.cfg for acme2certifier in DIR.
set -euo pipefail
D="$1"; mkdir -p "$D/certs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/CN=sesam-tls bench acme2certifier CA" -keyout "$D/ca.key" -out "$D/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
cat >"$D/acme_srv.cfg" <<CFG
[DEFAULT]
debug: False

[Nonce]
nonce_check_disable: False

[CAhandler]
handler_module: acme2certifier.cahandlers.openssl_ca_handler
issuing_ca_key: $D/ca.key
issuing_ca_cert: $D/ca.pem
issuing_ca_crl: $D/crl.pem
cert_save_path: $D/certs

[DBhandler]
handler_module: acme2certifier.dbhandlers.wsgi_handler
dbfile: $D/acme_srv.db

[Account]
tos_check_disable: True
contact_check_disable: True

[Challenge]
dns_server_list: ["127.0.0.1"]

[Order]
tnauthlist_support: False
CFG
