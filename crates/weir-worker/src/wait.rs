//! Sensors and `trigger_dag` in a worker's try: checking a condition through the store
//! ([`StoreLookup`]), what one check means for the task instance ([`step`]), the poke loop,
//! handing a wait back as `up_for_reschedule` or `deferred`, and triggering a run through the
//! service layer. The triggerer (`weir-triggerer`) checks deferred waits with the same
//! [`StoreLookup`] and [`step`], so a condition means the same thing wherever it is checked.

use crate::{DEFAULT_WAREHOUSE, Outcome, TaskLog, Worker, default_warehouse};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use weir_core::connection::Connection;
use weir_core::{TaskState, iso, micros, now_micros, timestamp};
use weir_ops::sensor::{Checked, Condition, Lookup, SensorMode, Wait, Waiting, check};
use weir_ops::trigger_dag::Trigger;
use weir_ops::warehouse::{WarehouseHost, WarehouseWork};
use weir_store::{ClaimedTi, Store};

/// A run as a condition names it: DAG, run id or logical date.
type RunKey = (String, Option<String>, Option<i64>);

/// A task's instances as a condition names them: DAG, task, logical date.
type TaskKey = (String, String, i64);

/// One read shared by every check that asks for it, also while it is in flight.
type Shared<T> = Arc<tokio::sync::OnceCell<Result<T, String>>>;

/// Reads what conditions look at from the metadata store. Within one lookup the same task or
/// run is read once, however many checks ask at the same time: ten thousand sensors waiting
/// for one task cost one query per round.
pub struct StoreLookup {
    store: Store,
    project_dir: PathBuf,
    /// Where a `sql` condition's query runs.
    warehouses: Arc<dyn WarehouseHost>,
    tasks: Mutex<HashMap<TaskKey, Shared<Vec<String>>>>,
    runs: Mutex<HashMap<RunKey, Shared<Option<String>>>>,
}

/// The shared read of `key` in `map`.
fn shared<K: std::hash::Hash + Eq, T>(map: &Mutex<HashMap<K, Shared<T>>>, key: K) -> Shared<T> {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(key).or_default().clone()
}

impl StoreLookup {
    pub fn new(
        store: Store,
        project_dir: PathBuf,
        warehouses: Arc<dyn WarehouseHost>,
    ) -> StoreLookup {
        StoreLookup {
            store,
            project_dir,
            warehouses,
            tasks: Mutex::new(HashMap::new()),
            runs: Mutex::new(HashMap::new()),
        }
    }
}

impl Lookup for StoreLookup {
    fn task_states<'a>(
        &'a self,
        dag_id: &'a str,
        task_id: &'a str,
        logical_date: i64,
    ) -> weir_ops::BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async move {
            let key = (dag_id.to_string(), task_id.to_string(), logical_date);
            shared(&self.tasks, key)
                .get_or_init(|| async {
                    Ok(self
                        .store
                        .task_states_at(dag_id, task_id, logical_date)
                        .await
                        .map_err(|e| e.to_string())?
                        .into_iter()
                        .map(|s| s.to_string())
                        .collect())
                })
                .await
                .clone()
        })
    }

    fn run_state<'a>(
        &'a self,
        dag_id: &'a str,
        run_id: Option<&'a str>,
        logical_date: Option<i64>,
    ) -> weir_ops::BoxFuture<'a, Result<Option<String>, String>> {
        Box::pin(async move {
            let key = (dag_id.to_string(), run_id.map(String::from), logical_date);
            shared(&self.runs, key)
                .get_or_init(|| async {
                    let run = match (run_id, logical_date) {
                        (Some(id), _) => self.store.get_run(dag_id, id).await,
                        (None, Some(at)) => self.store.run_at(dag_id, at).await,
                        (None, None) => Ok(None),
                    }
                    .map_err(|e| e.to_string())?;
                    Ok(run.map(|r| r.state.to_string()))
                })
                .await
                .clone()
        })
    }

    fn first_value<'a>(
        &'a self,
        connection: &'a str,
        sql: &'a str,
    ) -> weir_ops::BoxFuture<'a, Result<Option<serde_json::Value>, String>> {
        let work = WarehouseWork::FirstValue {
            connection: connection.to_string(),
            sql: sql.to_string(),
        };
        self.warehouses.run(work, self)
    }
}

/// What a sensor's query sees: the store's connections and the project.
impl weir_ops::Runtime for StoreLookup {
    /// The check's message says what the query returned.
    fn log(&self, _line: &str) {}

    fn connection<'a>(
        &'a self,
        conn_id: &'a str,
    ) -> weir_ops::BoxFuture<'a, Result<Connection, String>> {
        Box::pin(resolve_connection(&self.store, conn_id))
    }

    fn project_dir(&self) -> &Path {
        &self.project_dir
    }
}

/// A connection by id: the environment's `WEIR_CONN_<ID>`, then the store, then the default
/// DuckDB warehouse for `warehouse`.
pub async fn resolve_connection(store: &Store, conn_id: &str) -> Result<Connection, String> {
    match store.resolve_connection(conn_id).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) if conn_id == DEFAULT_WAREHOUSE => Ok(default_warehouse()),
        Ok(None) => Err(format!(
            "connection '{conn_id}' does not exist\nhint: weir connections add {conn_id} --conn-uri URI, or set WEIR_CONN_{}",
            conn_id.to_ascii_uppercase()
        )),
        Err(e) => Err(format!("connection '{conn_id}': {e}")),
    }
}

/// How a wait ended. `retry`: a failure may use the task's retries (a failed state seen, a
/// broken query); a timeout never does, as in Airflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    pub state: TaskState,
    pub message: String,
    pub xcom: Option<serde_json::Value>,
    pub retry: bool,
}

/// What one check means for a waiting task instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The wait is over.
    End(Ended),
    /// Check again at `next` (micros); `reason` says what it waits for.
    Again { next: i64, reason: String },
}

/// The step after a check at `now` that found `checked` (the check is already counted in
/// `waiting.checks`).
pub fn step(waiting: &Waiting, checked: Checked, now: i64) -> Step {
    match checked {
        Checked::Met(how) => Step::End(Ended {
            state: TaskState::Success,
            message: format!("sensor condition met: {how}"),
            xcom: waiting.xcom.clone(),
            retry: false,
        }),
        Checked::Failed(why) => Step::End(Ended {
            state: TaskState::Failed,
            message: format!("sensor failed: {why}"),
            xcom: None,
            retry: true,
        }),
        Checked::NotYet(seen) if waiting.timed_out(now) => {
            let after = weir_core::format_duration(std::time::Duration::from_micros(
                (now - waiting.since).max(0) as u64,
            ));
            let what = waiting.wait.condition.describe();
            if waiting.wait.soft_fail {
                Step::End(Ended {
                    state: TaskState::Skipped,
                    message: format!(
                        "sensor timed out after {after} waiting for {what} ({seen}); skipped (soft_fail)"
                    ),
                    xcom: None,
                    retry: false,
                })
            } else {
                Step::End(Ended {
                    state: TaskState::Failed,
                    message: format!("sensor timed out after {after} waiting for {what} ({seen})"),
                    xcom: None,
                    retry: false,
                })
            }
        }
        Checked::NotYet(seen) => {
            let next = waiting.next_check(now);
            Step::Again {
                next,
                reason: waiting.reason(&seen, next),
            }
        }
    }
}

impl Outcome {
    fn ended(end: Ended) -> Outcome {
        Outcome {
            state: end.state,
            message: end.message,
            xcom: end.xcom,
            no_retry: !end.retry,
            ..Outcome::failed(String::new())
        }
    }

    /// The try's turn ends while its sensor waits (`deferred` or `up_for_reschedule`).
    fn waiting(state: TaskState, waiting: &Waiting, next: i64, reason: String) -> Outcome {
        Outcome {
            state,
            message: reason.clone(),
            next_check: Some(next),
            reason: Some(reason),
            sensor: Some(waiting.to_json()),
            sensor_key: waiting.wait.condition.watch_key(),
            ..Outcome::failed(String::new())
        }
    }
}

impl Worker {
    /// A sensor's try: check; then, while not met, sleep in the slot (`poke`), or give the
    /// slot back until the next check (`reschedule`), or hand the wait to the triggerer
    /// (`defer`). A reschedule's next try goes on counting from the same start and checks.
    pub(crate) async fn sensor(
        &self,
        ti: &ClaimedTi,
        wait: Wait,
        log: &TaskLog,
        kill: &mut watch::Receiver<bool>,
    ) -> Result<Outcome, String> {
        let mut waiting = Waiting::start(wait, ti.sensor.as_deref(), now_micros());
        loop {
            // A new lookup per check: what the last one read is stale by now.
            let lookup = StoreLookup::new(
                self.store.clone(),
                self.config.project_dir.clone(),
                self.warehouses.clone(),
            );
            waiting.checks += 1;
            let checked = check(&waiting.wait.condition, &lookup).await;
            let now = now_micros();
            let (next, reason) = match step(&waiting, checked, now) {
                Step::End(end) => return Ok(Outcome::ended(end)),
                Step::Again { next, reason } => (next, reason),
            };
            match waiting.wait.mode {
                SensorMode::Reschedule => {
                    return Ok(Outcome::waiting(
                        TaskState::UpForReschedule,
                        &waiting,
                        next,
                        reason,
                    ));
                }
                SensorMode::Defer => {
                    return Ok(Outcome::waiting(
                        TaskState::Deferred,
                        &waiting,
                        next,
                        reason,
                    ));
                }
                SensorMode::Poke => {
                    log.line("INFO", &reason);
                    let pause = std::time::Duration::from_micros((next - now).max(0) as u64);
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = kill.wait_for(|k| *k) => {
                            return Ok(Outcome::failed("task was stopped: the worker is shutting down".into()));
                        }
                    }
                }
            }
        }
    }

    /// A `trigger_dag` try: create the run (this task instance its parent), or skip, reset or
    /// refuse when one exists at that logical date; with `wait_for_completion`, defer on the
    /// run's state. A run this very instance created on an earlier try that did not record
    /// its outcome (a crash, a lost worker) is taken up again rather than refused.
    pub(crate) async fn trigger(
        &self,
        ti: &ClaimedTi,
        trigger: Trigger,
        log: &TaskLog,
    ) -> Result<Outcome, String> {
        let (dag, _) = self
            .store
            .get_dag(&trigger.dag_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!(
                    "task '{}' triggers DAG '{}', which is not loaded\nhint: weir dags list shows the DAGs; a DAG whose file is broken is listed under import errors",
                    ti.task_id, trigger.dag_id
                )
            })?;
        let runs_wake = self.runs_wake.clone();
        let services = weir_service::Services::new(self.store.clone())
            .with_waker(Arc::new(move || runs_wake.notify_one()));
        let actor = weir_service::Actor::new(format!("task:{}.{}", ti.dag_id, ti.task_id));
        let at = trigger.logical_date.unwrap_or_else(jiff::Timestamp::now);
        let existing = self
            .store
            .run_at(&dag.dag_id, micros(at))
            .await
            .map_err(|e| e.to_string())?;
        let run = match existing {
            Some(run) if run.parent_ti_id == Some(ti.id) && !run.state.is_finished() => {
                log.line(
                    "INFO",
                    &format!(
                        "run {} of {} was triggered by an earlier try of this task; waiting for it",
                        run.run_id, dag.dag_id
                    ),
                );
                run
            }
            Some(run) if trigger.skip_when_already_exists => {
                return Ok(Outcome {
                    reason: Some(format!(
                        "a run of {} at {} exists ({})",
                        dag.dag_id,
                        iso(at),
                        run.run_id
                    )),
                    ..Outcome::ended(Ended {
                        state: TaskState::Skipped,
                        message: format!(
                            "a run of {} at {} exists ({}): skipped (skip_when_already_exists)",
                            dag.dag_id,
                            iso(at),
                            run.run_id
                        ),
                        xcom: None,
                        retry: false,
                    })
                });
            }
            Some(run) if trigger.reset_dag_run => {
                services
                    .reset_run(&actor, &dag, &run)
                    .await
                    .map_err(|e| e.to_string())?;
                log.line(
                    "INFO",
                    &format!(
                        "cleared the existing run {} of {} (reset_dag_run)",
                        run.run_id, dag.dag_id
                    ),
                );
                run
            }
            Some(run) => {
                return Err(format!(
                    "a run of '{}' at {} already exists ({})\nhint: set reset_dag_run: true to run it again, or skip_when_already_exists: true to skip",
                    dag.dag_id,
                    iso(at),
                    run.run_id
                ));
            }
            None => services
                .trigger_child(&actor, &dag, at, trigger.conf, ti.id)
                .await
                .map_err(|e| e.to_string())?,
        };
        let xcom = serde_json::json!({
            "run_id": run.run_id,
            "logical_date": iso(timestamp(run.logical_date)),
        });
        log.line(
            "INFO",
            &format!("triggered {} run {}", dag.dag_id, run.run_id),
        );
        let Some(wait) = trigger.wait else {
            return Ok(Outcome::success(
                Some(xcom),
                format!("triggered {} run {}", dag.dag_id, run.run_id),
            ));
        };
        let mut waiting = Waiting::start(
            Wait {
                condition: Condition::Run {
                    dag_id: dag.dag_id.clone(),
                    logical_date: None,
                    run_id: Some(run.run_id.clone()),
                    allowed: wait.allowed,
                    failed: wait.failed,
                },
                mode: SensorMode::Defer,
                poke_interval_ms: wait.poke_interval.as_millis().max(1) as u64,
                timeout_ms: None,
                soft_fail: false,
                exponential_backoff: false,
            },
            None,
            now_micros(),
        );
        waiting.xcom = Some(xcom);
        let now = now_micros();
        let next = waiting.next_check(now);
        let reason = waiting.reason("just triggered", next);
        Ok(Outcome::waiting(
            TaskState::Deferred,
            &waiting,
            next,
            reason,
        ))
    }
}
