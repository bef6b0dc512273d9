//! weir's own `dbt` namespace: the built-in macros dbt projects and dbt_utils call
//! (`statement`, `run_query`, the cross-database type and function macros, and the default
//! `generate_*_name` macros), written for DuckDB and PostgreSQL.
//!
//! Each is dispatched (`adapter.dispatch('type_string', 'dbt')`) so a project or package may
//! supply `<adapter>__<name>` through its `dispatch:` config, as in dbt; a root-project macro of
//! the same bare name (e.g. `generate_schema_name`) wins over these.

use super::runtime::{INTERNAL_PACKAGE, MacroPackage};

const FILES: &[(&str, &str)] = &[
    ("<weir>/dbt/statement.sql", include_str!("statement.sql")),
    ("<weir>/dbt/types.sql", include_str!("types.sql")),
    ("<weir>/dbt/dates.sql", include_str!("dates.sql")),
    ("<weir>/dbt/strings.sql", include_str!("strings.sql")),
    ("<weir>/dbt/aggregates.sql", include_str!("aggregates.sql")),
    ("<weir>/dbt/naming.sql", include_str!("naming.sql")),
    ("<weir>/dbt/config.sql", include_str!("config.sql")),
];

/// The built-in package.
pub fn package() -> MacroPackage {
    FILES
        .iter()
        .fold(MacroPackage::new(INTERNAL_PACKAGE), |p, (path, source)| {
            p.with_file(path, source)
        })
}
