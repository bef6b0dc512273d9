//! Running projects against DuckDB: jaffle_shop_duckdb end to end, failures and skips,
//! incremental models over two data phases, snapshots across a change.

mod common;
mod features;
mod hooks;
mod jaffle;
mod phases;
mod unit_tests;
