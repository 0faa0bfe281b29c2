#!/usr/bin/env bash
# Install what `make bench` compares sesam-tls with, and what draws the chart
# (idempotent; root for apt-get):
#   - lego from Debian (apt-get install lego)
#   - certbot from PyPI into its own venv bench/.venv-certbot
#   - matplotlib from PyPI into bench/.venv-plot (kept out of certbot's venv
#     so that it cannot change certbot's start-up)
# Nothing here talks to an ACME server: the benchmark passes --server (the
# local Pebble) to every client, always.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf '[bench-setup] %s\n' "$*" >&2; }
CERTBOT_SPEC="${CERTBOT_SPEC:-certbot==5.8.0}"

if ! dpkg -s lego >/dev/null 2>&1 || ! [ -x /usr/bin/lego ]; then
    [ "$(id -u)" -eq 0 ] || { log "lego missing and not root: apt-get install lego"; exit 1; }
    log "apt-get install lego"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends lego >/dev/null
else
    log "lego present ($(dpkg-query -W -f '${Version}' lego))"
fi

# venv_with DIR CHECK-IMPORT PIP-SPEC...: create DIR and pip install when CHECK fails
venv_with() {
    local dir="$1" check="$2"; shift 2
    if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "$check" 2>/dev/null; then
        log "$(basename "$dir") up to date"
        return 0
    fi
    log "creating $dir: pip install $*"
    [ -x "$dir/bin/python" ] || python3 -m venv "$dir"
    # (this machine's pip config may name local wheel folders that are absent: drop that warning)
    "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@" \
        2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
}

venv_with "$HERE/.venv-certbot" "import certbot, sys; sys.exit(0 if certbot.__version__ == '${CERTBOT_SPEC#certbot==}' or '${CERTBOT_SPEC}' == 'certbot' else 1)" "$CERTBOT_SPEC"
venv_with "$HERE/.venv-plot" "import matplotlib" "matplotlib"
log "certbot: $("$HERE/.venv-certbot/bin/certbot" --version 2>&1)"
# acme2certifier, the second ACME server of measurement 12 (shared/TESTBED.md section 8): its own venv
venv_with "$HERE/.venv-a2c" "import acme2certifier" "acme2certifier>=0.46,<0.47"
