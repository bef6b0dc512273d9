//! weir-warehouse: the data warehouses tasks write to (DuckDB, PostgreSQL, SQLite) behind one
//! type, [`Warehouse`]: statements in one transaction, queries as JSON rows, bulk loads, the
//! materializations of the `sql` task (full refresh, incremental, replace partition), relations
//! and columns, identifier quoting.
//!
//! Must not know about DAGs, the metadata store or templates: callers hand it rendered SQL and
//! a [`weir_core::connection::Connection`].
//!
//! DuckDB allows one process to hold a database file; within the process every task shares one
//! instance per file (a connection each), and the file is released when no task uses it.

mod duck;
mod materialize;
mod sql;

pub use duck::close_idle as close_idle_databases;
pub use materialize::{Materialization, Partition, csv_rows, read_csv};

use serde_json::Value;
use std::path::Path;
use weir_core::connection::Connection;

/// What went wrong, phrased for the task log. Never contains a password.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    #[error("connection '{conn}': {message}")]
    Connect { conn: String, message: String },
    #[error("{message}")]
    Sql { message: String },
    #[error("{0}")]
    Usage(String),
}

pub type Result<T> = std::result::Result<T, WarehouseError>;

fn sql_error(e: impl std::fmt::Display) -> WarehouseError {
    WarehouseError::Sql {
        message: e.to_string(),
    }
}

/// The SQL dialect of a warehouse, where they differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    DuckDb,
    Postgres,
    Sqlite,
}

/// Rows of a query: column names and values as JSON.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Rows {
    /// The first cell of the first row (`None`: no row), as a scalar query gives it.
    pub fn first_value(&self) -> Option<&Value> {
        self.rows.first().and_then(|r| r.first())
    }

    /// Each row as a JSON object (column → value).
    pub fn objects(&self) -> Vec<Value> {
        self.rows
            .iter()
            .map(|r| {
                Value::Object(
                    self.columns
                        .iter()
                        .cloned()
                        .zip(r.iter().cloned())
                        .collect(),
                )
            })
            .collect()
    }

    /// The rows as a plain-text table for logs (at most `limit` rows).
    pub fn render(&self, limit: usize) -> String {
        let cell = |v: &Value| match v {
            Value::Null => "NULL".to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let shown: Vec<Vec<String>> = self
            .rows
            .iter()
            .take(limit)
            .map(|r| r.iter().map(cell).collect())
            .collect();
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for row in &shown {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count()).min(40);
            }
        }
        let line = |cells: Vec<String>| {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| {
                    let c: String = c.chars().take(*w).collect();
                    format!("{c:<w$}", w = *w)
                })
                .collect::<Vec<_>>()
                .join(" | ")
        };
        let mut out = vec![line(self.columns.clone())];
        out.push(
            widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("-+-"),
        );
        out.extend(shown.into_iter().map(line));
        out.join("\n")
    }
}

/// How a bulk load treats the table's existing rows.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum LoadMode {
    Replace,
    Append,
    /// Delete the rows whose columns equal these values, then insert (one transaction).
    /// Columns missing from the data are added with the given value.
    ReplacePartition(Partition),
}

/// An open warehouse: one connection, used by one task at a time.
pub struct Warehouse {
    conn_id: String,
    /// Where the data lives (type, host, port, database): tables of the same place share locks.
    place: String,
    inner: Inner,
}

/// Builds of one table in this process take turns: two runs of a backfill replacing partitions
/// of the same table would otherwise race between "does it exist" and "create", or conflict
/// inside DuckDB. Across processes PostgreSQL adds an advisory lock in the transaction.
static TABLE_LOCKS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
> = std::sync::LazyLock::new(Default::default);

enum Inner {
    Duck(duck::Duck),
    Sql(sql::SqlDb),
}

/// Connection types that name a warehouse.
pub const WAREHOUSE_TYPES: &[&str] = &["duckdb", "postgres", "sqlite"];

impl Warehouse {
    /// Opens the warehouse `conn` names; relative file paths are relative to `project_dir`.
    pub async fn open(conn: &Connection, project_dir: &Path) -> Result<Warehouse> {
        let connect_error = |message: String| WarehouseError::Connect {
            conn: conn.conn_id.clone(),
            message,
        };
        let inner = match conn.conn_type.as_str() {
            "duckdb" => {
                let path = conn.host.as_deref().unwrap_or(":memory:");
                let path = if path == ":memory:" {
                    None
                } else {
                    Some(project_dir.join(path))
                };
                Inner::Duck(duck::Duck::open(path).await.map_err(connect_error)?)
            }
            "postgres" | "sqlite" => Inner::Sql(
                sql::SqlDb::open(conn, project_dir)
                    .await
                    .map_err(connect_error)?,
            ),
            other => {
                return Err(connect_error(format!(
                    "connection type '{other}' is not a warehouse (use one of: {})",
                    WAREHOUSE_TYPES.join(", ")
                )));
            }
        };
        Ok(Warehouse {
            conn_id: conn.conn_id.clone(),
            place: format!(
                "{}://{}:{}/{}",
                conn.conn_type,
                conn.host.as_deref().unwrap_or(""),
                conn.port.unwrap_or(0),
                conn.schema.as_deref().unwrap_or("")
            ),
            inner,
        })
    }

    pub fn conn_id(&self) -> &str {
        &self.conn_id
    }

    pub fn dialect(&self) -> Dialect {
        match &self.inner {
            Inner::Duck(_) => Dialect::DuckDb,
            Inner::Sql(db) => db.dialect(),
        }
    }

    /// Runs `sql` (one or more statements) in one transaction: all or nothing.
    pub async fn execute(&self, sql: &str) -> Result<()> {
        self.execute_all(&[sql.to_string()]).await
    }

    /// Runs every text in order in one transaction: all or nothing.
    pub async fn execute_all(&self, statements: &[String]) -> Result<()> {
        match &self.inner {
            Inner::Duck(d) => d.execute_all(statements.to_vec()).await,
            Inner::Sql(db) => db.execute_all(statements).await,
        }
    }

    /// Runs one query and returns its rows.
    pub async fn query(&self, sql: &str) -> Result<Rows> {
        match &self.inner {
            Inner::Duck(d) => d.query(sql.to_string()).await,
            Inner::Sql(db) => db.query(sql).await,
        }
    }

    /// Quotes an identifier (`order` → `"order"`); a dotted name quotes each part.
    pub fn quote(&self, name: &str) -> String {
        quote_name(name)
    }

    /// Whether `table` (optionally `schema.table`) exists.
    pub async fn table_exists(&self, table: &str) -> Result<bool> {
        Ok(!self.columns(table).await?.is_empty())
    }

    /// The columns of `table` in order (empty when it does not exist).
    pub async fn columns(&self, table: &str) -> Result<Vec<String>> {
        let (schema, name) = split_table(table);
        let sql = match self.dialect() {
            Dialect::Sqlite => format!("SELECT name FROM pragma_table_info({})", literal(name)),
            Dialect::DuckDb | Dialect::Postgres => format!(
                "SELECT column_name FROM information_schema.columns WHERE table_name = {} AND table_schema = {} ORDER BY ordinal_position",
                literal(name),
                match schema {
                    Some(s) => literal(s),
                    None if self.dialect() == Dialect::Postgres => "current_schema()".into(),
                    None => "current_schema()".into(),
                }
            ),
        };
        let rows = self.query(&sql).await?;
        Ok(rows
            .rows
            .into_iter()
            .filter_map(|r| r.into_iter().next())
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect())
    }

    /// Tables and views, as `schema.name` (plain `name` on SQLite).
    pub async fn relations(&self) -> Result<Vec<String>> {
        let sql = match self.dialect() {
            Dialect::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name"
            }
            Dialect::DuckDb | Dialect::Postgres => {
                "SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema NOT IN ('information_schema', 'pg_catalog') ORDER BY 1"
            }
        };
        Ok(self
            .query(sql)
            .await?
            .rows
            .into_iter()
            .filter_map(|r| r.into_iter().next())
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect())
    }

    /// Builds `table` from `select` as `how` says, in one transaction.
    pub async fn materialize(
        &self,
        table: &str,
        select: &str,
        how: &Materialization,
    ) -> Result<()> {
        materialize::materialize(self, table, select, how).await
    }

    /// Loads rows into `table` (created when missing, with column types from the values).
    pub async fn load_rows(&self, table: &str, data: &Rows, mode: &LoadMode) -> Result<u64> {
        materialize::load_rows(self, table, data, mode).await
    }

    /// Loads a CSV file (with a header row) into `table`. DuckDB reads it natively; the others
    /// parse it and insert in batches.
    pub async fn load_csv(&self, table: &str, path: &Path, mode: &LoadMode) -> Result<u64> {
        materialize::load_csv(self, table, path, mode).await
    }

    /// Holds this process's lock on building `table`.
    pub(crate) async fn lock_table(&self, table: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let key = format!("{}#{table}", self.place);
        let lock = TABLE_LOCKS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    /// A statement that takes PostgreSQL's transaction-scoped lock on building `table`.
    pub(crate) fn advisory_lock(&self, table: &str) -> Option<String> {
        (self.dialect() == Dialect::Postgres)
            .then(|| format!("SELECT pg_advisory_xact_lock(hashtext({}))", literal(table)))
    }

    pub(crate) fn duck(&self) -> Option<&duck::Duck> {
        match &self.inner {
            Inner::Duck(d) => Some(d),
            Inner::Sql(_) => None,
        }
    }
}

/// `raw.user_event` → (Some("raw"), "user_event").
pub fn split_table(table: &str) -> (Option<&str>, &str) {
    match table.rsplit_once('.') {
        Some((schema, name)) => (Some(schema), name),
        None => (None, table),
    }
}

/// Quotes each dotted part of a name as an identifier.
pub fn quote_name(name: &str) -> String {
    name.split('.')
        .map(|part| format!("\"{}\"", part.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

/// A SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A JSON value as a SQL literal.
pub fn value_literal(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => literal(s),
        other => literal(&other.to_string()),
    }
}
