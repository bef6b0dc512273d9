//! weir-service: the use cases users start (trigger, clear, mark, pause, backfill, delete a
//! DAG's runs), each taking the acting user and recording it in the audit log. The CLI calls
//! them today; the REST API and the UI call the same functions, so that none of them writes
//! the store its own way.
//!
//! Key types: [`Services`], [`Actor`], [`ClearRequest`], [`ServiceError`].
//!
//! Architecture invariant: no HTTP, no terminal output, no DAG folder reading: callers pass the
//! parsed [`Dag`] they resolved, and map [`ServiceError`] to their own surface (exit codes,
//! status codes).

mod settings;

use jiff::Timestamp;
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};
use weir_core::{Dag, DataInterval, RunState, RunType, TaskState, Timetable, iso, micros};
use weir_store::{BackfillRow, NewEvent, NewRun, RunRow, Store, StoreError, TiRow, Transition};

/// Who asks: recorded with every use case in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user: String,
}

impl Actor {
    pub fn new(user: impl Into<String>) -> Actor {
        Actor { user: user.into() }
    }

    /// The operating-system user running the CLI, as `cli:<name>`.
    pub fn cli() -> Actor {
        let name = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        Actor::new(format!("cli:{name}"))
    }
}

/// Why a use case did not happen. Surfaces map these to exit codes or HTTP statuses.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{what} not found\nhint: {hint}")]
    NotFound { what: String, hint: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{message}\nhint: {hint}")]
    BadRequest { message: String, hint: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Which task instances a clear or a mark takes.
#[derive(Debug, Clone, Default)]
pub struct ClearRequest {
    /// Only tasks whose id matches this regular expression.
    pub task_regex: Option<String>,
    /// Only these runs (by run id); empty means every run in the date range.
    pub run_ids: Vec<String>,
    /// Only runs with logical date in `[start, end]`.
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub only_failed: bool,
    /// Also the tasks downstream (upstream) of the matched ones, as Airflow's clear does.
    pub downstream: bool,
    pub upstream: bool,
    /// Only these items (`map_index`) of the tasks the regex matched; empty means all. Tasks
    /// added by `downstream`/`upstream` are taken whole.
    pub map_indexes: Vec<i64>,
}

/// Called after a use case changed state, so that a scheduler acts on it now rather than at
/// its next poll (the CLI pokes a running `weir standalone`; the API wakes its own scheduler).
pub type Waker = std::sync::Arc<dyn Fn() + Send + Sync>;

/// The use cases, over one store.
#[derive(Clone)]
pub struct Services {
    store: Store,
    waker: Option<Waker>,
}

impl Services {
    pub fn new(store: Store) -> Services {
        Services { store, waker: None }
    }

    /// Calls `waker` after every use case that changed state.
    pub fn with_waker(mut self, waker: Waker) -> Services {
        self.waker = Some(waker);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    async fn audit(
        &self,
        actor: &Actor,
        event: &str,
        dag_id: &str,
        run_id: Option<&str>,
        extra: Value,
    ) -> Result<()> {
        self.store
            .record_event(&NewEvent {
                event: event.into(),
                owner: actor.user.clone(),
                dag_id: Some(dag_id.into()),
                run_id: run_id.map(String::from),
                task_id: None,
                extra: Some(extra),
            })
            .await?;
        // Every use case that changed state ends with its audit record: the change is
        // committed, and a scheduler may act on it.
        if let Some(wake) = &self.waker {
            wake();
        }
        Ok(())
    }

    /// Creates a manual run at `logical_date` (default now) with `conf`: the latest complete
    /// interval of the DAG's schedule that ends at or before it, as Airflow does.
    pub async fn trigger(
        &self,
        actor: &Actor,
        dag: &Dag,
        logical_date: Option<Timestamp>,
        conf: Map<String, Value>,
        run_id: Option<String>,
    ) -> Result<RunRow> {
        let at = logical_date.unwrap_or_else(Timestamp::now);
        let mut new =
            weir_scheduler::new_run(dag, RunType::Manual, at, manual_interval(dag, at), conf);
        if let Some(id) = run_id {
            new.run_id = id;
        }
        self.create_manual(actor, dag, new).await
    }

    /// A run of `dag` triggered by the `trigger_dag` task instance `parent_ti_id`, which the
    /// run records so that each links to the other.
    pub async fn trigger_child(
        &self,
        actor: &Actor,
        dag: &Dag,
        logical_date: Timestamp,
        conf: Map<String, Value>,
        parent_ti_id: i64,
    ) -> Result<RunRow> {
        let at = logical_date;
        let mut new =
            weir_scheduler::new_run(dag, RunType::Manual, at, manual_interval(dag, at), conf);
        new.parent_ti_id = Some(parent_ti_id);
        self.create_manual(actor, dag, new).await
    }

    async fn create_manual(
        &self,
        actor: &Actor,
        dag: &Dag,
        new: weir_store::NewRun,
    ) -> Result<RunRow> {
        let at = weir_core::timestamp(new.logical_date);
        let run = weir_scheduler::create_run(&self.store, dag, &new)
            .await?
            .ok_or_else(|| {
                ServiceError::Conflict(format!(
                    "a run of '{}' already exists for logical date {} (or with run id '{}')",
                    dag.dag_id,
                    iso(at),
                    new.run_id
                ))
            })?;
        self.audit(
            actor,
            "trigger",
            &dag.dag_id,
            Some(&run.run_id),
            json!({"conf": run.conf}),
        )
        .await?;
        Ok(run)
    }

    /// The run of `dag` at `logical_date`, created (manual) when there is none: for `tasks run`
    /// and `dags test`, which run one logical date in-process.
    pub async fn run_at(
        &self,
        actor: &Actor,
        dag: &Dag,
        logical_date: Timestamp,
        conf: Map<String, Value>,
    ) -> Result<(RunRow, bool)> {
        if let Some(run) = self.store.run_at(&dag.dag_id, micros(logical_date)).await? {
            return Ok((run, false));
        }
        Ok((
            self.trigger(actor, dag, Some(logical_date), conf, None)
                .await?,
            true,
        ))
    }

    /// Clears the task instances `request` selects (and their downstream/upstream when asked)
    /// so that the scheduler runs them again; a running one is stopped first. Returns the
    /// instances cleared.
    pub async fn clear(
        &self,
        actor: &Actor,
        dag: &Dag,
        request: &ClearRequest,
    ) -> Result<Vec<TiRow>> {
        let selected = self.select(dag, request).await?;
        let retries: Vec<(i64, u32)> = selected
            .iter()
            .map(|t| {
                (
                    t.id,
                    dag.task(&t.task_id).map(|task| task.retries).unwrap_or(0),
                )
            })
            .collect();
        let ids: Vec<i64> = selected.iter().map(|t| t.id).collect();
        self.store.clear_task_instances(&ids, &retries).await?;
        self.audit(
            actor,
            "clear",
            &dag.dag_id,
            request.run_ids.first().map(String::as_str),
            json!({"task_instances": selected.len(), "tasks": task_ids(&selected)}),
        )
        .await?;
        Ok(selected)
    }

    /// Clears every task instance of `run` so that it runs again from the start.
    pub async fn reset_run(&self, actor: &Actor, dag: &Dag, run: &RunRow) -> Result<Vec<TiRow>> {
        let request = ClearRequest {
            run_ids: vec![run.run_id.clone()],
            ..ClearRequest::default()
        };
        self.clear(actor, dag, &request).await
    }

    /// The task instances [`Services::mark`] would move to `state`: those `request` selects
    /// that are in another state and not running. Changes nothing (Airflow's `dry_run`).
    pub async fn mark_preview(
        &self,
        dag: &Dag,
        request: &ClearRequest,
        state: TaskState,
    ) -> Result<Vec<TiRow>> {
        if !matches!(state, TaskState::Success | TaskState::Failed) {
            return Err(ServiceError::BadRequest {
                message: format!("cannot mark task instances '{state}'"),
                hint: "mark them success or failed".into(),
            });
        }
        Ok(self
            .select(dag, request)
            .await?
            .into_iter()
            .filter(|t| {
                t.state != state && !matches!(t.state, TaskState::Running | TaskState::Restarting)
            })
            .collect())
    }

    /// Marks the selected task instances (not running ones) success or failed, as Airflow's
    /// "mark success/failed" (`set_task_instance_state`) does: the failed and upstream_failed
    /// instances downstream of them in the same runs are cleared, so that a run that failed
    /// goes on from the marked task, and the scheduler decides their runs again.
    pub async fn mark(
        &self,
        actor: &Actor,
        dag: &Dag,
        request: &ClearRequest,
        state: TaskState,
    ) -> Result<Marked> {
        let selected = self.mark_preview(dag, request, state).await?;
        let moves: Vec<Transition> = selected
            .iter()
            .map(|t| Transition {
                ti_id: t.id,
                from: t.state,
                to: state,
                next_retry_at: None,
                reason: None,
            })
            .collect();
        let moved = self.store.apply_transitions(&moves).await?;
        let marked: Vec<TiRow> = selected
            .into_iter()
            .zip(moved)
            .filter_map(|(t, ok)| ok.then_some(t))
            .collect();
        let runs: BTreeSet<i64> = marked.iter().map(|t| t.run_pk).collect();
        let marked_tasks: BTreeSet<String> = marked.iter().map(|t| t.task_id.clone()).collect();
        let downstream = related(dag, &marked_tasks, Direction::Downstream);
        let run_pks: Vec<i64> = runs.iter().copied().collect();
        let resumed: Vec<TiRow> = if downstream.is_empty() {
            Vec::new()
        } else {
            self.store
                .task_instances_of_runs(&run_pks)
                .await?
                .into_iter()
                .filter(|t| {
                    downstream.contains(&t.task_id)
                        && !marked.iter().any(|m| m.id == t.id)
                        && matches!(t.state, TaskState::Failed | TaskState::UpstreamFailed)
                })
                .collect()
        };
        if !resumed.is_empty() {
            let retries: Vec<(i64, u32)> = resumed
                .iter()
                .map(|t| (t.id, dag.task(&t.task_id).map(|d| d.retries).unwrap_or(0)))
                .collect();
            let ids: Vec<i64> = resumed.iter().map(|t| t.id).collect();
            self.store.clear_task_instances(&ids, &retries).await?;
        }
        for pk in runs {
            // A finished run with a changed instance is decided again by the scheduler.
            for from in [RunState::Success, RunState::Failed] {
                self.store.set_run_state(pk, from, RunState::Queued).await?;
            }
        }
        self.audit(
            actor,
            &format!("mark_{state}"),
            &dag.dag_id,
            request.run_ids.first().map(String::as_str),
            json!({
                "task_instances": marked.len(),
                "tasks": task_ids(&marked),
                "cleared_downstream": task_ids(&resumed),
            }),
        )
        .await?;
        Ok(Marked { marked, resumed })
    }

    /// Pauses or unpauses a DAG. A DAG no scheduler has parsed yet gets its row first (the
    /// scheduler owns its parsed fields from its next parse on).
    pub async fn set_paused(
        &self,
        actor: &Actor,
        dag: &Dag,
        paused: bool,
        paused_by_default: bool,
    ) -> Result<()> {
        if self.store.dag_row(&dag.dag_id).await?.is_none() {
            self.store
                .insert_new_dags(&[(dag, "")], paused_by_default, weir_core::now_micros())
                .await?;
        }
        self.store.set_paused(&dag.dag_id, paused).await?;
        self.audit(
            actor,
            if paused { "pause" } else { "unpause" },
            &dag.dag_id,
            None,
            json!({}),
        )
        .await
    }

    /// Creates a backfill of `dag` over `[from, to]`: the record and one queued run per
    /// interval, which the scheduler starts within the DAG's `max_active_runs`. Existing runs
    /// are left alone, or re-run with `reprocess` "failed" (failed ones) or "completed" (all).
    pub async fn create_backfill(
        &self,
        actor: &Actor,
        dag: &Dag,
        from: Timestamp,
        to: Timestamp,
        reprocess: Reprocess,
        conf: Map<String, Value>,
    ) -> Result<Backfill> {
        let intervals = backfill_intervals(dag, from, to)?;
        let record = self
            .store
            .create_backfill(
                &dag.dag_id,
                micros(from),
                micros(to),
                reprocess.as_str(),
                &conf,
                &actor.user,
            )
            .await?;
        let planned: Vec<NewRun> = intervals
            .iter()
            .map(|interval| {
                let mut new = weir_scheduler::new_run(
                    dag,
                    RunType::Backfill,
                    interval.start,
                    *interval,
                    conf.clone(),
                );
                new.backfill_id = Some(record.id);
                new
            })
            .collect();
        let logical_dates: Vec<i64> = planned.iter().map(|n| n.logical_date).collect();
        // In batches: a run to a transaction made years of daily runs outlast an HTTP timeout.
        let created = weir_scheduler::create_runs(&self.store, dag, planned).await?;
        let mut runs = Vec::new();
        let mut skipped = Vec::new();
        for (created, logical_date) in created.into_iter().zip(logical_dates) {
            if let Some(run) = created {
                runs.push(run);
                continue;
            }
            let Some(existing) = self.store.run_at(&dag.dag_id, logical_date).await? else {
                continue;
            };
            let again = match reprocess {
                Reprocess::None => false,
                Reprocess::Failed => existing.state == RunState::Failed,
                Reprocess::Completed => existing.state.is_finished(),
            };
            if again {
                self.reset_run(actor, dag, &existing).await?;
                self.store.set_run_backfill(existing.id, record.id).await?;
                runs.push(existing);
            } else {
                skipped.push(existing);
            }
        }
        self.audit(
            actor,
            "backfill",
            &dag.dag_id,
            None,
            json!({"backfill_id": record.id, "from": iso(from), "to": iso(to), "runs": runs.len()}),
        )
        .await?;
        Ok(Backfill {
            record,
            runs,
            skipped,
        })
    }

    /// Deletes every run of a DAG, with their task instances, tries and XComs.
    pub async fn delete_runs(&self, actor: &Actor, dag_id: &str) -> Result<u64> {
        let deleted = self.store.delete_runs(dag_id).await?;
        self.audit(actor, "delete_runs", dag_id, None, json!({"runs": deleted}))
            .await?;
        Ok(deleted)
    }

    /// The task instances a clear or mark request selects.
    async fn select(&self, dag: &Dag, request: &ClearRequest) -> Result<Vec<TiRow>> {
        let pattern = match &request.task_regex {
            Some(re) => Some(regex::Regex::new(re).map_err(|e| ServiceError::BadRequest {
                message: format!("'{re}' is not a valid regular expression: {e}"),
                hint: "a task filter is a regular expression over task ids, e.g. '^load_'".into(),
            })?),
            None => None,
        };
        let mut tasks: BTreeSet<String> = dag
            .tasks
            .iter()
            .filter(|t| pattern.as_ref().is_none_or(|re| re.is_match(&t.task_id)))
            .map(|t| t.task_id.clone())
            .collect();
        let matched = tasks.clone();
        if request.downstream {
            tasks.extend(related(dag, &tasks, Direction::Downstream));
        }
        if request.upstream {
            tasks.extend(related(dag, &tasks, Direction::Upstream));
        }
        let runs: Vec<RunRow> = self
            .store
            .list_runs(&dag.dag_id, i64::MAX)
            .await?
            .into_iter()
            .filter(|r| request.run_ids.is_empty() || request.run_ids.contains(&r.run_id))
            .filter(|r| {
                let at = weir_core::timestamp(r.logical_date);
                request.start.is_none_or(|s| at >= s) && request.end.is_none_or(|e| at <= e)
            })
            .collect();
        if !request.run_ids.is_empty() && runs.is_empty() {
            return Err(ServiceError::NotFound {
                what: format!(
                    "run '{}' of DAG '{}'",
                    request.run_ids.join(", "),
                    dag.dag_id
                ),
                hint: format!("weir dags runs {} lists them", dag.dag_id),
            });
        }
        let pks: Vec<i64> = runs.iter().map(|r| r.id).collect();
        Ok(self
            .store
            .task_instances_of_runs(&pks)
            .await?
            .into_iter()
            .filter(|t| tasks.contains(&t.task_id))
            .filter(|t| {
                request.map_indexes.is_empty()
                    || !matched.contains(&t.task_id)
                    || request.map_indexes.contains(&t.map_index)
            })
            .filter(|t| {
                !request.only_failed
                    || matches!(t.state, TaskState::Failed | TaskState::UpstreamFailed)
            })
            .collect())
    }
}

/// What [`Services::mark`] changed.
#[derive(Debug, Clone)]
pub struct Marked {
    /// The instances moved to the new state, with the state they had.
    pub marked: Vec<TiRow>,
    /// The failed and upstream_failed instances downstream of them, cleared to run again.
    pub resumed: Vec<TiRow>,
}

/// A created backfill: its record, the runs it will run, and the existing runs it left alone.
#[derive(Debug, Clone)]
pub struct Backfill {
    pub record: BackfillRow,
    pub runs: Vec<RunRow>,
    pub skipped: Vec<RunRow>,
}

/// What a backfill does with intervals that already have a run (Airflow's reprocess_behavior).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reprocess {
    None,
    Failed,
    Completed,
}

impl Reprocess {
    pub fn as_str(self) -> &'static str {
        match self {
            Reprocess::None => "none",
            Reprocess::Failed => "failed",
            Reprocess::Completed => "completed",
        }
    }
}

/// The intervals a backfill of `dag` over `[from, to]` covers, or why there are none.
pub fn backfill_intervals(dag: &Dag, from: Timestamp, to: Timestamp) -> Result<Vec<DataInterval>> {
    if to < from {
        return Err(ServiceError::BadRequest {
            message: format!(
                "the backfill ends ({}) before it starts ({})",
                iso(to),
                iso(from)
            ),
            hint: "give the start first".into(),
        });
    }
    let timetable =
        Timetable::new(&dag.schedule, dag.tz()).map_err(|e| ServiceError::BadRequest {
            message: e,
            hint: "fix the DAG's schedule".into(),
        })?;
    if !timetable.is_periodic() {
        return Err(ServiceError::BadRequest {
            message: format!(
                "DAG '{}' has no periodic schedule ({}), so there are no intervals to backfill",
                dag.dag_id,
                dag.schedule.text()
            ),
            hint: format!("use weir dags trigger {} --logical-date DATE", dag.dag_id),
        });
    }
    let intervals = timetable.intervals_between(from, to, MAX_BACKFILL_RUNS + 1);
    if intervals.len() > MAX_BACKFILL_RUNS {
        return Err(ServiceError::BadRequest {
            message: format!(
                "a backfill of DAG '{}' from {} to {} covers more than {MAX_BACKFILL_RUNS} intervals",
                dag.dag_id,
                iso(from),
                iso(to)
            ),
            hint: "backfill a shorter range at a time".into(),
        });
    }
    Ok(intervals)
}

/// The most runs one backfill creates: a longer range is refused rather than cut short.
pub const MAX_BACKFILL_RUNS: usize = 10_000;

/// The data interval of a manual run at `at`.
pub fn manual_interval(dag: &Dag, at: Timestamp) -> DataInterval {
    match Timetable::new(&dag.schedule, dag.tz()) {
        Ok(tt) => tt.manual_interval(at),
        Err(_) => DataInterval { start: at, end: at },
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Downstream,
    Upstream,
}

/// Every task reachable from `from` downstream (or upstream), not including `from` itself.
fn related(dag: &Dag, from: &BTreeSet<String>, direction: Direction) -> BTreeSet<String> {
    let mut next: HashMap<&str, Vec<&str>> = HashMap::new();
    for t in &dag.tasks {
        for up in &t.depends_on {
            match direction {
                Direction::Downstream => next.entry(up.as_str()).or_default().push(&t.task_id),
                Direction::Upstream => next.entry(t.task_id.as_str()).or_default().push(up),
            }
        }
    }
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&str> = from.iter().map(String::as_str).collect();
    while let Some(id) = stack.pop() {
        for n in next.get(id).into_iter().flatten() {
            if !from.contains(*n) && seen.insert(n.to_string()) {
                stack.push(n);
            }
        }
    }
    seen
}

fn task_ids(tis: &[TiRow]) -> Vec<String> {
    let ids: BTreeSet<&str> = tis.iter().map(|t| t.task_id.as_str()).collect();
    ids.into_iter().map(String::from).collect()
}
