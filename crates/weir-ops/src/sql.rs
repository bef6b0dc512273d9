//! `sql`: rendered SQL against a warehouse connection, in one transaction. `mode` says what the
//! SQL is: statements to run (`run`), or a SELECT that builds `table` by full refresh,
//! incremental merge on `unique_key`, or replacing one `partition`.

use crate::{OpError, Operator, Plan, PlanContext, Runtime};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use weir_spec::values::{SqlMode as Mode, SqlXcom as XcomOut};
use weir_warehouse::{Materialization, Warehouse};

pub struct Sql;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    connection: String,
    sql: String,
    mode: Option<Mode>,
    table: Option<String>,
    unique_key: Option<Keys>,
    partition: Option<Map<String, Value>>,
    xcom: Option<XcomOut>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Keys {
    One(String),
    Many(Vec<String>),
}

impl Keys {
    fn list(self) -> Vec<String> {
        match self {
            Keys::One(k) => vec![k],
            Keys::Many(k) => k,
        }
    }
}

impl Operator for Sql {
    fn name(&self) -> &'static str {
        "sql"
    }

    fn plan(&self, cx: &PlanContext<'_>) -> Result<Plan, OpError> {
        let config: Config = cx.config()?;
        let sql = cx.render_sql(&config.sql)?;
        let build = match config.mode.unwrap_or(Mode::Run) {
            Mode::Run => None,
            mode => {
                let table = config
                    .table
                    .as_deref()
                    .map(|t| cx.render(t))
                    .transpose()?
                    .ok_or_else(|| {
                        cx.config_error(format!("mode {mode} builds a table: set `table`"))
                    })?;
                let how = match mode {
                    Mode::FullRefresh => Materialization::FullRefresh,
                    Mode::Incremental => Materialization::Incremental {
                        unique_key: config.unique_key.map(Keys::list).unwrap_or_default(),
                    },
                    Mode::Run | Mode::ReplacePartition => {
                        let partition = config.partition.ok_or_else(|| {
                            cx.config_error("mode replace_partition needs `partition: {column: value}`, e.g. {event_date: \"{{ ds }}\"}")
                        })?;
                        let mut pairs = Vec::new();
                        for (col, value) in &partition {
                            pairs.push((col.clone(), cx.render_value(value)?));
                        }
                        Materialization::ReplacePartition(pairs)
                    }
                };
                Some((table, how))
            }
        };
        Ok(Plan::Warehouse(Box::new(
            SqlRun {
                task_id: cx.task.task_id.clone(),
                connection: config.connection,
                sql,
                build,
                xcom: config.xcom,
            }
            .into(),
        )))
    }
}

/// A planned `sql` task: rendered, ready to run where the warehouse is.
#[derive(Serialize, Deserialize)]
pub struct SqlRun {
    task_id: String,
    connection: String,
    sql: String,
    build: Option<(String, Materialization)>,
    xcom: Option<XcomOut>,
}

/// Opens the warehouse a task names, with errors that name the task and the connection.
pub(crate) async fn open_warehouse(
    rt: &dyn Runtime,
    task_id: &str,
    conn_id: &str,
) -> Result<Warehouse, String> {
    let conn = rt
        .connection(conn_id)
        .await
        .map_err(|e| format!("task '{task_id}': {e}"))?;
    Warehouse::open(&conn, rt.project_dir())
        .await
        .map_err(|e| format!("task '{task_id}': {e}"))
}

impl SqlRun {
    pub(crate) fn connection(&self) -> &str {
        &self.connection
    }

    pub(crate) async fn run(self, rt: &dyn Runtime) -> Result<Option<Value>, String> {
        let wh = open_warehouse(rt, &self.task_id, &self.connection).await?;
        let on = |e: weir_warehouse::WarehouseError| {
            format!(
                "task '{}' on connection '{}': {e}",
                self.task_id, self.connection
            )
        };
        match &self.build {
            None => {
                rt.log(&format!(
                    "running SQL on '{}':\n{}",
                    self.connection, self.sql
                ));
                if let Some(mode) = self.xcom {
                    // A query whose rows are the XCom value.
                    let rows = wh.query(&self.sql).await.map_err(on)?;
                    rt.log(&format!("{} rows", rows.rows.len()));
                    let objects = rows.objects();
                    return Ok(Some(match mode {
                        XcomOut::Rows => Value::Array(objects),
                        XcomOut::FirstRow => objects.into_iter().next().unwrap_or(Value::Null),
                    }));
                }
                wh.execute(&self.sql).await.map_err(on)?;
                rt.log("committed");
            }
            Some((table, how)) => {
                rt.log(&format!(
                    "building {table} ({}) on '{}' from:\n{}",
                    describe(how),
                    self.connection,
                    self.sql
                ));
                wh.materialize(table, &self.sql, how).await.map_err(on)?;
                let count = wh
                    .query(&format!("SELECT count(*) AS n FROM {}", wh.quote(table)))
                    .await
                    .map_err(on)?;
                let n = count.first_value().cloned().unwrap_or(Value::Null);
                rt.log(&format!("committed: {table} has {n} rows"));
            }
        }
        Ok(None)
    }
}

fn describe(how: &Materialization) -> String {
    match how {
        Materialization::FullRefresh => "full refresh".into(),
        Materialization::Incremental { unique_key } if unique_key.is_empty() => {
            "incremental, append".into()
        }
        Materialization::Incremental { unique_key } => {
            format!("incremental on {}", unique_key.join(", "))
        }
        Materialization::ReplacePartition(p) => format!(
            "replace partition {}",
            p.iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
