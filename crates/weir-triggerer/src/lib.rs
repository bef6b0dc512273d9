//! weir-triggerer: checks deferred waits (sensors in mode `defer`, `trigger_dag` waiting for
//! its run) without a worker slot or a process, as Airflow's triggerer runs deferrable
//! operators' triggers.
//!
//! A deferred task instance carries what it waits for in the store (`sensor`) and when it is
//! checked next (`next_retry_at`). Each round reads the instances that are due, checks them
//! concurrently with the worker's [`StoreLookup`] and [`step`] (one read per watched task or
//! run per round, however many sensors watch it), ends those whose wait is over with a
//! compare-and-set from `deferred` at their try number (with their XCom, notifications and
//! asset events, as a worker's finish), and writes the next check of the others. Nothing is
//! held in memory between rounds, so several triggerers (`weir standalone`, `weir scheduler`,
//! `weir triggerer`) may run against one store: a check is a read, and only one finish of an
//! instance applies.
//!
//! Key types: [`Triggerer`], [`TriggererConfig`]. Must not decide what runs next: it only ends
//! waits; the scheduler reads their outcome as any other finish.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use weir_core::{Dag, TaskState, now_micros};
use weir_ops::sensor::{Condition, Waiting, check};
use weir_ops::warehouse::{InProcess, WarehouseHost};
use weir_store::{Finish, Finished, Store, TiRow};
use weir_worker::TaskLog;
use weir_worker::wait::{Ended, Step, StoreLookup, step};

/// How a triggerer behaves.
#[derive(Debug, Clone)]
pub struct TriggererConfig {
    /// The time between two rounds: a check runs at most this long after it is due.
    pub poll: Duration,
    /// Instances checked per round at most; a full batch starts the next round at once. A
    /// round holds its batch's rows and records in memory (about 2.5 kB an instance), so ten
    /// thousand checks falling due together are ten rounds, not one 25 MB peak.
    pub batch: i64,
    /// Checks in flight at once (SQL and HTTP conditions wait on the network).
    pub concurrency: usize,
    pub log_dir: PathBuf,
    pub project_dir: PathBuf,
}

impl Default for TriggererConfig {
    fn default() -> Self {
        TriggererConfig {
            poll: Duration::from_secs(1),
            batch: 1000,
            concurrency: 64,
            log_dir: PathBuf::from(".weir/logs"),
            project_dir: PathBuf::from("."),
        }
    }
}

pub struct Triggerer {
    store: Store,
    config: TriggererConfig,
    /// Wakes an in-process scheduler when a wait ended.
    scheduler_wake: Arc<Notify>,
    /// Tells an in-process scheduler which runs changed.
    changed: Option<weir_core::ChangedRuns>,
    /// Wakes the outbox notifier when an ending wrote notifications.
    outbox_wake: Arc<Notify>,
    /// Ends of tasks and runs at or after this were looked at by the last round.
    looked_since: std::sync::Mutex<i64>,
    /// Where `sql` conditions run their queries.
    warehouses: Arc<dyn WarehouseHost>,
}

/// How far back a round looks for ended tasks and runs before the last one looked: a finish
/// commits a little after its end_date was taken.
const ENDED_MARGIN: i64 = 2_000_000;

impl Triggerer {
    pub fn new(store: Store, config: TriggererConfig) -> Triggerer {
        Triggerer {
            store,
            config,
            scheduler_wake: Arc::new(Notify::new()),
            changed: None,
            outbox_wake: Arc::new(Notify::new()),
            looked_since: std::sync::Mutex::new(now_micros() - ENDED_MARGIN),
            warehouses: Arc::new(InProcess),
        }
    }

    /// Runs `sql` conditions' queries on `host` (the process's warehouse process).
    pub fn with_warehouses(mut self, host: Arc<dyn WarehouseHost>) -> Triggerer {
        self.warehouses = host;
        self
    }

    /// Tells an in-process scheduler (and notifier) at once when waits end.
    pub fn with_scheduler(
        mut self,
        scheduler_wake: Arc<Notify>,
        changed: weir_core::ChangedRuns,
        outbox_wake: Arc<Notify>,
    ) -> Triggerer {
        self.scheduler_wake = scheduler_wake;
        self.changed = Some(changed);
        self.outbox_wake = outbox_wake;
        self
    }

    /// Rounds until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            let full = match self.round().await {
                Ok(full) => full,
                Err(e) => {
                    tracing::warn!("triggerer round failed: {e}");
                    false
                }
            };
            if full {
                continue;
            }
            // One round per `poll`, each taking every check that has come due: sensors deferred
            // a few milliseconds apart share a round instead of each paying for one (ten
            // thousand sensors deferred over half a minute made hundreds of rounds a second).
            // A check may run up to `poll` after its time.
            let pause = self.config.poll;
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// The log of the deferred try: the triggerer's lines follow the worker's.
    fn log_file(&self, ti: &TiRow) -> PathBuf {
        ti.log_file(&self.config.log_dir)
    }

    /// One round: checks every due instance; true when the batch was full (more are due).
    pub async fn round(&self) -> Result<bool, weir_store::StoreError> {
        let now = now_micros();
        // What ended since the last round brings its sensors' checks forward.
        let since = self
            .looked_since
            .lock()
            .map(|mut s| std::mem::replace(&mut *s, now - ENDED_MARGIN))
            .unwrap_or(now - ENDED_MARGIN);
        self.store.hurry_deferred(since, now).await?;
        let due = self.store.due_deferred(now, self.config.batch).await?;
        if due.is_empty() {
            return Ok(false);
        }
        let full = due.len() as i64 == self.config.batch;
        let lookup = Arc::new(StoreLookup::new(
            self.store.clone(),
            self.config.project_dir.clone(),
            self.warehouses.clone(),
        ));
        // Conditions on the store, files and the clock are checked one after another on this
        // task (a read shared by every sensor that watches the same task returns at once);
        // only SQL and HTTP checks, which wait on the network, run side by side.
        let semaphore = Arc::new(tokio::sync::Semaphore::new(self.config.concurrency.max(1)));
        let mut remote = tokio::task::JoinSet::new();
        let mut checked: Vec<(usize, TiRow, Option<Waiting>, Step)> = Vec::with_capacity(due.len());
        for (index, ti) in due.into_iter().enumerate() {
            let waiting = ti
                .sensor
                .as_deref()
                .ok_or_else(|| "a deferred task instance without a sensor record".to_string())
                .and_then(Waiting::from_json);
            let mut waiting = match waiting {
                Ok(waiting) => waiting,
                Err(message) => {
                    let unreadable = Ended {
                        state: TaskState::Failed,
                        message,
                        xcom: None,
                        retry: false,
                    };
                    checked.push((index, ti, None, Step::End(unreadable)));
                    continue;
                }
            };
            if matches!(
                waiting.wait.condition,
                Condition::Sql { .. } | Condition::Http { .. }
            ) {
                let lookup = lookup.clone();
                let semaphore = semaphore.clone();
                remote.spawn(async move {
                    let _permit = semaphore.acquire_owned().await;
                    let step = check_once(&mut waiting, &lookup).await;
                    (index, ti, Some(waiting), step)
                });
            } else {
                let step = check_once(&mut waiting, &lookup).await;
                checked.push((index, ti, Some(waiting), step));
            }
        }
        while let Some(done) = remote.join_next().await {
            if let Ok(done) = done {
                checked.push(done);
            }
        }
        // A DAG is read only when a wait of it ends (retries, callbacks).
        let mut dags: HashMap<String, Option<Arc<Dag>>> = HashMap::new();
        let mut ends: Vec<(usize, Finish, String, TiRow)> = Vec::new();
        let mut again = Vec::new();
        for (index, ti, waiting, step) in checked {
            match step {
                Step::Again { next, reason } => again.push(Finish {
                    ti_id: ti.id,
                    try_number: ti.try_number,
                    state: TaskState::Deferred,
                    next_retry_at: Some(next),
                    reason: Some(reason),
                    sensor: waiting.map(|w| w.to_json()),
                    ..Default::default()
                }),
                Step::End(end) => {
                    if !dags.contains_key(&ti.dag_id) {
                        let dag = self
                            .store
                            .get_dag(&ti.dag_id)
                            .await?
                            .map(|(d, _)| Arc::new(d));
                        dags.insert(ti.dag_id.clone(), dag);
                    }
                    let dag = dags.get(&ti.dag_id).cloned().flatten();
                    let log_file = self.log_file(&ti);
                    let (finish, message) =
                        ending(&ti, end, dag.as_deref(), &self.store, &log_file).await;
                    ends.push((index, finish, message, ti));
                }
            }
        }
        self.store.wait_again(&again).await?;
        if ends.is_empty() {
            return Ok(full);
        }
        ends.sort_by_key(|(index, ..)| *index);
        let finishes: Vec<Finish> = ends.iter().map(|(_, f, ..)| f.clone()).collect();
        let results = self.store.finish_deferred(&finishes).await?;
        let mut notified = false;
        for ((_, finish, message, ti), result) in ends.iter().zip(&results) {
            let log = TaskLog::open(&self.log_file(ti), Default::default());
            match result {
                Finished::Applied => {
                    log.line(
                        if finish.state == TaskState::Success {
                            "INFO"
                        } else {
                            "ERROR"
                        },
                        &format!("{message} (triggerer)"),
                    );
                    log.line("INFO", &format!("marked {}", finish.state));
                    notified |= !finish.messages.is_empty();
                    metrics::counter!("weir_triggerer_ended_total", "state" => finish.state.as_str())
                        .increment(1);
                }
                _ => log.line(
                    "WARNING",
                    "the task instance changed while it was deferred (cleared or marked); the triggerer's outcome is not recorded",
                ),
            }
            if let Some(changed) = &self.changed {
                weir_core::note_change(
                    changed,
                    ti.run_pk,
                    weir_core::TiChange {
                        ti_id: ti.id,
                        state: (*result == Finished::Applied).then_some(finish.state),
                        try_number: ti.try_number,
                        next_retry_at: finish.next_retry_at,
                    },
                );
            }
        }
        if notified {
            self.outbox_wake.notify_one();
        }
        self.scheduler_wake.notify_one();
        Ok(full)
    }
}

/// Checks a deferred wait once (counted in its checks): what the check means.
async fn check_once(waiting: &mut Waiting, lookup: &StoreLookup) -> Step {
    waiting.checks += 1;
    let checked = check(&waiting.wait.condition, lookup).await;
    step(waiting, checked, now_micros())
}

/// The finish of a wait that ended: a failure that may retry becomes `up_for_retry` while
/// the task has tries left; the task's notifications for the outcome go with it.
async fn ending(
    ti: &TiRow,
    end: Ended,
    dag: Option<&Dag>,
    store: &Store,
    log_file: &std::path::Path,
) -> (Finish, String) {
    let Ended {
        state,
        message,
        xcom,
        retry,
    } = end;
    let now = now_micros();
    let task = dag.and_then(|d| d.task(&ti.task_id));
    let (state, next_retry_at) = match (state, task) {
        (TaskState::Failed, Some(task)) if retry && ti.try_number <= ti.max_tries => {
            let delay = task.retry_delay_after(ti.try_number as u32);
            (TaskState::UpForRetry, Some(now + delay.as_micros() as i64))
        }
        (state, _) => (state, None),
    };
    let messages = match (dag, task) {
        (Some(dag), Some(task)) if !task.callbacks.is_empty() => {
            let logical_date = store
                .get_run_by_pk(ti.run_pk)
                .await
                .ok()
                .flatten()
                .map(|r| r.logical_date);
            weir_worker::outcome_messages(dag, ti, logical_date, state, log_file)
        }
        _ => Vec::new(),
    };
    (
        Finish {
            ti_id: ti.id,
            try_number: ti.try_number,
            state,
            next_retry_at,
            xcom: xcom.filter(|_| state == TaskState::Success),
            messages,
            reason: (state == TaskState::Skipped).then(|| message.clone()),
            ..Default::default()
        },
        message,
    )
}
