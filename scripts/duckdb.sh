#!/usr/bin/env bash
# Puts DuckDB's shared library (from the npm package @duckdb/node-bindings-linux-x64, which ships
# ICU, JSON and Parquet) in .duckdb/ for the build: .cargo/config.toml points DUCKDB_LIB_DIR there
# and the crates that link DuckDB add it as rpath. Idempotent; cached under ~/.cache/weir/duckdb.
# For a self-contained build instead: cargo build --release -p weir --features bundled (~30 min).
set -euo pipefail
cd "$(dirname "$0")/.."
version="1.5.6-r.1"
cache="${WEIR_CACHE:-$HOME/.cache/weir}/duckdb/$version"
if [ ! -f "$cache/libduckdb.so" ]; then
    echo "fetching libduckdb $version from the npm registry..." >&2
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "@duckdb/node-bindings-linux-x64@$version" >/dev/null 2>&1 && tar xzf ./*.tgz)
    mkdir -p "$cache"
    cp "$tmp/package/libduckdb.so" "$cache/libduckdb.so.tmp"
    mv "$cache/libduckdb.so.tmp" "$cache/libduckdb.so"
    rm -rf "$tmp"
fi
mkdir -p .duckdb
if [ ! -e .duckdb/libduckdb.so ] || ! cmp -s "$cache/libduckdb.so" .duckdb/libduckdb.so; then
    cp "$cache/libduckdb.so" .duckdb/libduckdb.so
fi
