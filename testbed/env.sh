# Source me:  . testbed/env.sh
# Exports where the loopback testbed lives and how to reach it.
# (Only variable definitions here: safe to source from any shell.)
export SESAM_TESTBED_DIR="${SESAM_TESTBED_DIR:-/tmp/sesam-testbed}"
export DOCKER_HOST="unix://${SESAM_TESTBED_DIR}/dockerd/docker.sock"
export PEBBLE_CA_BUNDLE="${SESAM_TESTBED_DIR}/pebble/api-ca.pem"
export PEBBLE_DIRECTORY="https://127.0.0.1:${PEBBLE_PORT:-14000}/dir"
