#!/usr/bin/env bash
# Demo of sesam-tls against the loopback testbed (`make demo`).
set -euo pipefail
echo 'demo not written yet'
