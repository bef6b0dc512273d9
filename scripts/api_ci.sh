#!/usr/bin/env bash
# The REST API against Airflow's own tools, on a `weir standalone` of the debug binary:
# - tests/api/airflow_client_check.py drives it with apache-airflow-client 3.x (typed models);
# - tests/api/schemathesis_check.py runs bounded schemathesis against weir's OpenAPI document
#   and against Airflow's (v2-rest-api-generated.yaml from the apache-airflow-core wheel).
# Everything comes from PyPI into a venv outside the clone that is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
venv="${WEIR_API_VENV:-$HOME/.cache/weir/api-venv}"
airflow_core=3.3.2
spec="$venv/airflow-$airflow_core-v2-rest-api-generated.yaml"
if ! "$venv/bin/python" -c 'import airflow_client.client, schemathesis, yaml' 2>/dev/null; then
    echo "api: preparing the Python venv in $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'apache-airflow-client>=3.3,<4' 'schemathesis>=4.32,<5'
fi
if [ ! -s "$spec" ]; then
    wheels="$(mktemp -d)"
    "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps -d "$wheels" "apache-airflow-core==$airflow_core"
    "$venv/bin/python" - "$wheels"/apache_airflow_core-*.whl "$spec" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    open(sys.argv[2], "wb").write(z.read("airflow/api_fastapi/core_api/openapi/v2-rest-api-generated.yaml"))
PY
    rm -rf "$wheels"
fi
export WEIR_BIN="${WEIR_BIN:-$CARGO_TARGET_DIR/debug/weir}"
[ -x "$WEIR_BIN" ] || cargo build -p weir --locked
"$venv/bin/python" tests/api/airflow_client_check.py "$WEIR_BIN"
"$venv/bin/python" tests/api/schemathesis_check.py "$WEIR_BIN" "$spec" 45
