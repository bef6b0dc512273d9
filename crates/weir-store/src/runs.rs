//! DAG runs: creation (with all their task instances, in one transaction) and run states.

use crate::tis::TaskSeed;
use crate::{Result, Store, parse_state, placeholders};
use sqlx::Row;
use weir_core::{RunState, RunType, TaskState, now_micros};

/// A run to create.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub dag_id: String,
    pub run_id: String,
    pub run_type: RunType,
    pub logical_date: i64,
    pub data_interval_start: i64,
    pub data_interval_end: i64,
    pub conf: serde_json::Map<String, serde_json::Value>,
    /// The backfill that created the run, if any.
    pub backfill_id: Option<i64>,
    /// The `trigger_dag` task instance that created the run, if any.
    pub parent_ti_id: Option<i64>,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub id: i64,
    pub dag_id: String,
    pub run_id: String,
    pub run_type: RunType,
    pub state: RunState,
    pub logical_date: i64,
    pub data_interval_start: i64,
    pub data_interval_end: i64,
    pub conf: serde_json::Map<String, serde_json::Value>,
    pub queued_at: i64,
    pub start_date: Option<i64>,
    pub end_date: Option<i64>,
    pub backfill_id: Option<i64>,
    /// The `trigger_dag` task instance that created the run, if any.
    pub parent_ti_id: Option<i64>,
}

const RUN_COLUMNS: &str = "id, dag_id, run_id, run_type, state, logical_date, data_interval_start, \
     data_interval_end, conf, queued_at, start_date, end_date, backfill_id, parent_ti_id";

pub(crate) fn run_row(row: &sqlx::any::AnyRow) -> Result<RunRow> {
    let conf: String = row.try_get("conf")?;
    Ok(RunRow {
        id: row.try_get("id")?,
        dag_id: row.try_get("dag_id")?,
        run_id: row.try_get("run_id")?,
        run_type: parse_state("dag_run", &row.try_get::<String, _>("run_type")?)?,
        state: parse_state("dag_run", &row.try_get::<String, _>("state")?)?,
        logical_date: row.try_get("logical_date")?,
        data_interval_start: row.try_get("data_interval_start")?,
        data_interval_end: row.try_get("data_interval_end")?,
        conf: serde_json::from_str(&conf).unwrap_or_default(),
        queued_at: row.try_get("queued_at")?,
        start_date: row.try_get("start_date")?,
        end_date: row.try_get("end_date")?,
        backfill_id: row.try_get("backfill_id")?,
        parent_ti_id: row.try_get("parent_ti_id")?,
    })
}

impl Store {
    /// Creates a queued run and one task instance per seed (state `none`), atomically.
    /// Returns `None` when a run with the same run id or logical date already exists: exactly
    /// one run per interval, however many schedulers race.
    pub async fn create_run(&self, run: &NewRun, tasks: &[TaskSeed]) -> Result<Option<RunRow>> {
        let mut tx = self.begin_write().await?;
        let created = insert_run(&mut tx, run, tasks).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Creates many runs with their task instances, a hundred to a transaction (a thousand
    /// DAGs due at the same minute); `None` for each that already existed.
    pub async fn create_runs(
        &self,
        runs: &[(NewRun, Vec<TaskSeed>)],
    ) -> Result<Vec<Option<RunRow>>> {
        let mut out = Vec::with_capacity(runs.len());
        for chunk in runs.chunks(100) {
            let mut tx = self.begin_write().await?;
            for (run, tasks) in chunk {
                out.push(insert_run(&mut tx, run, tasks).await?);
            }
            tx.commit().await?;
        }
        Ok(out)
    }

    pub async fn get_run(&self, dag_id: &str, run_id: &str) -> Result<Option<RunRow>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM dag_run WHERE dag_id = $1 AND run_id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(dag_id)
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_row).transpose()
    }

    pub async fn get_run_by_pk(&self, id: i64) -> Result<Option<RunRow>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM dag_run WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_row).transpose()
    }

    pub async fn run_at(&self, dag_id: &str, logical_date: i64) -> Result<Option<RunRow>> {
        let sql =
            format!("SELECT {RUN_COLUMNS} FROM dag_run WHERE dag_id = $1 AND logical_date = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(dag_id)
            .bind(logical_date)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_row).transpose()
    }

    /// Runs that `trigger_dag` task instances created, oldest first.
    pub async fn runs_triggered_by(&self, ti_ids: &[i64]) -> Result<Vec<RunRow>> {
        if ti_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM dag_run WHERE parent_ti_id IN ({}) ORDER BY id",
            placeholders(1, ti_ids.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ti_ids {
            q = q.bind(*id);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(run_row).collect()
    }

    /// The states of `task_id`'s instances (every item of a mapped task) in the run of
    /// `dag_id` at `logical_date`; empty when there is no such run or task instance. What an
    /// external-task sensor looks at.
    pub async fn task_states_at(
        &self,
        dag_id: &str,
        task_id: &str,
        logical_date: i64,
    ) -> Result<Vec<TaskState>> {
        let rows = sqlx::query(
            "SELECT ti.state FROM task_instance ti JOIN dag_run r ON r.id = ti.run_pk \
             WHERE r.dag_id = $1 AND r.logical_date = $2 AND ti.task_id = $3",
        )
        .bind(dag_id)
        .bind(logical_date)
        .bind(task_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| parse_state("task_instance", &r.try_get::<String, _>(0)?))
            .collect()
    }

    /// Runs of a DAG, newest logical date first.
    pub async fn list_runs(&self, dag_id: &str, limit: i64) -> Result<Vec<RunRow>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM dag_run WHERE dag_id = $1 ORDER BY logical_date DESC LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(dag_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run_row).collect()
    }

    /// `(dag_id, run_id, state)` of the newest `per_dag` runs of each of `dag_ids`, newest
    /// first within a DAG, in one statement (a page of the DAG list is one query, not one
    /// per DAG).
    pub async fn recent_run_states(
        &self,
        dag_ids: &[&str],
        per_dag: i64,
    ) -> Result<Vec<(String, String, RunState)>> {
        let mut out = Vec::new();
        for chunk in dag_ids.chunks(500) {
            let sql = format!(
                "SELECT dag_id, run_id, state FROM (SELECT dag_id, run_id, state, logical_date, \
                 ROW_NUMBER() OVER (PARTITION BY dag_id ORDER BY logical_date DESC) AS nth \
                 FROM dag_run WHERE dag_id IN ({})) AS recent WHERE nth <= ${} \
                 ORDER BY dag_id, logical_date DESC",
                crate::placeholders(1, chunk.len()),
                chunk.len() + 1
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for dag_id in chunk {
                q = q.bind(*dag_id);
            }
            for row in q.bind(per_dag).fetch_all(&self.pool).await? {
                out.push((
                    row.try_get(0)?,
                    row.try_get(1)?,
                    parse_state("dag_run", row.try_get::<&str, _>(2)?)?,
                ));
            }
        }
        Ok(out)
    }

    /// The newest `limit` runs (by logical date), of one DAG and in one state when given.
    pub async fn newest_runs(
        &self,
        dag_id: Option<&str>,
        state: Option<RunState>,
        limit: i64,
    ) -> Result<Vec<RunRow>> {
        let mut clauses = Vec::new();
        if dag_id.is_some() {
            clauses.push(format!("dag_id = ${}", clauses.len() + 1));
        }
        if state.is_some() {
            clauses.push(format!("state = ${}", clauses.len() + 1));
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM dag_run {filter} ORDER BY logical_date DESC, id DESC LIMIT ${}",
            clauses.len() + 1
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(d) = dag_id {
            q = q.bind(d);
        }
        if let Some(s) = state {
            q = q.bind(s.as_str());
        }
        let rows = q.bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(run_row).collect()
    }

    /// Every run in one of `states`, oldest logical date first.
    pub async fn runs_in_states(&self, states: &[RunState]) -> Result<Vec<RunRow>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM dag_run WHERE state IN ({}) ORDER BY logical_date, id",
            crate::placeholders(1, states.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for s in states {
            q = q.bind(s.as_str());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(run_row).collect()
    }

    /// How many runs each DAG has in `state`.
    pub async fn run_counts(&self, state: RunState) -> Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT dag_id, COUNT(*) FROM dag_run WHERE state = $1 GROUP BY dag_id")
                .bind(state.as_str())
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// The runs with these ids, by logical date.
    pub async fn runs_by_pks(&self, pks: &[i64]) -> Result<Vec<RunRow>> {
        let mut out = Vec::new();
        for chunk in pks.chunks(500) {
            let sql = format!(
                "SELECT {RUN_COLUMNS} FROM dag_run WHERE id IN ({}) ORDER BY logical_date, id",
                crate::placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for pk in chunk {
                q = q.bind(*pk);
            }
            for row in q.fetch_all(&self.pool).await? {
                out.push(run_row(&row)?);
            }
        }
        Ok(out)
    }

    /// The data interval of the newest scheduled run of a DAG (where the timetable resumes).
    pub async fn last_scheduled_interval(&self, dag_id: &str) -> Result<Option<(i64, i64)>> {
        let row = sqlx::query(
            "SELECT data_interval_start, data_interval_end FROM dag_run \
             WHERE dag_id = $1 AND run_type = 'scheduled' ORDER BY logical_date DESC LIMIT 1",
        )
        .bind(dag_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        })
    }

    /// The run of `dag_id` just before `logical_date`, if any (for `depends_on_past`).
    pub async fn previous_run(&self, dag_id: &str, logical_date: i64) -> Result<Option<RunRow>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM dag_run WHERE dag_id = $1 AND logical_date < $2 \
             ORDER BY logical_date DESC LIMIT 1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(dag_id)
            .bind(logical_date)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_row).transpose()
    }

    /// Ends a running run in `to` (success or failed) with its notifications, in one
    /// compare-and-set that also checks that no task instance of the run is unfinished: a
    /// clear that raced with the decision wins, and the run goes on.
    pub async fn finish_run(
        &self,
        run_pk: i64,
        to: RunState,
        messages: &[crate::NewMessage],
    ) -> Result<bool> {
        let now = now_micros();
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE dag_run SET state = $1, end_date = $2 WHERE id = $3 AND state = 'running' \
             AND NOT EXISTS (SELECT 1 FROM task_instance WHERE run_pk = $3 AND state NOT IN \
             ('success', 'failed', 'skipped', 'upstream_failed', 'removed'))",
        )
        .bind(to.as_str())
        .bind(now)
        .bind(run_pk)
        .execute(&mut *tx)
        .await?;
        let finished = done.rows_affected() == 1;
        if finished {
            crate::outbox::insert_messages(&mut tx, messages, now).await?;
        }
        tx.commit().await?;
        Ok(finished)
    }

    /// Records that a task instance missed its sla, with its notifications, once: a second
    /// call (another round, a restarted scheduler) changes nothing and returns false.
    pub async fn record_sla_miss(
        &self,
        run_pk: i64,
        task_id: &str,
        map_index: i64,
        messages: &[crate::NewMessage],
    ) -> Result<bool> {
        let now = now_micros();
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO sla_miss (run_pk, task_id, map_index, timestamp) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (run_pk, task_id, map_index) DO NOTHING",
        )
        .bind(run_pk)
        .bind(task_id)
        .bind(map_index)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let first = done.rows_affected() == 1;
        if first {
            crate::outbox::insert_messages(&mut tx, messages, now).await?;
        }
        tx.commit().await?;
        Ok(first)
    }

    /// `(run_pk, task_id, map_index)` of every recorded sla miss of these runs.
    pub async fn sla_misses(&self, run_pks: &[i64]) -> Result<Vec<(i64, String, i64)>> {
        let mut out = Vec::new();
        for chunk in run_pks.chunks(500) {
            let sql = format!(
                "SELECT run_pk, task_id, map_index FROM sla_miss WHERE run_pk IN ({})",
                crate::placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for pk in chunk {
                q = q.bind(*pk);
            }
            for r in q.fetch_all(&self.pool).await? {
                out.push((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?));
            }
        }
        Ok(out)
    }

    /// Moves a run from `from` to `to` if it is still in `from`; stamps start or end time.
    /// Starts queued runs in one statement: each that is still `queued` becomes `running`.
    /// Returns the ones that moved.
    pub async fn start_runs(&self, run_pks: &[i64]) -> Result<Vec<i64>> {
        let now = now_micros();
        let mut started = Vec::with_capacity(run_pks.len());
        for chunk in run_pks.chunks(500) {
            let sql = format!(
                "UPDATE dag_run SET state = 'running', start_date = COALESCE(start_date, $1), \
                 end_date = NULL WHERE state = 'queued' AND id IN ({}) RETURNING id",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
            for pk in chunk {
                q = q.bind(*pk);
            }
            for row in q.fetch_all(&self.writer).await? {
                started.push(row.try_get::<i64, _>(0)?);
            }
        }
        Ok(started)
    }

    pub async fn set_run_state(&self, run_pk: i64, from: RunState, to: RunState) -> Result<bool> {
        let now = now_micros();
        let sql = match to {
            RunState::Running => {
                "UPDATE dag_run SET state = $1, start_date = COALESCE(start_date, $2), end_date = NULL WHERE id = $3 AND state = $4"
            }
            RunState::Success | RunState::Failed => {
                "UPDATE dag_run SET state = $1, end_date = $2 WHERE id = $3 AND state = $4"
            }
            RunState::Queued => {
                "UPDATE dag_run SET state = $1, queued_at = $2, start_date = NULL, end_date = NULL WHERE id = $3 AND state = $4"
            }
        };
        let done = sqlx::query(sql)
            .bind(to.as_str())
            .bind(now)
            .bind(run_pk)
            .bind(from.as_str())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// Inserts one run (unless its id or logical date exists) and its task instances.
pub(crate) async fn insert_run(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    run: &NewRun,
    tasks: &[TaskSeed],
) -> Result<Option<RunRow>> {
    let sql = format!(
        "INSERT INTO dag_run (dag_id, run_id, run_type, state, logical_date, data_interval_start, \
             data_interval_end, conf, queued_at, backfill_id, parent_ti_id) \
             VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT DO NOTHING RETURNING {RUN_COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&run.dag_id)
        .bind(&run.run_id)
        .bind(run.run_type.as_str())
        .bind(run.logical_date)
        .bind(run.data_interval_start)
        .bind(run.data_interval_end)
        .bind(serde_json::Value::Object(run.conf.clone()).to_string())
        .bind(now_micros())
        .bind(run.backfill_id)
        .bind(run.parent_ti_id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let run_row = run_row(&row)?;
    crate::tis::insert_task_instances(tx, &run_row, tasks).await?;
    Ok(Some(run_row))
}
