//! PostgreSQL and SQLite warehouses through sqlx. Queries use the simple query protocol, so
//! any statement text works and every value arrives as text or SQLite's storage class.

use crate::{Dialect, Result, Rows, sql_error};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
};
use sqlx::{Column, Row, TypeInfo, ValueRef};
use std::path::Path;
use std::time::Duration;
use weir_core::connection::Connection;

pub(crate) enum SqlDb {
    Pg(PgPool),
    Lite(SqlitePool),
}

impl SqlDb {
    pub(crate) async fn open(
        conn: &Connection,
        project_dir: &Path,
    ) -> std::result::Result<SqlDb, String> {
        match conn.conn_type.as_str() {
            "postgres" => {
                let mut options = PgConnectOptions::new()
                    .host(conn.host.as_deref().unwrap_or("localhost"))
                    .port(conn.port.unwrap_or(5432));
                if let Some(login) = &conn.login {
                    options = options.username(login);
                }
                if let Some(password) = &conn.password {
                    options = options.password(password);
                }
                if let Some(db) = &conn.schema {
                    options = options.database(db);
                }
                if let Some(mode) = conn.extra.get("sslmode").and_then(Value::as_str) {
                    options = options.ssl_mode(
                        mode.parse()
                            .map_err(|_| format!("sslmode '{mode}' is not one of disable, allow, prefer, require, verify-ca, verify-full"))?,
                    );
                }
                // One direct connection first: a wrong host or password fails at once with the
                // server's reason instead of retrying until the pool's timeout.
                let first = tokio::time::timeout(
                    Duration::from_secs(15),
                    <sqlx::postgres::PgConnection as sqlx::Connection>::connect_with(&options),
                )
                .await
                .map_err(|_| "timed out connecting to PostgreSQL after 15s".to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
                .map_err(|e| {
                    format!(
                        "cannot connect to PostgreSQL at {}:{}: {e}",
                        conn.host.as_deref().unwrap_or("localhost"),
                        conn.port.unwrap_or(5432)
                    )
                })?;
                let _ = sqlx::Connection::close(first).await;
                let pool = PgPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(Duration::from_secs(15))
                    .connect_lazy_with(options);
                Ok(SqlDb::Pg(pool))
            }
            _ => {
                let path = conn
                    .host
                    .as_deref()
                    .ok_or("a sqlite connection needs a path: sqlite:///abs/path.db or sqlite://relative.db")?;
                let path = project_dir.join(path);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                }
                // One pool per file in this process: concurrent tasks then queue on its
                // connections instead of racing to open the file (and set WAL) at once.
                // Opens queue on `OPENING`, so two tries that start together find one pool.
                static POOLS: std::sync::LazyLock<
                    std::sync::Mutex<std::collections::HashMap<std::path::PathBuf, SqlitePool>>,
                > = std::sync::LazyLock::new(Default::default);
                static OPENING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
                let _opening = OPENING.lock().await;
                if let Some(pool) = POOLS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&path)
                    .filter(|p| !p.is_closed())
                {
                    return Ok(SqlDb::Lite(pool.clone()));
                }
                let options = SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(15));
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                POOLS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(path, pool.clone());
                Ok(SqlDb::Lite(pool))
            }
        }
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            SqlDb::Pg(_) => Dialect::Postgres,
            SqlDb::Lite(_) => Dialect::Sqlite,
        }
    }

    pub(crate) async fn execute_all(&self, statements: &[String]) -> Result<()> {
        match self {
            SqlDb::Pg(pool) => {
                let mut tx = pool.begin().await.map_err(sql_error)?;
                for sql in statements {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.as_str()))
                        .execute(&mut *tx)
                        .await
                        .map_err(sql_error)?;
                }
                tx.commit().await.map_err(sql_error)
            }
            SqlDb::Lite(pool) => {
                // IMMEDIATE takes the write lock up front: a deferred transaction that reads
                // first fails with SQLITE_BUSY when another writer commits in between.
                let mut tx = pool
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(sql_error)?;
                for sql in statements {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.as_str()))
                        .execute(&mut *tx)
                        .await
                        .map_err(sql_error)?;
                }
                tx.commit().await.map_err(sql_error)
            }
        }
    }

    pub(crate) async fn query(&self, sql: &str) -> Result<Rows> {
        match self {
            SqlDb::Pg(pool) => {
                let rows: Vec<PgRow> = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .fetch_all(pool)
                    .await
                    .map_err(sql_error)?;
                collect(&rows, pg_value)
            }
            SqlDb::Lite(pool) => {
                let rows: Vec<SqliteRow> = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .fetch_all(pool)
                    .await
                    .map_err(sql_error)?;
                collect(&rows, sqlite_value)
            }
        }
    }
}

/// Rows of any driver as JSON, each value read by `value`.
fn collect<R: Row>(rows: &[R], value: fn(&R, usize) -> Result<Value>) -> Result<Rows> {
    let columns = rows
        .first()
        .map(|r| r.columns().iter().map(|c| c.name().to_string()).collect())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(
            (0..row.len())
                .map(|i| value(row, i))
                .collect::<Result<Vec<_>>>()?,
        );
    }
    Ok(Rows { columns, rows: out })
}

/// A PostgreSQL value in text format, typed by its column's type.
fn pg_value(row: &PgRow, i: usize) -> Result<Value> {
    let raw = row.try_get_raw(i).map_err(sql_error)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let type_name = raw.type_info().name().to_ascii_uppercase();
    let text: String = row.try_get_unchecked::<String, _>(i).map_err(sql_error)?;
    Ok(match type_name.as_str() {
        "INT2" | "INT4" | "INT8" | "SMALLINT" | "INT" | "INTEGER" | "BIGINT" => text
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or(Value::String(text)),
        "FLOAT4" | "FLOAT8" | "REAL" | "DOUBLE PRECISION" | "NUMERIC" => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::String(text)),
        "BOOL" | "BOOLEAN" => Value::Bool(text == "t" || text == "true"),
        "JSON" | "JSONB" => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        _ => Value::String(text),
    })
}

/// A SQLite value by its storage class.
fn sqlite_value(row: &SqliteRow, i: usize) -> Result<Value> {
    let raw = row.try_get_raw(i).map_err(sql_error)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let class = raw.type_info().name().to_ascii_uppercase();
    Ok(match class.as_str() {
        "INTEGER" => Value::from(row.try_get_unchecked::<i64, _>(i).map_err(sql_error)?),
        "REAL" => {
            serde_json::Number::from_f64(row.try_get_unchecked::<f64, _>(i).map_err(sql_error)?)
                .map(Value::Number)
                .unwrap_or(Value::Null)
        }
        "BLOB" => Value::String(
            String::from_utf8_lossy(&row.try_get_unchecked::<Vec<u8>, _>(i).map_err(sql_error)?)
                .into_owned(),
        ),
        _ => Value::String(row.try_get_unchecked::<String, _>(i).map_err(sql_error)?),
    })
}
