//! Work against a warehouse, planned in full: a `sql`, `check`, `http` or `models` task after
//! its templates rendered, or the query of a `sql` sensor. It is plain data, so that a worker
//! can hand it to the process that holds its warehouses ([`WarehouseHost`]): DuckDB lets one
//! process open a file, and the memory it keeps after a query belongs in a process that exits
//! when idle, not in the long-lived server.

use crate::check::CheckRun;
use crate::http::HttpRun;
use crate::models::Job;
use crate::sql::SqlRun;
use crate::{BoxFuture, Runtime};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What one try (or one sensor check) does against warehouses. `run` gives the XCom value, or
/// the message that fails the try.
#[derive(Serialize, Deserialize)]
pub enum WarehouseWork {
    Sql(SqlRun),
    Check(CheckRun),
    Http(HttpRun),
    Models(Job),
    /// The first cell of a query's first row (`None`: no row), as a `sql` sensor reads it.
    FirstValue {
        connection: String,
        sql: String,
    },
}

/// Each task type's run is one kind of work: its operator plans `run.into()`.
macro_rules! work_from {
    ($($run:ty => $kind:ident),*) => {$(
        impl From<$run> for WarehouseWork {
            fn from(run: $run) -> WarehouseWork {
                WarehouseWork::$kind(run)
            }
        }
    )*};
}
work_from!(SqlRun => Sql, CheckRun => Check, HttpRun => Http, Job => Models);

impl WarehouseWork {
    /// The connection ids the work opens, so that they can be resolved where the metadata
    /// store is and passed along.
    pub fn connections(&self) -> Vec<String> {
        match self {
            WarehouseWork::Sql(run) => vec![run.connection().to_string()],
            WarehouseWork::Check(run) => vec![run.connection().to_string()],
            WarehouseWork::Http(run) => run.connections(),
            // The models engine reads its profile, not weir's connections.
            WarehouseWork::Models(_) => Vec::new(),
            WarehouseWork::FirstValue { connection, .. } => vec![connection.clone()],
        }
    }

    /// Runs the work in this process.
    pub fn run(self, rt: &dyn Runtime) -> BoxFuture<'_, Result<Option<Value>, String>> {
        Box::pin(async move {
            match self {
                WarehouseWork::Sql(run) => run.run(rt).await,
                WarehouseWork::Check(run) => run.run(rt).await,
                WarehouseWork::Http(run) => run.run(rt).await,
                WarehouseWork::Models(job) => job.run(rt).await,
                WarehouseWork::FirstValue { connection, sql } => {
                    first_value(rt, &connection, &sql).await
                }
            }
        })
    }
}

async fn first_value(
    rt: &dyn Runtime,
    connection: &str,
    sql: &str,
) -> Result<Option<Value>, String> {
    let conn = rt.connection(connection).await?;
    let warehouse = weir_warehouse::Warehouse::open(&conn, rt.project_dir())
        .await
        .map_err(|e| format!("connection '{connection}': {e}"))?;
    let rows = warehouse
        .query(sql)
        .await
        .map_err(|e| format!("the query failed: {e}"))?;
    Ok(rows.first_value().cloned())
}

/// Where warehouse work runs: in this process ([`InProcess`]), or in a worker's warehouse
/// process. `rt` gives the try's log, its connections and the project.
pub trait WarehouseHost: Send + Sync {
    fn run<'a>(
        &'a self,
        work: WarehouseWork,
        rt: &'a dyn Runtime,
    ) -> BoxFuture<'a, Result<Option<Value>, String>>;
}

/// Warehouse work in the calling process (the CLI's own commands, and tests).
pub struct InProcess;

impl WarehouseHost for InProcess {
    fn run<'a>(
        &'a self,
        work: WarehouseWork,
        rt: &'a dyn Runtime,
    ) -> BoxFuture<'a, Result<Option<Value>, String>> {
        work.run(rt)
    }
}
