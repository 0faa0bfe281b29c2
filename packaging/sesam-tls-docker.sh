#!/bin/sh
# sesam-tls from its container image, on a Sesam node. Install it as
# /usr/local/sbin/sesam-tls-docker (the systemd units and the cron entry in
# packaging/ call it by that name), then use it like the executable:
#
#   sesam-tls-docker issue -d node.example.com --email ops@example.com --agree-tos --verify 127.0.0.1:443
#   sesam-tls-docker status --verify 127.0.0.1:443
#   sesam-tls-docker renew          # what the timer runs, twice a day
#
# It is the one `docker run` line: -i hands it our stdin (`ensure --json` reads the desired
# state there, `import --password-stdin` the password; a timer's stdin is empty), the host's network (HTTP-01 on port 80,
# --verify on 127.0.0.1), the host's PID namespace (so that --http01 auto
# can tell that port 80 is held by the nginx container and stop it for the
# challenge), and the four folders sesam-tls reads and writes, mounted at
# the same paths, so every default path is right inside the container:
#   /sesam/nginx/conf/ssl     the ssl folder nginx serves
#   /etc/sesam-agent          the agent config (the folder: it is replaced atomically)
#   /var/lib/sesam-tls        sesam-tls's state (the deployed certificate, the ACME account)
#   /var/run/docker.sock      the Docker engine, to restart or reload the nginx container
#
# Limits of the image (it is FROM scratch: no shell): --deploy-hook and
# --failure-hook commands cannot run inside it, and files named by other
# options (--webroot, --metrics-file, --ca-bundle, an EAB key file) must be
# mounted too, e.g. SESAM_TLS_DOCKER_ARGS="-v /var/lib/node_exporter:/var/lib/node_exporter".
#
# The shell's outbound proxy (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) is passed in
# when set: `issue` records it, and the timer's `renew` replays it from the
# record, so the cron entry and the units need no proxy of their own.
set -eu
IMAGE="${SESAM_TLS_IMAGE:-sesam-tls:latest}"
mkdir -p /var/lib/sesam-tls
# shellcheck disable=SC2086 # SESAM_TLS_DOCKER_ARGS is a list of extra docker options
exec docker run --rm --network host --pid host -i \
    -e HTTPS_PROXY -e HTTP_PROXY -e NO_PROXY -e https_proxy -e http_proxy -e no_proxy \
    -v /sesam/nginx/conf/ssl:/sesam/nginx/conf/ssl \
    -v /etc/sesam-agent:/etc/sesam-agent \
    -v /var/lib/sesam-tls:/var/lib/sesam-tls \
    -v /var/run/docker.sock:/var/run/docker.sock \
    ${SESAM_TLS_DOCKER_ARGS:-} \
    "$IMAGE" "$@"
