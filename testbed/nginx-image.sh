#!/usr/bin/env bash
# Build the docker image sesam-nginx-test:1 from the host's nginx binary and
# its shared libraries (no registry needed), then check that its OpenSSL
# refuses an RSA-1024 leaf the way Debian's does (SECLEVEL=2).
#   testbed/nginx-image.sh [--force]
# Skips the build when the image exists and was built from the same recipe
# and the same host nginx binary (label sesam.testbed.recipe).
set -euo pipefail
LOG_TAG=nginx-image
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IMAGE="${SESAM_NGINX_IMAGE:-sesam-nginx-test:1}"
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

[ -x /usr/sbin/nginx ] || die "no /usr/sbin/nginx: run 'make testbed' (testbed/setup.sh) first"
tdocker info >/dev/null 2>&1 || die "dockerd at $DOCKER_HOST does not answer: run testbed/dockerd.sh start"

recipe="$( { cat "${BASH_SOURCE[0]}"; sha256sum /usr/sbin/nginx /usr/lib/ssl/openssl.cnf; } | sha256sum | cut -c1-16)"
if [ "$FORCE" = 0 ]; then
    have="$(tdocker image inspect -f '{{ index .Config.Labels "sesam.testbed.recipe" }}' "$IMAGE" 2>/dev/null || true)"
    if [ "$have" = "$recipe" ]; then
        log "$IMAGE exists (recipe $recipe): nothing to do"
        exit 0
    fi
    [ -n "$have" ] && log "$IMAGE was built from another recipe ($have): rebuilding"
fi

R="$(mktemp -d)"
trap 'rm -rf "$R"' EXIT

mkdir -p "$R/usr/sbin" "$R/etc/nginx/includes.d/ssl" "$R/etc/nginx/sites" \
    "$R/var/log/nginx" "$R/var/lib/nginx" "$R/run" "$R/tmp" "$R/usr/lib/ssl"
chmod 1777 "$R/tmp"
cp /usr/sbin/nginx "$R/usr/sbin/"
for lib in $(ldd /usr/sbin/nginx | grep -o '/[^ ]*'); do
    mkdir -p "$R$(dirname "$lib")"
    cp -L "$lib" "$R$lib"
done
cp /etc/nginx/mime.types "$R/etc/nginx/"
# OpenSSL reads $OPENSSLDIR/openssl.cnf = /usr/lib/ssl/openssl.cnf on Debian.
cp -L /usr/lib/ssl/openssl.cnf "$R/usr/lib/ssl/openssl.cnf"

cat >"$R/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
PW
cat >"$R/etc/group" <<'GR'
root:x:0:
www-data:x:33:
nogroup:x:65534:
GR
printf 'passwd: files\ngroup: files\nhosts: files\n' >"$R/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$R/etc/hosts"

cat >"$R/etc/nginx/nginx.conf" <<'CONF'
user root;
pid /run/nginx.pid;
error_log /dev/stderr;
events {}
http {
    access_log off;
    include mime.types;
    include /etc/nginx/sites/*.conf;
}
CONF
cat >"$R/etc/nginx/sites/default.conf" <<'CONF'
# Default site; tests mount their own folder over /etc/nginx/sites.
server {
    listen 127.0.0.1:443 ssl;
    ssl_certificate     /etc/nginx/includes.d/ssl/fullchain.pem;
    ssl_certificate_key /etc/nginx/includes.d/ssl/privkey.pem;
    location / { default_type text/plain; return 200 "sesam node\n"; }
}
server {
    listen 127.0.0.1:80;
    location / { default_type text/plain; return 200 "sesam node (http)\n"; }
}
CONF

log "importing $IMAGE"
tar -C "$R" --numeric-owner --owner=0 --group=0 -c . | tdocker import \
    --change 'CMD ["/usr/sbin/nginx", "-g", "daemon off;"]' \
    --change "LABEL sesam.testbed.recipe=$recipe" \
    - "$IMAGE" >/dev/null

# ---- self-check: RSA-2048 pair accepted, RSA-1024 leaf refused ------------------
check_pair() {  # check_pair BITS -> exit status of `nginx -t` in the image
    local bits="$1" d="$R/check-$1"
    mkdir -p "$d"
    openssl req -x509 -newkey "rsa:$bits" -nodes -days 2 -subj "/CN=seclevel-check" \
        -keyout "$d/privkey.pem" -out "$d/fullchain.pem" >/dev/null 2>&1
    tdocker run --rm --network host -v "$d:/etc/nginx/includes.d/ssl:ro" \
        "$IMAGE" /usr/sbin/nginx -t >"$d/out" 2>&1
}
if ! check_pair 2048; then
    cat "$R/check-2048/out" >&2
    tdocker rmi "$IMAGE" >/dev/null 2>&1 || true
    die "image self-check failed: nginx -t rejects an RSA-2048 pair"
fi
if check_pair 1024; then
    cat "$R/check-1024/out" >&2
    tdocker rmi "$IMAGE" >/dev/null 2>&1 || true
    die "image self-check failed: nginx -t accepts an RSA-1024 leaf (expected SECLEVEL=2 refusal)"
fi
grep -q 'key too small' "$R/check-1024/out" || log "note: RSA-1024 refused, but not with 'key too small': $(tail -n1 "$R/check-1024/out")"
log "built $IMAGE (recipe $recipe); self-check ok: RSA-1024 leaf refused ($(grep -o 'ee key too small\|key too small' "$R/check-1024/out" | head -n1))"
