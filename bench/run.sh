#!/usr/bin/env bash
# Builds weir in release mode and runs every benchmark; prints a table.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
bash scripts/duckdb.sh   # DuckDB's shared library in .duckdb/ (cached)
cargo build --release --locked -p weir
exec python3 bench/run.py --weir "$CARGO_TARGET_DIR/release/weir" "$@"
