//! weir-models: a dbt-compatible models engine.
//!
//! Reads an unmodified dbt project (`project`: dbt_project.yml, profiles.yml, packages, models,
//! sources, seeds, snapshots, tests, macros, selectors), compiles its SQL with dbt's Jinja
//! (`jinja`: minijinja with mutable lists and dicts, `return()`, macro namespaces and
//! `adapter.dispatch`), and builds the graph against a warehouse. `steps` cuts a project into
//! the steps a scheduler runs one by one (the DAG loader's `expand: true`).
//!
//! Features: `engine` (default) is everything that touches a warehouse (`run` and the commands
//! built on it) and links DuckDB through `weir-warehouse`; without it the crate only reads,
//! checks and plans projects (`project`, `jinja`, `steps`), which is what the scheduler links.
//!
//! Architecture invariant: no metadata store, no scheduling; callers pass a project directory
//! and get back nodes, compiled SQL and results. The warehouse is reached only through the
//! adapter trait the caller provides.

pub mod jinja;
pub mod project;
// `engine`: the commands that touch a warehouse (and link DuckDB); without it, a project is
// only read and planned (`steps`), as the DAG loader does.
#[cfg(feature = "engine")]
pub mod defer;
#[cfg(feature = "engine")]
pub mod docs;
#[cfg(feature = "engine")]
pub mod freshness;
#[cfg(feature = "engine")]
pub mod retry;
#[cfg(feature = "engine")]
pub mod run;
#[cfg(feature = "engine")]
pub mod session;
#[cfg(feature = "engine")]
pub mod show;
pub mod steps;
