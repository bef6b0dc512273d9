#!/usr/bin/env bash
# The REST API against Airflow's own Python client: tests/api/airflow_client_check.py drives a
# `weir standalone` (debug binary) with apache-airflow-client 3.x from PyPI, in a venv outside
# the clone that is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
venv="${WEIR_API_VENV:-$HOME/.cache/weir/api-venv}"
if ! "$venv/bin/python" -c 'import airflow_client.client' 2>/dev/null; then
    echo "api: preparing the Python venv in $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'apache-airflow-client>=3.3,<4'
fi
export WEIR_BIN="${WEIR_BIN:-$CARGO_TARGET_DIR/debug/weir}"
[ -x "$WEIR_BIN" ] || cargo build -p weir --locked
exec "$venv/bin/python" tests/api/airflow_client_check.py "$WEIR_BIN"
