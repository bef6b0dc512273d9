#!/usr/bin/env bash
# The test command of the README: lint, then the whole test suite (SQLite and PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${WEIR_TEST_PG_URL:-}" ] || source .ci/services.sh
# Reuse one target directory across clones so CI and developers do not rebuild from scratch.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
bash scripts/duckdb.sh   # DuckDB's shared library in .duckdb/ (cached)
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --locked --bins
cargo test --workspace --locked
# The CLI suite's core cases once more with `weir standalone` on PostgreSQL metadata.
WEIR_TEST_METADATA=postgres cargo test -p weir --test it --locked -- running:: standalone:: fencing:: time:: assets::
# weir models against dbt-core's goldens (tests/conformance/): DuckDB, and shop on PostgreSQL.
bash scripts/conformance_ci.sh
# The REST API through apache-airflow-client, Airflow's typed Python client.
bash scripts/api_ci.sh
# The web UI in headless Chromium through Selenium (fails under CI=true without a browser).
bash scripts/ui_ci.sh
