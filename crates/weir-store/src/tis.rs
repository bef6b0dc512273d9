//! Task instances: batched compare-and-set transitions, the one-statement claim, heartbeats,
//! zombies, tries and XComs.

use crate::runs::RunRow;
use crate::{Backend, Result, Store, parse_state, placeholders};
use sqlx::{Any, Row, Transaction};
use std::collections::HashMap;
use weir_core::{Decision, TaskState, now_micros};

/// What a new task instance needs from its task definition.
#[derive(Debug, Clone)]
pub struct TaskSeed {
    pub task_id: String,
    pub retries: u32,
    pub pool: String,
    pub pool_slots: u32,
    pub priority_weight: i64,
    pub queue: String,
}

impl From<&weir_core::Task> for TaskSeed {
    fn from(t: &weir_core::Task) -> Self {
        TaskSeed {
            task_id: t.task_id.clone(),
            retries: t.retries,
            pool: t.pool.clone(),
            pool_slots: t.pool_slots,
            priority_weight: t.priority_weight,
            queue: t.queue.clone(),
        }
    }
}

/// The part of a task instance a grid cell shows.
#[derive(Debug, Clone, PartialEq)]
pub struct TiCell {
    pub run_pk: i64,
    pub task_id: String,
    pub map_index: i64,
    pub state: TaskState,
    pub start_date: Option<i64>,
    pub end_date: Option<i64>,
}

/// A task instance as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TiRow {
    pub id: i64,
    pub run_pk: i64,
    pub dag_id: String,
    pub run_id: String,
    pub task_id: String,
    /// -1 for an unmapped task; the item's index for a mapped one (as Airflow).
    pub map_index: i64,
    pub state: TaskState,
    pub try_number: i64,
    pub max_tries: i64,
    pub pool: String,
    pub pool_slots: i64,
    pub priority_weight: i64,
    pub queue: String,
    pub worker: Option<String>,
    pub pid: Option<i64>,
    pub queued_at: Option<i64>,
    pub start_date: Option<i64>,
    pub end_date: Option<i64>,
    pub heartbeat: Option<i64>,
    pub next_retry_at: Option<i64>,
    /// What a control-flow task decided about its downstream tasks, recorded with its
    /// success; the scheduler applies it.
    pub decision: Option<Decision>,
    /// Why the instance was skipped by another task's decision.
    pub reason: Option<String>,
    /// The item of a mapped task's instance (`{{ item }}`), fixed when the task expanded.
    pub map_item: Option<serde_json::Value>,
    /// What a waiting sensor checks (`deferred`, `up_for_reschedule`): the JSON the worker
    /// recorded with its wait, read back by the triggerer and by the sensor's next try. Kept
    /// as text: parsed, it is seven times the size, and a scheduler holds ten thousand waiting
    /// instances it never reads this of.
    pub sensor: Option<String>,
}

impl TiRow {
    /// The log file of this instance's current try under `log_dir`.
    pub fn log_file(&self, log_dir: &std::path::Path) -> std::path::PathBuf {
        weir_core::log_path(
            log_dir,
            &self.dag_id,
            &self.run_id,
            &self.task_id,
            self.map_index,
            self.try_number,
        )
    }
}

/// A task instance a worker has claimed: it is `running` with a new try number.
#[derive(Debug, Clone)]
pub struct ClaimedTi {
    pub ti: TiRow,
    /// Whether its run had any XCom when it was claimed: a try whose run has none does not
    /// read them (the usual first task, and every task of a run that passes nothing on).
    pub run_has_xcom: bool,
}

impl std::ops::Deref for ClaimedTi {
    type Target = TiRow;
    fn deref(&self) -> &TiRow {
        &self.ti
    }
}

/// A compare-and-set move of one task instance from `from` to `to`.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub ti_id: i64,
    pub from: TaskState,
    pub to: TaskState,
    /// For `up_for_retry`: when the next try may start.
    pub next_retry_at: Option<i64>,
    /// For a finished state: why (a skip by a control-flow task's decision). A move to any
    /// finished state without one clears the last reason.
    pub reason: Option<String>,
}

/// The end of one try: from `running` (and this try number) to `state`, with the try's XCom
/// value, written in the same transaction so that a superseded try cannot store one. A sensor
/// that waits ends its try's turn too: `deferred` (the triggerer checks it from now on) or
/// `up_for_reschedule` (its slot is given back, and the try number with it: a reschedule is
/// not a retry), with what it waits for in `sensor`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Finish {
    pub ti_id: i64,
    pub try_number: i64,
    pub state: TaskState,
    pub next_retry_at: Option<i64>,
    pub xcom: Option<serde_json::Value>,
    /// A control-flow task's decision, recorded with its success.
    pub decision: Option<Decision>,
    /// Side effects of this outcome (notifications), written only if it is recorded.
    pub messages: Vec<crate::NewMessage>,
    /// Why the instance is in `state` (what a sensor waits for, why it was skipped).
    pub reason: Option<String>,
    /// For `deferred` and `up_for_reschedule`: what the sensor waits for (kept while it waits).
    pub sensor: Option<serde_json::Value>,
    /// The task or run in the store the sensor watches (see the `sensor_key` column).
    pub sensor_key: Option<String>,
}

impl Finish {
    /// A waiting outcome: the try has not ended (a reschedule's next poke and a deferral's
    /// triggerer go on with it) and keeps what its sensor waits for.
    fn waits(&self) -> bool {
        matches!(self.state, TaskState::UpForReschedule | TaskState::Deferred)
    }
}

/// What became of a [`Finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// The try still owned its task instance: the state (and XCom) are recorded.
    Applied,
    /// The instance was cleared while the try ran (`restarting`): it is reset to `none` to
    /// run anew, and the try's outcome is dropped.
    Restarted,
    /// The try no longer owned the instance (reaped, or retried elsewhere): nothing changed.
    Lost,
}

/// See [`Store::capacity_counts`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CapacityCounts {
    pub dag_active: Vec<(String, i64)>,
    pub pool_used: Vec<(String, i64)>,
    pub pools: Vec<(String, i64)>,
}

/// One try of a task instance, for audits (who ran it, when).
#[derive(Debug, Clone, PartialEq)]
pub struct TryRow {
    pub ti_id: i64,
    pub task_id: String,
    pub try_number: i64,
    pub worker: String,
    pub start_date: i64,
    pub end_date: Option<i64>,
    pub state: String,
}

const TI_COLUMNS: &str = "id, run_pk, dag_id, run_id, task_id, map_index, state, try_number, max_tries, pool, \
     pool_slots, priority_weight, queue, worker, pid, queued_at, start_date, end_date, heartbeat, next_retry_at, \
     decision, reason, map_item, sensor";

fn ti_row(row: &sqlx::any::AnyRow) -> Result<TiRow> {
    Ok(TiRow {
        id: row.try_get("id")?,
        run_pk: row.try_get("run_pk")?,
        dag_id: row.try_get("dag_id")?,
        run_id: row.try_get("run_id")?,
        task_id: row.try_get("task_id")?,
        map_index: row.try_get("map_index")?,
        state: parse_state("task_instance", &row.try_get::<String, _>("state")?)?,
        try_number: row.try_get("try_number")?,
        max_tries: row.try_get("max_tries")?,
        pool: row.try_get("pool")?,
        pool_slots: row.try_get("pool_slots")?,
        priority_weight: row.try_get("priority_weight")?,
        queue: row.try_get("queue")?,
        worker: row.try_get("worker")?,
        pid: row.try_get("pid")?,
        queued_at: row.try_get("queued_at")?,
        start_date: row.try_get("start_date")?,
        end_date: row.try_get("end_date")?,
        heartbeat: row.try_get("heartbeat")?,
        next_retry_at: row.try_get("next_retry_at")?,
        decision: row
            .try_get::<Option<String>, _>("decision")?
            .as_deref()
            .and_then(Decision::from_json),
        reason: row.try_get("reason")?,
        map_item: row
            .try_get::<Option<String>, _>("map_item")?
            .and_then(|text| serde_json::from_str(&text).ok()),
        sensor: row.try_get("sensor")?,
    })
}

/// A `(run_pk, id, state)` row.
fn state_triple(row: &sqlx::any::AnyRow) -> Result<(i64, i64, TaskState)> {
    Ok((
        row.try_get(0)?,
        row.try_get(1)?,
        parse_state("task_instance", &row.try_get::<String, _>(2)?)?,
    ))
}

/// Rows per multi-row INSERT: well under SQLite's and PostgreSQL's bound-parameter limits.
const INSERT_CHUNK: usize = 100;
/// Finishes per statement: nine parameters each, well under SQLite's and PostgreSQL's limits.
const FINISH_CHUNK: usize = 200;

pub(crate) async fn insert_task_instances(
    tx: &mut Transaction<'static, Any>,
    run: &RunRow,
    tasks: &[TaskSeed],
) -> Result<()> {
    const COLS: usize = 9;
    for chunk in tasks.chunks(INSERT_CHUNK) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("({}, 'none')", placeholders(i * COLS + 1, COLS)))
            .collect();
        let sql = format!(
            "INSERT INTO task_instance (run_pk, dag_id, run_id, task_id, max_tries, pool, pool_slots, \
             priority_weight, queue, state) VALUES {}",
            values.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for t in chunk {
            q = q
                .bind(run.id)
                .bind(&run.dag_id)
                .bind(&run.run_id)
                .bind(&t.task_id)
                .bind(t.retries as i64)
                .bind(&t.pool)
                .bind(t.pool_slots as i64)
                .bind(t.priority_weight)
                .bind(&t.queue);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

impl Store {
    /// Task instances of one run, in insertion (file) order.
    pub async fn task_instances(&self, run_pk: i64) -> Result<Vec<TiRow>> {
        let sql = format!("SELECT {TI_COLUMNS} FROM task_instance WHERE run_pk = $1 ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(run_pk)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(ti_row).collect()
    }

    /// Task instances of several runs at once, ordered by run and id.
    pub async fn task_instances_of_runs(&self, run_pks: &[i64]) -> Result<Vec<TiRow>> {
        let mut out = Vec::new();
        for chunk in run_pks.chunks(500) {
            let sql = format!(
                "SELECT {TI_COLUMNS} FROM task_instance WHERE run_pk IN ({}) ORDER BY run_pk, id",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for pk in chunk {
                q = q.bind(*pk);
            }
            for row in q.fetch_all(&self.pool).await? {
                out.push(ti_row(&row)?);
            }
        }
        Ok(out)
    }

    /// What a grid cell shows of each task instance of `run_pks`: a narrow read, for pages
    /// of 25 runs × 1,000 tasks.
    pub async fn ti_cells_of_runs(&self, run_pks: &[i64]) -> Result<Vec<TiCell>> {
        let mut out = Vec::new();
        for chunk in run_pks.chunks(500) {
            let sql = format!(
                "SELECT run_pk, task_id, map_index, state, start_date, end_date \
                 FROM task_instance WHERE run_pk IN ({})",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for pk in chunk {
                q = q.bind(*pk);
            }
            for row in q.fetch_all(&self.pool).await? {
                out.push(TiCell {
                    run_pk: row.try_get(0)?,
                    task_id: row.try_get(1)?,
                    map_index: row.try_get(2)?,
                    state: parse_state("task_instance", row.try_get::<&str, _>(3)?)?,
                    start_date: row.try_get(4)?,
                    end_date: row.try_get(5)?,
                });
            }
        }
        Ok(out)
    }

    pub async fn task_instance(&self, ti_id: i64) -> Result<Option<TiRow>> {
        let sql = format!("SELECT {TI_COLUMNS} FROM task_instance WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ti_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(ti_row).transpose()
    }

    /// Applies compare-and-set transitions in one transaction, one statement per kind of move
    /// (same `from`, `to` and retry time) rather than one per task instance. Returns, per
    /// transition, whether the row moved (false: it was no longer in `from`).
    pub async fn apply_transitions(&self, moves: &[Transition]) -> Result<Vec<bool>> {
        if moves.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_micros();
        // (from, to, next_retry_at, reason) and the instances that make that move.
        type Kind<'a> = (TaskState, TaskState, Option<i64>, Option<&'a str>);
        let mut groups: Vec<(Kind, Vec<i64>)> = Vec::new();
        for m in moves {
            let key = (m.from, m.to, m.next_retry_at, m.reason.as_deref());
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, ids)) => ids.push(m.ti_id),
                None => groups.push((key, vec![m.ti_id])),
            }
        }
        // One statement (the usual round: a chain's next task, a fan-out's next batch) is
        // atomic on its own: no transaction around it, two round trips fewer.
        let statements: usize = groups.iter().map(|(_, ids)| ids.len().div_ceil(500)).sum();
        let mut tx = match statements {
            1 => None,
            _ => Some(self.begin_write().await?),
        };
        let mut moved_ids = std::collections::HashSet::with_capacity(moves.len());
        for ((from, to, next_retry_at, reason), ids) in &groups {
            // $1 state, $2 next_retry_at, $3 from, [$4 now, [$5 reason]], then the ids.
            let (set, with_now, with_reason) = match to {
                TaskState::Queued => (
                    "state = $1, next_retry_at = $2, queued_at = $4",
                    true,
                    false,
                ),
                // Finished without a try (an `empty` task the scheduler ends, a skip, a
                // removal): its start is its end.
                s if s.is_finished() => (
                    "state = $1, next_retry_at = $2, start_date = COALESCE(start_date, $4), end_date = $4, \
                     reason = $5",
                    true,
                    true,
                ),
                TaskState::None => (
                    "state = $1, next_retry_at = $2, queued_at = NULL, start_date = NULL, end_date = NULL, \
                     heartbeat = NULL, worker = NULL, pid = NULL, decision = NULL, reason = NULL, sensor = NULL, sensor_key = NULL",
                    false,
                    false,
                ),
                _ => ("state = $1, next_retry_at = $2", false, false),
            };
            let first_id = 4 + with_now as usize + with_reason as usize;
            for chunk in ids.chunks(500) {
                let sql = format!(
                    "UPDATE task_instance SET {set} WHERE state = $3 AND id IN ({}) RETURNING id",
                    placeholders(first_id, chunk.len())
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(to.as_str())
                    .bind(*next_retry_at)
                    .bind(from.as_str());
                if with_now {
                    q = q.bind(now);
                }
                if with_reason {
                    q = q.bind(*reason);
                }
                for id in chunk {
                    q = q.bind(*id);
                }
                let rows = match tx.as_mut() {
                    Some(tx) => q.fetch_all(&mut **tx).await?,
                    None => q.fetch_all(&self.writer).await?,
                };
                for row in rows {
                    moved_ids.insert(row.try_get::<i64, _>(0)?);
                }
            }
        }
        if let Some(tx) = tx {
            tx.commit().await?;
        }
        Ok(moves.iter().map(|m| moved_ids.contains(&m.ti_id)).collect())
    }

    /// Expands the unmapped instance `ti` of a mapped task into one instance per item, in one
    /// transaction: `ti` itself becomes item 0 (compare-and-set from `none` at map index -1)
    /// and items 1.. are inserted beside it in state `none`, with its pool, queue, priority
    /// and tries. False when `ti` had moved (another scheduler expanded it, a clear, a mark):
    /// nothing changed. `items` must not be empty (an empty list skips the task instead).
    pub async fn expand_mapped(&self, ti: &TiRow, items: &[serde_json::Value]) -> Result<bool> {
        let Some((first, rest)) = items.split_first() else {
            return Ok(false);
        };
        let mut tx = self.begin_write().await?;
        let moved = sqlx::query(
            "UPDATE task_instance SET map_index = 0, map_item = $1 \
             WHERE id = $2 AND map_index = -1 AND state = 'none'",
        )
        .bind(first.to_string())
        .bind(ti.id)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            return Ok(false);
        }
        const COLS: usize = 11;
        let numbered: Vec<(i64, &serde_json::Value)> = rest
            .iter()
            .enumerate()
            .map(|(i, v)| (i as i64 + 1, v))
            .collect();
        for chunk in numbered.chunks(INSERT_CHUNK) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("({}, 'none')", placeholders(i * COLS + 1, COLS)))
                .collect();
            let sql = format!(
                "INSERT INTO task_instance (run_pk, dag_id, run_id, task_id, map_index, map_item, \
                 max_tries, pool, pool_slots, priority_weight, queue, state) VALUES {}",
                values.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (index, item) in chunk {
                q = q
                    .bind(ti.run_pk)
                    .bind(&ti.dag_id)
                    .bind(&ti.run_id)
                    .bind(&ti.task_id)
                    .bind(*index)
                    .bind(item.to_string())
                    .bind(ti.max_tries)
                    .bind(&ti.pool)
                    .bind(ti.pool_slots)
                    .bind(ti.priority_weight)
                    .bind(&ti.queue);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Claims up to `limit` queued task instances for `worker`, highest priority first, in one
    /// statement: they become `running` with their try number incremented. `queues` empty
    /// means any queue; `run_pks` non-empty limits the claim to those runs (in-process runs of
    /// `dags test` and `backfill`). On PostgreSQL concurrent claimers skip each other's rows
    /// (`FOR UPDATE SKIP LOCKED`); SQLite serialises writers.
    pub async fn claim(
        &self,
        worker: &str,
        queues: &[String],
        run_pks: &[i64],
        limit: i64,
    ) -> Result<Vec<ClaimedTi>> {
        let now = now_micros();
        let mut filter = String::new();
        if !queues.is_empty() {
            filter.push_str(&format!(
                " AND queue IN ({})",
                placeholders(4, queues.len())
            ));
        }
        if !run_pks.is_empty() {
            filter.push_str(&format!(
                " AND run_pk IN ({})",
                placeholders(4 + queues.len(), run_pks.len())
            ));
        }
        let (lock, materialized) = match self.backend {
            Backend::Postgres => (" FOR UPDATE SKIP LOCKED", "MATERIALIZED "),
            Backend::Sqlite => ("", ""),
        };
        // The pick is a materialized CTE: as a plain `IN (SELECT ... LIMIT n SKIP LOCKED)`,
        // PostgreSQL may run the subquery more than once, and each run skips the rows the
        // last one locked, so a claim of one could take two (seen when an index changed the
        // plan).
        let sql = format!(
            "WITH picked AS {materialized}(SELECT id FROM task_instance WHERE state = 'queued'{filter} \
             ORDER BY priority_weight DESC, queued_at, id LIMIT $3{lock}) \
             UPDATE task_instance SET state = 'running', try_number = try_number + 1, worker = $1, \
             start_date = $2, heartbeat = $2, end_date = NULL, pid = NULL, next_retry_at = NULL \
             WHERE id IN (SELECT id FROM picked) AND state = 'queued' \
             RETURNING {TI_COLUMNS}, \
             CAST(CASE WHEN EXISTS (SELECT 1 FROM xcom x WHERE x.run_pk = task_instance.run_pk) THEN 1 ELSE 0 END AS BIGINT) AS run_has_xcom"
        );
        let mut tx = self.begin_write().await?;
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(worker)
            .bind(now)
            .bind(limit);
        for queue in queues {
            q = q.bind(queue);
        }
        for pk in run_pks {
            q = q.bind(*pk);
        }
        let rows = q.fetch_all(&mut *tx).await?;
        let claimed: Vec<ClaimedTi> = rows
            .iter()
            .map(|r| {
                Ok(ClaimedTi {
                    ti: ti_row(r)?,
                    run_has_xcom: r.try_get::<i64, _>("run_has_xcom")? != 0,
                })
            })
            .collect::<Result<_>>()?;
        for chunk in claimed.chunks(INSERT_CHUNK) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("({}, 'running')", placeholders(i * 4 + 1, 4)))
                .collect();
            let sql = format!(
                "INSERT INTO task_try (ti_id, try_number, worker, start_date, state) VALUES {} \
                 ON CONFLICT (ti_id, try_number) DO UPDATE SET worker = excluded.worker, end_date = NULL, \
                 state = 'running'",
                values.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for ti in chunk {
                q = q.bind(ti.id).bind(ti.try_number).bind(worker).bind(now);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// Records the process (group) ids of running tries, `(ti_id, try_number, pid)`, in one
    /// statement per three hundred. A try that no longer runs keeps no pid.
    pub async fn set_pids(&self, pids: &[(i64, i64, i64)]) -> Result<()> {
        for chunk in pids.chunks(300) {
            let values = crate::typed_values(1, &["BIGINT", "BIGINT", "BIGINT"], chunk.len());
            let sql = format!(
                "UPDATE task_instance SET pid = v.column3 FROM (VALUES {values}) AS v \
                 WHERE task_instance.id = v.column1 AND task_instance.try_number = v.column2 \
                 AND task_instance.state = 'running'"
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (ti_id, try_number, pid) in chunk {
                q = q.bind(*ti_id).bind(*try_number).bind(*pid);
            }
            q.execute(&self.writer).await?;
        }
        Ok(())
    }

    /// Refreshes the heartbeat of every try `worker` still owns and returns those tries as
    /// `(ti_id, try_number)`. A try the worker runs that is missing from the answer was
    /// reaped, cleared or retried elsewhere: the worker must stop it.
    pub async fn heartbeat_tries(&self, worker: &str) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query(
            "UPDATE task_instance SET heartbeat = $1 WHERE worker = $2 AND state = 'running' \
             RETURNING id, try_number",
        )
        .bind(now_micros())
        .bind(worker)
        .fetch_all(&self.writer)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Ends tries in one transaction. Each moves from `running` at its try number, on this
    /// worker, to its state, and its XCom is stored with it; a try whose instance was cleared
    /// meanwhile (`restarting`) resets it to `none` instead. See [`Finished`].
    pub async fn finish(&self, worker: &str, finishes: &[Finish]) -> Result<Vec<Finished>> {
        self.finish_tries(Some(worker), TaskState::Running, finishes)
            .await
    }

    /// Ends tries of zombies (whatever worker held them), as [`Store::finish`] does.
    pub async fn finish_zombies(&self, finishes: &[Finish]) -> Result<Vec<Finished>> {
        self.finish_tries(None, TaskState::Running, finishes).await
    }

    /// Ends deferred tries (the triggerer saw their condition met, failed or timed out): each
    /// moves from `deferred` at its try number, as [`Store::finish`] moves from `running`.
    /// A clear or a mark meanwhile wins: that finish is [`Finished::Lost`].
    pub async fn finish_deferred(&self, finishes: &[Finish]) -> Result<Vec<Finished>> {
        self.finish_tries(None, TaskState::Deferred, finishes).await
    }

    /// Deferred instances due for a check at `now`, soonest first.
    pub async fn due_deferred(&self, now: i64, limit: i64) -> Result<Vec<TiRow>> {
        let sql = format!(
            "SELECT {TI_COLUMNS} FROM task_instance WHERE state = 'deferred' AND next_retry_at <= $1 \
             ORDER BY next_retry_at LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(ti_row).collect()
    }

    /// Brings forward the next check of deferred instances that watch a task instance or a
    /// run that ended at or after `since` (their `sensor_key`): the end of what a sensor
    /// waits for is seen at the triggerer's next round, not at the sensor's next poke.
    /// Returns how many were brought forward.
    pub async fn hurry_deferred(&self, since: i64, now: i64) -> Result<u64> {
        // Nothing waits (the usual case): no scan of what ended, no write.
        let waiting: Option<i64> =
            sqlx::query_scalar("SELECT id FROM task_instance WHERE state = 'deferred' LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
        if waiting.is_none() {
            return Ok(0);
        }
        let mut keys: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        let tis = sqlx::query(
            "SELECT r.dag_id, ti.task_id, r.logical_date FROM task_instance ti \
             JOIN dag_run r ON r.id = ti.run_pk WHERE ti.end_date >= $1",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        for row in &tis {
            let (dag, task, at): (String, String, i64) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            keys.insert(weir_core::watch_task_key(&dag, &task, at));
        }
        let runs =
            sqlx::query("SELECT dag_id, run_id, logical_date FROM dag_run WHERE end_date >= $1")
                .bind(since)
                .fetch_all(&self.pool)
                .await?;
        for row in &runs {
            let (dag, run, at): (String, String, i64) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            keys.extend(weir_core::watch_run_keys(&dag, &run, at));
        }
        if keys.is_empty() {
            return Ok(0);
        }
        let keys: Vec<String> = keys.into_iter().collect();
        let mut tx = self.begin_write().await?;
        let mut hurried = 0;
        for chunk in keys.chunks(500) {
            let sql = format!(
                "UPDATE task_instance SET next_retry_at = $1 WHERE state = 'deferred' \
                 AND next_retry_at > $1 AND sensor_key IN ({})",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
            for key in chunk {
                q = q.bind(key);
            }
            hurried += q.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(hurried)
    }

    /// Deferred instances checked and still waiting: their next check, what they wait for
    /// and why, each a compare-and-set on `deferred` at its try number, a hundred rows to a
    /// statement (ten thousand sensors checked in a round are a hundred statements, not ten
    /// thousand), in one transaction.
    pub async fn wait_again(&self, waits: &[Finish]) -> Result<()> {
        if waits.is_empty() {
            return Ok(());
        }
        const COLS: usize = 5;
        let mut tx = self.begin_write().await?;
        for chunk in waits.chunks(INSERT_CHUNK) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("({})", placeholders(i * COLS + 1, COLS)))
                .collect();
            let sql = format!(
                "WITH w (id, try_number, next_at, sensor, reason) AS (VALUES {}) \
                 UPDATE task_instance SET next_retry_at = w.next_at, sensor = w.sensor, reason = w.reason \
                 FROM w WHERE task_instance.id = w.id AND task_instance.try_number = w.try_number \
                 AND task_instance.state = 'deferred'",
                values.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for w in chunk {
                q = q
                    .bind(w.ti_id)
                    .bind(w.try_number)
                    .bind(w.next_retry_at)
                    .bind(w.sensor.as_ref().map(|v| v.to_string()))
                    .bind(w.reason.clone());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn finish_tries(
        &self,
        worker: Option<&str>,
        from: TaskState,
        finishes: &[Finish],
    ) -> Result<Vec<Finished>> {
        if finishes.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_micros();
        let mut tx = self.begin_write().await?;
        // The compare-and-sets of all the finishes, one statement per chunk: a fan-out ends
        // its tries in batches, and a statement each was most of a finish's cost.
        let mut applied: HashMap<(i64, i64), bool> = HashMap::new();
        for chunk in finishes.chunks(FINISH_CHUNK) {
            let values = crate::typed_values(
                3,
                &[
                    "BIGINT", "BIGINT", "TEXT", "BIGINT", "TEXT", "TEXT", "TEXT", "BIGINT", "TEXT",
                ],
                chunk.len(),
            );
            let sql = format!(
                "UPDATE task_instance SET state = v.column3, end_date = $1, next_retry_at = v.column4, \
                 heartbeat = NULL, decision = v.column5, reason = v.column6, sensor = v.column7, \
                 try_number = task_instance.try_number - v.column8, sensor_key = v.column9 \
                 FROM (VALUES {values}) AS v \
                 WHERE task_instance.id = v.column1 AND task_instance.try_number = v.column2 \
                 AND task_instance.state = $2 AND ({worker} IS NULL OR task_instance.worker = {worker}) \
                 RETURNING task_instance.id, task_instance.try_number, task_instance.state, \
                 CAST(CASE WHEN EXISTS (SELECT 1 FROM asset_ref r WHERE r.dag_id = task_instance.dag_id \
                 AND r.task_id = task_instance.task_id AND r.kind = 'producer') THEN 1 ELSE 0 END AS BIGINT)",
                worker = format_args!("${}", 3 + chunk.len() * 9),
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(now)
                .bind(from.as_str());
            for f in chunk {
                // A reschedule gives its try number back: the next poke is the same try.
                let given_back = (f.state == TaskState::UpForReschedule) as i64;
                let waits = f.waits();
                q = q
                    .bind(f.ti_id)
                    .bind(f.try_number)
                    .bind(f.state.as_str())
                    .bind(f.next_retry_at)
                    .bind(f.decision.as_ref().map(Decision::to_json))
                    .bind(f.reason.as_deref())
                    .bind(f.sensor.as_ref().filter(|_| waits).map(|v| v.to_string()))
                    .bind(given_back)
                    .bind(f.sensor_key.as_deref().filter(|_| waits));
            }
            for row in q.bind(worker).fetch_all(&mut *tx).await? {
                let (id, try_number, state, produces): (i64, i64, String, i64) = (
                    row.try_get(0)?,
                    row.try_get(1)?,
                    row.try_get(2)?,
                    row.try_get(3)?,
                );
                let given_back = (state == TaskState::UpForReschedule.as_str()) as i64;
                // The row, as the compare-and-set took it: whether the task produces assets
                // (as last parsed), so that a task producing none costs no statement for them.
                applied.insert((id, try_number + given_back), produces != 0);
            }
        }
        let mut out = Vec::with_capacity(finishes.len());
        let mut tries: Vec<(i64, i64, Option<i64>, &'static str)> = Vec::new();
        for f in finishes {
            let outcome = if let Some(&produces) = applied.get(&(f.ti_id, f.try_number)) {
                if let Some(value) = &f.xcom {
                    sqlx::query(
                        "INSERT INTO xcom (run_pk, task_id, map_index, key, value) \
                         SELECT run_pk, task_id, map_index, 'return_value', $1 FROM task_instance WHERE id = $2 \
                         ON CONFLICT (run_pk, task_id, map_index, key) DO UPDATE SET value = excluded.value",
                    )
                    .bind(value.to_string())
                    .bind(f.ti_id)
                    .execute(&mut *tx)
                    .await?;
                }
                crate::outbox::insert_messages(&mut tx, &f.messages, now).await?;
                if f.state == TaskState::Success && produces {
                    crate::assets::record_events(&mut tx, f.ti_id, now).await?;
                }
                Finished::Applied
            } else {
                let reset = sqlx::query(
                    "UPDATE task_instance SET state = 'none', queued_at = NULL, start_date = NULL, \
                     end_date = NULL, heartbeat = NULL, worker = NULL, pid = NULL, next_retry_at = NULL, \
                     decision = NULL, reason = NULL, sensor = NULL, sensor_key = NULL \
                     WHERE id = $1 AND try_number = $2 AND state = 'restarting'",
                )
                .bind(f.ti_id)
                .bind(f.try_number)
                .execute(&mut *tx)
                .await?;
                if reset.rows_affected() == 1 {
                    Finished::Restarted
                } else {
                    Finished::Lost
                }
            };
            // A lost finish leaves the try's record to whoever took the instance over.
            match outcome {
                Finished::Applied => tries.push((
                    f.ti_id,
                    f.try_number,
                    (!f.waits()).then_some(now),
                    f.state.as_str(),
                )),
                Finished::Restarted => tries.push((f.ti_id, f.try_number, Some(now), "restarting")),
                Finished::Lost => {}
            }
            out.push(outcome);
        }
        for chunk in tries.chunks(FINISH_CHUNK) {
            let values =
                crate::typed_values(1, &["BIGINT", "BIGINT", "BIGINT", "TEXT"], chunk.len());
            let sql = format!(
                "UPDATE task_try SET end_date = v.column3, state = v.column4 FROM (VALUES {values}) AS v \
                 WHERE task_try.ti_id = v.column1 AND task_try.try_number = v.column2 \
                 AND task_try.end_date IS NULL"
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (ti_id, try_number, end_date, state) in chunk {
                q = q
                    .bind(*ti_id)
                    .bind(*try_number)
                    .bind(*end_date)
                    .bind(*state);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Running (or restarting) task instances whose heartbeat is older than `before`, or whose
    /// worker's lease has run out or is gone: zombies.
    pub async fn zombies(&self, before: i64, now: i64) -> Result<Vec<TiRow>> {
        let sql = format!(
            "SELECT {TI_COLUMNS} FROM task_instance ti WHERE state IN ('running', 'restarting') AND \
             (heartbeat IS NULL OR heartbeat < $1 OR NOT EXISTS \
              (SELECT 1 FROM worker w WHERE w.worker_id = ti.worker AND w.lease_until >= $2))"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(before)
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(ti_row).collect()
    }

    /// Resets task instances to `none` so the scheduler runs them again, granting each its
    /// retries anew (as Airflow's clear does), and requeues their runs. A running instance
    /// becomes `restarting`: its worker stops the try at its next heartbeat and then resets
    /// it, so two tries never run at once. Returns how many were cleared.
    pub async fn clear_task_instances(
        &self,
        ti_ids: &[i64],
        retries: &[(i64, u32)],
    ) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let mut cleared = 0;
        let mut runs = Vec::new();
        for id in ti_ids {
            let extra = retries
                .iter()
                .find(|(t, _)| t == id)
                .map(|(_, r)| *r as i64)
                .unwrap_or(0);
            let row = sqlx::query(
                "UPDATE task_instance SET state = 'none', max_tries = try_number + $1, queued_at = NULL, \
                 start_date = NULL, end_date = NULL, heartbeat = NULL, worker = NULL, pid = NULL, \
                 next_retry_at = NULL, decision = NULL, reason = NULL, sensor = NULL, sensor_key = NULL \
                 WHERE id = $2 AND state NOT IN ('running', 'restarting') RETURNING run_pk",
            )
            .bind(extra)
            .bind(*id)
            .fetch_optional(&mut *tx)
            .await?;
            let row = match row {
                Some(row) => Some(row),
                // The try's own retries end with it; the instance gets `retries` more after.
                None => sqlx::query(
                    "UPDATE task_instance SET state = 'restarting', max_tries = try_number + $1 \
                     WHERE id = $2 AND state = 'running' RETURNING run_pk",
                )
                .bind(extra)
                .bind(*id)
                .fetch_optional(&mut *tx)
                .await?,
            };
            if let Some(row) = row {
                cleared += 1;
                let pk: i64 = row.try_get(0)?;
                if !runs.contains(&pk) {
                    runs.push(pk);
                }
            }
        }
        for pk in runs {
            sqlx::query("UPDATE dag_run SET state = 'queued', end_date = NULL WHERE id = $1 AND state IN ('success', 'failed')")
                .bind(pk)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "DELETE FROM xcom WHERE run_pk = $1 AND EXISTS (SELECT 1 FROM task_instance ti \
                 WHERE ti.run_pk = xcom.run_pk AND ti.task_id = xcom.task_id AND ti.map_index = xcom.map_index \
                 AND ti.state IN ('none', 'restarting'))",
            )
            .bind(pk)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(cleared)
    }

    /// Every try of every task instance of a run, in start order.
    pub async fn tries(&self, run_pk: i64) -> Result<Vec<TryRow>> {
        let rows = sqlx::query(
            "SELECT t.ti_id, ti.task_id, t.try_number, t.worker, t.start_date, t.end_date, t.state \
             FROM task_try t JOIN task_instance ti ON ti.id = t.ti_id WHERE ti.run_pk = $1 \
             ORDER BY t.start_date, t.ti_id, t.try_number",
        )
        .bind(run_pk)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TryRow {
                    ti_id: r.try_get(0)?,
                    task_id: r.try_get(1)?,
                    try_number: r.try_get(2)?,
                    worker: r.try_get(3)?,
                    start_date: r.try_get(4)?,
                    end_date: r.try_get(5)?,
                    state: r.try_get(6)?,
                })
            })
            .collect()
    }

    /// How many task instances are in each state, for metrics.
    pub async fn task_instance_state_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) FROM task_instance GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Slots in use (queued or running) per pool.
    pub async fn pool_usage(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT pool, CAST(SUM(pool_slots) AS BIGINT) FROM task_instance \
             WHERE state IN ('queued', 'running') GROUP BY pool",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Task instances queued or running, per DAG.
    pub async fn active_task_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT dag_id, COUNT(*) FROM task_instance WHERE state IN ('queued', 'running') GROUP BY dag_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// What capacity a scheduler round starts from, in one statement: task instances queued
    /// or running per DAG, pool slots they use per pool, and every pool's size.
    pub async fn capacity_counts(&self) -> Result<CapacityCounts> {
        let rows = sqlx::query(
            "SELECT 0, dag_id, CAST(COUNT(*) AS BIGINT) FROM task_instance \
             WHERE state IN ('queued', 'running') GROUP BY dag_id \
             UNION ALL SELECT 1, pool, CAST(SUM(pool_slots) AS BIGINT) FROM task_instance \
             WHERE state IN ('queued', 'running') GROUP BY pool \
             UNION ALL SELECT 2, name, CAST(slots AS BIGINT) FROM pool",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = CapacityCounts::default();
        for r in &rows {
            let kind: i32 = r.try_get(0)?;
            let entry = (r.try_get(1)?, r.try_get(2)?);
            match kind {
                0 => out.dag_active.push(entry),
                1 => out.pool_used.push(entry),
                _ => out.pools.push(entry),
            }
        }
        Ok(out)
    }

    /// Pools and their sizes.
    pub async fn pools(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT name, slots FROM pool ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// `(run, state, how many)` over the task instances of every running run: what a
    /// scheduler's sweep compares with its views.
    pub async fn running_instance_state_counts(&self) -> Result<Vec<(i64, TaskState, i64)>> {
        let rows = sqlx::query(
            "SELECT ti.run_pk, ti.state, CAST(COUNT(*) AS BIGINT) FROM task_instance ti \
             JOIN dag_run r ON r.id = ti.run_pk WHERE r.state = 'running' GROUP BY ti.run_pk, ti.state",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    parse_state("task_instance", &r.try_get::<String, _>(1)?)?,
                    r.try_get(2)?,
                ))
            })
            .collect()
    }

    /// Task instances that ended at or after `since`, as `(run, id, state)`: how a scheduler
    /// learns of other processes' finishes.
    pub async fn ended_since(&self, since: i64) -> Result<Vec<(i64, i64, TaskState)>> {
        let rows = sqlx::query("SELECT run_pk, id, state FROM task_instance WHERE end_date >= $1")
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(state_triple).collect()
    }

    /// Deletes a pool; false if there was none.
    pub async fn delete_pool(&self, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM pool WHERE name = $1")
            .bind(name)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Creates or resizes a pool.
    pub async fn set_pool(&self, name: &str, slots: i64, description: Option<&str>) -> Result<()> {
        sqlx::query(
            "INSERT INTO pool (name, slots, description) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET slots = excluded.slots, description = excluded.description",
        )
        .bind(name)
        .bind(slots)
        .bind(description)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Every XCom of a run as `(task_id, map_index, key, value)`, by task, map index and key.
    pub async fn xcoms(
        &self,
        run_pk: i64,
    ) -> Result<Vec<(String, i64, String, serde_json::Value)>> {
        Ok(self
            .xcom_texts(run_pk)
            .await?
            .into_iter()
            .map(|(task, map_index, key, text)| {
                (task, map_index, key, weir_core::xcom_value(&text))
            })
            .collect())
    }

    /// [`Store::xcoms`] as stored, each value its JSON text, for readers that parse only what
    /// they use.
    pub async fn xcom_texts(&self, run_pk: i64) -> Result<Vec<(String, i64, String, String)>> {
        let rows = sqlx::query(
            "SELECT task_id, map_index, key, value FROM xcom WHERE run_pk = $1 ORDER BY task_id, map_index, key",
        )
        .bind(run_pk)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect()
    }
}
