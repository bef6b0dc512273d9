//! Backfill records and the audit log of use cases (who did what, when).

use crate::{Result, Store};
use sqlx::Row;

/// An action to record in the audit log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewEvent {
    pub event: String,
    pub owner: String,
    pub dag_id: Option<String>,
    pub run_id: Option<String>,
    pub task_id: Option<String>,
    pub extra: Option<serde_json::Value>,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLogRow {
    pub id: i64,
    pub dttm: i64,
    pub event: String,
    pub owner: String,
    pub dag_id: Option<String>,
    pub run_id: Option<String>,
    pub task_id: Option<String>,
    pub extra: Option<String>,
}

/// A backfill as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillRow {
    pub id: i64,
    pub dag_id: String,
    pub from_date: i64,
    pub to_date: i64,
    /// none (skip existing runs), failed (re-run failed ones) or completed (re-run all).
    pub reprocess_behavior: String,
    pub dag_run_conf: serde_json::Map<String, serde_json::Value>,
    pub created_at: i64,
    pub completed_at: Option<i64>,
    pub created_by: String,
}

const BACKFILL_COLUMNS: &str = "id, dag_id, from_date, to_date, reprocess_behavior, dag_run_conf, \
     created_at, completed_at, created_by";

fn backfill_row(r: &sqlx::any::AnyRow) -> Result<BackfillRow> {
    let conf: String = r.try_get("dag_run_conf")?;
    Ok(BackfillRow {
        id: r.try_get("id")?,
        dag_id: r.try_get("dag_id")?,
        from_date: r.try_get("from_date")?,
        to_date: r.try_get("to_date")?,
        reprocess_behavior: r.try_get("reprocess_behavior")?,
        dag_run_conf: serde_json::from_str(&conf).unwrap_or_default(),
        created_at: r.try_get("created_at")?,
        completed_at: r.try_get("completed_at")?,
        created_by: r.try_get("created_by")?,
    })
}

impl Store {
    /// Appends to the audit log.
    pub async fn record_event(&self, e: &NewEvent) -> Result<()> {
        sqlx::query(
            "INSERT INTO event_log (dttm, event, owner, dag_id, run_id, task_id, extra) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(weir_core::now_micros())
        .bind(&e.event)
        .bind(&e.owner)
        .bind(e.dag_id.as_deref())
        .bind(e.run_id.as_deref())
        .bind(e.task_id.as_deref())
        .bind(e.extra.as_ref().map(|v| v.to_string()))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The newest `limit` audit log entries, newest first.
    pub async fn event_log(&self, limit: i64) -> Result<Vec<EventLogRow>> {
        let rows = sqlx::query(
            "SELECT id, dttm, event, owner, dag_id, run_id, task_id, extra FROM event_log \
             ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EventLogRow {
                    id: r.try_get(0)?,
                    dttm: r.try_get(1)?,
                    event: r.try_get(2)?,
                    owner: r.try_get(3)?,
                    dag_id: r.try_get(4)?,
                    run_id: r.try_get(5)?,
                    task_id: r.try_get(6)?,
                    extra: r.try_get(7)?,
                })
            })
            .collect()
    }

    /// Creates a backfill record; its runs are created by the caller with its id.
    pub async fn create_backfill(
        &self,
        dag_id: &str,
        from_date: i64,
        to_date: i64,
        reprocess_behavior: &str,
        conf: &serde_json::Map<String, serde_json::Value>,
        created_by: &str,
    ) -> Result<BackfillRow> {
        let sql = format!(
            "INSERT INTO backfill (dag_id, from_date, to_date, reprocess_behavior, dag_run_conf, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {BACKFILL_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(dag_id)
            .bind(from_date)
            .bind(to_date)
            .bind(reprocess_behavior)
            .bind(serde_json::Value::Object(conf.clone()).to_string())
            .bind(weir_core::now_micros())
            .bind(created_by)
            .fetch_one(&self.pool)
            .await?;
        backfill_row(&row)
    }

    /// Backfills, newest first (of one DAG, or all).
    pub async fn backfills(&self, dag_id: Option<&str>) -> Result<Vec<BackfillRow>> {
        let sql = format!(
            "SELECT {BACKFILL_COLUMNS} FROM backfill WHERE ($1 IS NULL OR dag_id = $1) ORDER BY id DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(dag_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(backfill_row).collect()
    }

    /// Marks complete every open backfill none of whose runs is unfinished.
    pub async fn complete_backfills(&self) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE backfill SET completed_at = $1 WHERE completed_at IS NULL AND NOT EXISTS \
             (SELECT 1 FROM dag_run r WHERE r.backfill_id = backfill.id AND r.state IN ('queued', 'running'))",
        )
        .bind(weir_core::now_micros())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    /// Moves a run to another backfill (a backfill that re-runs an existing run adopts it).
    pub async fn set_run_backfill(&self, run_pk: i64, backfill_id: i64) -> Result<()> {
        sqlx::query("UPDATE dag_run SET backfill_id = $1 WHERE id = $2")
            .bind(backfill_id)
            .bind(run_pk)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Deletes every run of a DAG (with their task instances, tries and XComs); returns how many.
    pub async fn delete_runs(&self, dag_id: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM dag_run WHERE dag_id = $1")
            .bind(dag_id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }
}
