#!/usr/bin/env bash
# The dbt conformance check of tests/conformance/ against the debug binary: every project on
# DuckDB and `shop` on PostgreSQL must build what dbt-core built (the checked-in goldens).
# Needs only Python's `duckdb` (the version weir links) and `psycopg2`, in a venv outside the
# clone that is reused; dbt itself is not installed (the goldens are the reference).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
venv="${WEIR_CONFORMANCE_VENV:-$HOME/.cache/weir/conformance-venv}"
if ! "$venv/bin/python" -c 'import duckdb, psycopg2, sys; sys.exit(duckdb.__version__ != "1.5.6")' 2>/dev/null; then
    echo "conformance: preparing the Python venv in $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check duckdb==1.5.6 psycopg2-binary
fi
# CI keeps the fixtures (the dbt_utils package tarball) beside the clone.
export WEIR_FIXTURES="${WEIR_FIXTURES:-$(cd .. && pwd)/shared/fixtures}"
export WEIR_BIN="${WEIR_BIN:-$CARGO_TARGET_DIR/debug/weir}"
[ -x "$WEIR_BIN" ] || cargo build -p weir --locked
if [ -n "${WEIR_TEST_PG_URL:-}" ]; then
    export WEIR_CONFORMANCE_PG_URL="${WEIR_CONFORMANCE_PG_URL:-$WEIR_TEST_PG_URL}"
fi
exec "$venv/bin/python" scripts/conformance_check.py --adapter all "$@"
