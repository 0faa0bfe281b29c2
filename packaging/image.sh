#!/usr/bin/env bash
# Build the container image sesam-tls:<version> and sesam-tls:latest FROM
# scratch, without a registry: the one-file executable (dist/sesam-tls, from
# `make dist`), exactly the system libraries it loads (packaging/elfdeps.py:
# ldd over the executable and everything it bundles), /tmp, the host's CA
# certificates, and ENTRYPOINT the executable.
#   packaging/image.sh [--force]
# Talks to $DOCKER_HOST, or to the testbed's dockerd when that is unset.
# Skips the build when the image exists with the same recipe (label).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
log() { printf '[image] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [ -z "${DOCKER_HOST:-}" ]; then
    # shellcheck source=../testbed/env.sh
    . "$REPO/testbed/env.sh"
fi
export DOCKER_HOST

EXE="$REPO/dist/sesam-tls"
PY="$REPO/.venv/bin/python"
CA=/etc/ssl/certs/ca-certificates.crt
NAME="${SESAM_TLS_IMAGE:-sesam-tls}"
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

[ -x "$EXE" ] || die "no $EXE: run 'make dist' first"
[ -s "$CA" ] || die "no $CA on this machine (Debian: apt-get install ca-certificates)"
docker info >/dev/null 2>&1 || die "no Docker engine answers at $DOCKER_HOST (testbed: testbed/dockerd.sh start)"

version="$("$EXE" --version | awk '{print $2}')"
[ -n "$version" ] || die "$EXE --version printed no version"
tag="${version//+/-}"   # a Docker tag has no '+'
mapfile -t libs < <("$PY" "$REPO/packaging/elfdeps.py" libs "$EXE")
[ "${#libs[@]}" -gt 0 ] || die "found no shared libraries for $EXE (ldd failed?)"

recipe="$( { cat "${BASH_SOURCE[0]}"; sha256sum "$EXE" "$CA"; sha256sum "${libs[@]}"; } | sha256sum | cut -c1-16)"
if [ "$FORCE" = 0 ]; then
    have="$(docker image inspect -f '{{ index .Config.Labels "sesam.tls.recipe" }}' "$NAME:$tag" 2>/dev/null || true)"
    latest="$(docker image inspect -f '{{ .Id }}' "$NAME:latest" 2>/dev/null || true)"
    this="$(docker image inspect -f '{{ .Id }}' "$NAME:$tag" 2>/dev/null || true)"
    if [ "$have" = "$recipe" ] && [ "$latest" = "$this" ]; then
        log "$NAME:$tag exists (recipe $recipe): nothing to do"
        exit 0
    fi
fi

R="$(mktemp -d)"
trap 'rm -rf "$R"' EXIT
mkdir -p "$R/usr/local/bin" "$R/tmp" "$R/etc/ssl/certs" "$R/var/lib/sesam-tls"
chmod 1777 "$R/tmp"
cp "$EXE" "$R/usr/local/bin/sesam-tls"
for lib in "${libs[@]}"; do
    mkdir -p "$R$(dirname "$lib")"
    cp -L "$lib" "$R$lib"
done
# Debian keeps libraries under /lib -> usr/lib; the loader is looked up at
# the path written in the executable, so each is copied at the path ldd gave.
cp -L "$CA" "$R/etc/ssl/certs/ca-certificates.crt"
cat >"$R/etc/passwd" <<'PW'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
PW
cat >"$R/etc/group" <<'GR'
root:x:0:
nogroup:x:65534:
GR
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$R/etc/nsswitch.conf"

log "importing $NAME:$tag (${#libs[@]} libraries: ${libs[*]##*/})"
tar -C "$R" --numeric-owner --owner=0 --group=0 -c . | docker import \
    --change 'ENTRYPOINT ["/usr/local/bin/sesam-tls"]' \
    --change 'CMD ["--help"]' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' \
    --change "LABEL sesam.tls.recipe=$recipe org.opencontainers.image.title=sesam-tls org.opencontainers.image.version=$version" \
    - "$NAME:$tag" >/dev/null
docker tag "$NAME:$tag" "$NAME:latest"

# self-check: the executable starts inside the image
got="$(docker run --rm --network host "$NAME:$tag" --version)"
[ "$got" = "sesam-tls $version" ] || die "the image printed '$got' for --version, expected 'sesam-tls $version'"
size="$(docker image inspect -f '{{ .Size }}' "$NAME:$tag")"
log "built $NAME:$tag and $NAME:latest ($((size / 1000000)) MB, recipe $recipe); --version ok"
