#!/usr/bin/env bash
# Runs the client conformance suite.
#
#   bash tests/clients/conformance/run.sh FAULTLINE_BINARY [VENV] [OUT_DIR] [run.py options...]
#
# VENV defaults to /tmp/conf-venv; it is created from requirements.txt when
# it does not exist. OUT_DIR defaults to target/conformance. The held-out
# litellm_proxy config runs the LiteLLM proxy from $CONFORMANCE_PROXY_VENV
# (default /tmp/proxy-venv), which run.py makes from requirements-proxy.txt
# when it does not exist.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fl="${1:?usage: run.sh FAULTLINE_BINARY [VENV] [OUT_DIR] [run.py options...]}"
venv="${2:-/tmp/conf-venv}"
out="${3:-target/conformance}"
shift $(( $# < 3 ? $# : 3 ))
if [ ! -x "$venv/bin/python" ]; then
  t0=$(date +%s)
  python3.11 -m venv "$venv" || python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$here/requirements.txt"
  echo "venv $venv made in $(( $(date +%s) - t0 ))s"
fi
exec "$venv/bin/python" "$here/run.py" "$fl" --out "$out" "$@"
