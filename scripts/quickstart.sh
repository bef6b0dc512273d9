#!/usr/bin/env bash
# Builds weir, writes the example project (once) and runs it with `weir standalone`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
bash scripts/duckdb.sh   # DuckDB's shared library in .duckdb/ (cached)
cargo build --release --locked -p weir
weir="$CARGO_TARGET_DIR/release/weir"
[ -d example ] || "$weir" init example
echo "weir is at $weir (add it to PATH to type just 'weir')"
exec "$weir" --project example standalone
