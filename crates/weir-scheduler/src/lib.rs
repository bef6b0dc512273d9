//! weir-scheduler: decides what runs next. It never runs user code.
//!
//! Owns the DAG folder watch ([`folder`]), run creation from timetables (catchup,
//! `max_active_runs`), task readiness (trigger rules, control-flow decisions that workers
//! recorded, `depends_on_past`, retries, pools, `parallelism`, `max_active_tasks`), run
//! completion, and the zombie reaper. Key type:
//! [`Scheduler`]; one [`Scheduler::tick`] does one round of all of it.
//!
//! Architecture invariants: every state change goes through the store's compare-and-set, so
//! several schedulers may run at once; a broken DAG file becomes an import error and never
//! stops the others; runs are created only through `Store::create_run`, which refuses a
//! second run for the same logical date.

pub mod evaluate;
pub mod folder;
pub mod loader;
pub mod mapping;
mod reaper;

pub use evaluate::{
    Capacity, DagShape, Ready, RunOutcome, evaluate_run, evaluate_shaped, topological_order,
};
pub use loader::DagLoader;

use folder::DagFolder;
use jiff::Timestamp;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use weir_core::{
    Dag, DataInterval, RunState, RunType, SharedDags, TaskState, Timetable, micros, now_micros,
    run_id, timestamp,
};
use weir_store::{NewMessage, NewRun, RunRow, Store, StoreError, TaskSeed, TiRow};

/// How the scheduler behaves.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub dags_folder: PathBuf,
    /// File names are shown relative to this (the project root).
    pub project_dir: PathBuf,
    pub log_dir: PathBuf,
    pub dag_dir_list_interval: Duration,
    /// Longest sleep between rounds when nothing wakes the scheduler.
    pub poll: Duration,
    pub heartbeat: Duration,
    pub zombie_threshold: Duration,
    /// Task instances queued or running at once, over all DAGs.
    pub parallelism: usize,
    /// The most instances a mapped task may expand to (`[core] max_map_length`).
    pub max_map_length: usize,
    pub paused_by_default: bool,
    pub parse: weir_spec::ParseOptions,
    /// When non-empty, the scheduler only drives these runs: no folder scan, no new runs,
    /// no reaping (`dags test`, `tasks run` and backfill run in the CLI's own process).
    pub only_runs: Vec<i64>,
}

/// One scheduler.
pub struct Scheduler {
    store: Store,
    config: SchedulerConfig,
    loader: DagLoader,
    /// Woken by anything that wants a full round now (a trigger, a clear, a poke).
    pub wake: Arc<Notify>,
    /// Woken by in-process workers and the triggerer when a try ends. The round then skips
    /// the read of queued runs, which a try's end cannot queue (unless the round itself ends
    /// a run, which may let a queued one start).
    pub tries_ended: Arc<Notify>,
    /// Woken when task instances were queued.
    pub worker_wake: Arc<Notify>,
    /// Woken when a state change wrote outbox messages (notifications).
    pub outbox_wake: Arc<Notify>,
    /// Runs an in-process worker changed; see [`weir_core::ChangedRuns`].
    pub changed_runs: weir_core::ChangedRuns,
    /// Which runs the next round evaluates besides the changed ones.
    pending: Mutex<Pending>,
    /// Per running run, its task instances as this scheduler last read or changed them
    /// (ordered by id), so that a round reads from the store only what others changed.
    views: Mutex<HashMap<i64, Vec<TiRow>>>,
    /// Per DAG, the shape evaluation needs, for the DAG version it was computed from.
    shapes: Mutex<HashMap<String, Shaped>>,
    /// Per DAG, when its next scheduled run is due, for the DAG version that said so.
    not_before: Mutex<HashMap<String, (Timestamp, Arc<Dag>)>>,
    hostname: String,
    /// When the next scheduled run of an unpaused DAG is due, as the last look found.
    runs_due_at: Mutex<Option<Timestamp>>,
    last_scan: Mutex<Option<Instant>>,
    last_reap: Mutex<Option<Instant>>,
    /// (run, task) pairs whose sla miss is recorded in the store: checked here first so that
    /// a round does not ask the store again.
    slas_missed: Mutex<HashSet<(i64, String)>>,
}

/// What one round did, for tests and progress output.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TickReport {
    pub runs_created: usize,
    pub queued: usize,
    pub finished_runs: Vec<(String, String, RunState)>,
    /// The earliest future moment something becomes due (a retry, a scheduled run).
    pub next_due: Option<Timestamp>,
}

impl Scheduler {
    pub fn new(store: Store, config: SchedulerConfig) -> Self {
        let folder = DagFolder::new(
            config.dags_folder.clone(),
            config.project_dir.clone(),
            config.parse.clone(),
        );
        Scheduler {
            store,
            loader: DagLoader::new(folder, config.paused_by_default),
            config,
            wake: Arc::new(Notify::new()),
            tries_ended: Arc::new(Notify::new()),
            worker_wake: Arc::new(Notify::new()),
            outbox_wake: Arc::new(Notify::new()),
            changed_runs: Default::default(),
            pending: Mutex::new(Pending::default()),
            views: Mutex::new(HashMap::new()),
            shapes: Mutex::new(HashMap::new()),
            not_before: Mutex::new(HashMap::new()),
            hostname: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "localhost".into()),
            runs_due_at: Mutex::new(None),
            last_scan: Mutex::new(None),
            last_reap: Mutex::new(None),
            slas_missed: Mutex::new(Default::default()),
        }
    }

    /// The DAGs as last parsed, shared with in-process workers.
    pub fn dags(&self) -> SharedDags {
        self.loader.dags()
    }

    pub fn dag(&self, dag_id: &str) -> Option<Arc<Dag>> {
        self.loader.dags().read().ok()?.get(dag_id).cloned()
    }

    /// Runs rounds until `shutdown` turns true.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) -> Result<(), StoreError> {
        let job = self
            .store
            .start_job("scheduler", &self.hostname, now_micros())
            .await?;
        let mut last_beat = Instant::now();
        let mut full = true;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let round = Instant::now();
            let result = self.round(full).await;
            metrics::histogram!("weir_scheduler_loop_duration_seconds")
                .record(round.elapsed().as_secs_f64());
            let report = match result {
                Ok(report) => report,
                Err(e) => {
                    tracing::error!("scheduler round failed: {e}");
                    TickReport::default()
                }
            };
            if last_beat.elapsed() >= self.config.heartbeat {
                let _ = self.store.heartbeat_job(job, now_micros()).await;
                last_beat = Instant::now();
            }
            let mut sleep = self.config.poll;
            if let Some(due) = report.next_due {
                let until = due.duration_since(Timestamp::now());
                if let Ok(until) = Duration::try_from(until) {
                    sleep = sleep.min(until);
                } else {
                    sleep = Duration::ZERO;
                }
            }
            full = tokio::select! {
                _ = self.wake.notified() => true,
                _ = self.tries_ended.notified() => false,
                _ = tokio::time::sleep(sleep) => true,
                _ = shutdown.changed() => true,
            };
        }
        self.store.end_job(job, now_micros()).await?;
        Ok(())
    }

    /// One round: re-read changed DAG files (when due), create due runs, start queued runs,
    /// move ready task instances to queued, finish completed runs, reap zombies (when due).
    pub async fn tick(&self) -> Result<TickReport, StoreError> {
        self.round(true).await
    }

    /// A round as [`Scheduler::tick`]; `full: false` after tries ended, which cannot have
    /// queued a run: queued runs are read only if this round created or ended one.
    async fn round(&self, full: bool) -> Result<TickReport, StoreError> {
        let mut report = TickReport::default();
        if !self.config.only_runs.is_empty() {
            let started = self.start_queued_runs().await?;
            self.schedule_task_instances(&mut report, started).await?;
            return Ok(report);
        }
        let scan_due = self
            .last_scan
            .lock()
            .map(|l| l.is_none_or(|t| t.elapsed() >= self.config.dag_dir_list_interval))
            .unwrap_or(true);
        if scan_due {
            self.sync_dag_folder().await?;
            self.store.complete_backfills().await?;
            if let Ok(mut l) = self.last_scan.lock() {
                *l = Some(Instant::now());
            }
        }
        // Scheduled runs are created when the folder was read and as soon as one is due, not
        // at the next read of the folder.
        let runs_due = self
            .runs_due_at
            .lock()
            .map(|at| at.is_some_and(|at| at <= Timestamp::now()))
            .unwrap_or(true);
        if scan_due || runs_due {
            report.runs_created = self.create_scheduled_runs(&mut report).await?;
        } else if let Ok(at) = self.runs_due_at.lock()
            && let Some(at) = *at
        {
            report.next_due = earliest(report.next_due, at);
        }
        report.runs_created += self.create_asset_triggered_runs().await?;
        let reap_due = self
            .last_reap
            .lock()
            .map(|l| l.is_none_or(|t| t.elapsed() >= self.config.heartbeat))
            .unwrap_or(true);
        if reap_due {
            self.reap_zombies().await?;
            if let Ok(mut l) = self.last_reap.lock() {
                *l = Some(Instant::now());
            }
        }
        // What changed first (a finished try's downstream is the latency of every chain),
        // then the runs that can start now, evaluated at once.
        self.schedule_task_instances(&mut report, Vec::new())
            .await?;
        if !full && report.runs_created == 0 && report.finished_runs.is_empty() {
            return Ok(report);
        }
        let started = self.start_queued_runs().await?;
        if !started.is_empty() {
            self.schedule_task_instances(&mut report, started).await?;
        }
        Ok(report)
    }

    /// Reads the DAG folder and brings the store and the shared DAG map up to date: the DAG
    /// processor's job, and the only code that writes DAG rows.
    pub async fn sync_dag_folder(&self) -> Result<(), StoreError> {
        self.loader.sync(&self.store, true).await
    }

    /// Reads the DAG folder as [`Scheduler::sync_dag_folder`] does, writing nothing: for CLI
    /// commands, which must not change DAG rows that a running scheduler owns.
    pub async fn load_dag_folder(&self) -> Result<(), StoreError> {
        self.loader.sync(&self.store, false).await
    }

    /// The import errors the last read of the folder found, by file.
    pub fn import_errors(&self) -> std::collections::BTreeMap<String, String> {
        self.loader.import_errors()
    }

    /// Creates every scheduled run that is due, per DAG, up to `max_active_runs` active runs.
    async fn create_scheduled_runs(&self, report: &mut TickReport) -> Result<usize, StoreError> {
        let now = Timestamp::now();
        let paused: HashMap<String, bool> = self.store.paused_flags().await?.into_iter().collect();
        let active = self.active_run_counts().await?;
        let dags: Vec<Arc<Dag>> = self
            .dags()
            .read()
            .map(|d| d.values().cloned().collect())
            .unwrap_or_default();
        let mut planned = Vec::new();
        let mut not_before = self
            .not_before
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default();
        for dag in dags {
            if paused.get(&dag.dag_id).copied().unwrap_or(true) {
                continue;
            }
            // Nothing is due before the end of the next interval this scheduler saw: no need to
            // ask the store for the DAG's last run on every round.
            if let Some(&(at, ref version)) = not_before.get(&dag.dag_id)
                && now < at
                && Arc::ptr_eq(version, &dag)
            {
                report.next_due = earliest(report.next_due, at);
                continue;
            }
            let Ok(timetable) = Timetable::new(&dag.schedule, dag.tz()) else {
                continue;
            };
            if !timetable.is_periodic() && !matches!(dag.schedule, weir_core::Schedule::Once) {
                continue;
            }
            let mut running = active.get(&dag.dag_id).copied().unwrap_or(0);
            let mut last = self
                .store
                .last_scheduled_interval(&dag.dag_id)
                .await?
                .map(|(s, e)| DataInterval {
                    start: timestamp(s),
                    end: timestamp(e),
                });
            // Bounded so that one DAG with a long catchup cannot starve a round.
            for _ in 0..64 {
                if running >= dag.max_active_runs as usize {
                    break;
                }
                let Some(next) = timetable.next_scheduled(
                    last,
                    dag.start_date.map(timestamp),
                    dag.end_date.map(timestamp),
                    dag.catchup,
                    now,
                ) else {
                    break;
                };
                if next.end > now {
                    report.next_due = earliest(report.next_due, next.end);
                    not_before.insert(dag.dag_id.clone(), (next.end, dag.clone()));
                    break;
                }
                planned.push((
                    new_run(
                        &dag,
                        RunType::Scheduled,
                        next.start,
                        next,
                        serde_json::Map::new(),
                    ),
                    task_seeds(&dag),
                ));
                running += 1;
                last = Some(next);
            }
        }
        // All due runs in a few transactions; one that exists already (another scheduler made
        // it) is not created twice.
        let created = self
            .store
            .create_runs(&planned)
            .await?
            .iter()
            .filter(|r| r.is_some())
            .count();
        if let Ok(mut due) = self.runs_due_at.lock() {
            *due = not_before
                .iter()
                .filter(|(dag_id, _)| !paused.get(*dag_id).copied().unwrap_or(true))
                .map(|(_, (at, _))| *at)
                .min();
        }
        if let Ok(mut cache) = self.not_before.lock() {
            *cache = not_before;
        }
        Ok(created)
    }

    /// Creates a run of each unpaused DAG scheduled on assets whose queued asset events meet
    /// its condition, within `max_active_runs` (events wait in the queue meanwhile, and the
    /// next run consumes them all). The store checks the condition again on the events it
    /// takes, in the transaction that creates the run.
    async fn create_asset_triggered_runs(&self) -> Result<usize, StoreError> {
        // Every scheduler reads the same folder: without an asset-scheduled DAG in it, nothing
        // is queued for one (a round's statement saved).
        let dags = self.dags();
        let any = dags.read().map(|dags| {
            dags.values()
                .any(|d| matches!(d.schedule, weir_core::Schedule::Assets { .. }))
        });
        if !any.unwrap_or(true) {
            return Ok(0);
        }
        let queued = self.store.queued_assets().await?;
        if queued.is_empty() {
            return Ok(0);
        }
        let mut by_dag: HashMap<String, std::collections::BTreeSet<String>> = HashMap::new();
        for (dag_id, asset) in queued {
            by_dag.entry(dag_id).or_default().insert(asset);
        }
        let paused: HashMap<String, bool> = self.store.paused_flags().await?.into_iter().collect();
        let active = self.active_run_counts().await?;
        let mut created = 0;
        for (dag_id, updated) in by_dag {
            let Some(dag) = self
                .dags()
                .read()
                .ok()
                .and_then(|d| d.get(&dag_id).cloned())
            else {
                continue;
            };
            let weir_core::Schedule::Assets { condition, .. } = &dag.schedule else {
                continue;
            };
            if paused.get(&dag_id).copied().unwrap_or(true)
                || !condition.is_met(&updated)
                || active.get(&dag_id).copied().unwrap_or(0) >= dag.max_active_runs as usize
            {
                continue;
            }
            if let Some(run) = self
                .store
                .create_asset_triggered_run(&dag_id, condition, &task_seeds(&dag))
                .await?
            {
                tracing::info!(
                    dag_id,
                    run_id = run.run_id,
                    "created an asset-triggered run"
                );
                created += 1;
            }
        }
        Ok(created)
    }

    async fn active_run_counts(&self) -> Result<HashMap<String, usize>, StoreError> {
        let mut counts = HashMap::new();
        for state in [RunState::Queued, RunState::Running] {
            for (dag_id, n) in self.store.run_counts(state).await? {
                *counts.entry(dag_id).or_insert(0) += n as usize;
            }
        }
        Ok(counts)
    }

    /// Moves queued runs to running while their DAG has fewer than `max_active_runs` running;
    /// returns the runs it started.
    async fn start_queued_runs(&self) -> Result<Vec<i64>, StoreError> {
        let mut started = Vec::new();
        let (runs, mut running): (Vec<RunRow>, HashMap<String, usize>) =
            if self.config.only_runs.is_empty() {
                let queued = self.store.runs_in_states(&[RunState::Queued]).await?;
                if queued.is_empty() {
                    return Ok(started);
                }
                // Counts, not rows, of the running runs: their number must not weigh on a round.
                let counts = self.store.run_counts(RunState::Running).await?;
                (
                    queued,
                    counts.into_iter().map(|(d, n)| (d, n as usize)).collect(),
                )
            } else {
                let runs = self.driven(
                    self.store
                        .runs_in_states(&[RunState::Queued, RunState::Running])
                        .await?,
                );
                let mut running = HashMap::new();
                for run in runs.iter().filter(|r| r.state == RunState::Running) {
                    *running.entry(run.dag_id.clone()).or_insert(0) += 1;
                }
                (runs, running)
            };
        let mut to_start = Vec::new();
        for run in runs.iter().filter(|r| r.state == RunState::Queued) {
            let Some(dag) = self.dag(&run.dag_id) else {
                continue;
            };
            let count = running.entry(run.dag_id.clone()).or_insert(0);
            if *count < dag.max_active_runs as usize {
                *count += 1;
                to_start.push(run.id);
            }
        }
        // One compare-and-set for all of them (a thousand DAGs start their runs at once).
        started.extend(self.store.start_runs(&to_start).await?);
        Ok(started)
    }

    /// Evaluates every running run: ready task instances become queued (within pool,
    /// parallelism and `max_active_tasks` limits), impossible ones skipped or
    /// upstream_failed, and finished runs get their final state. Runs of a DAG that is gone
    /// from the folder end: what has not started becomes `removed`.
    ///
    /// Only runs a change can affect are evaluated (cost grows with the changes, not with the
    /// running runs): those an in-process worker finished a try of, those started now, those
    /// with a task instance that ended since the last look (other processes' workers, polled),
    /// those waiting for room or for a retry or sla that is due; and, every few seconds, those
    /// whose instance states differ from this scheduler's views, for changes nothing announces
    /// (a clear of a running run from another process).
    async fn schedule_task_instances(
        &self,
        report: &mut TickReport,
        started: Vec<i64>,
    ) -> Result<(), StoreError> {
        let mut capacity = Capacity::load(&self.store, self.config.parallelism).await?;
        let now = now_micros();
        let (mut wanted, sweep) = self.runs_to_evaluate(started, now).await?;
        if sweep {
            wanted.extend(self.changed_behind_our_back().await?);
        }
        // What waited for room, of the runs not evaluated again now, is rationed with what
        // this round finds ready (kept until the round succeeds).
        let mut ready: Vec<Ready> = match self.pending.lock() {
            Ok(pending) => pending
                .blocked
                .iter()
                .filter(|(run, _)| !wanted.contains(run))
                .flat_map(|(_, r)| r.iter().cloned())
                .collect(),
            Err(_) => Vec::new(),
        };
        let pks: Vec<i64> = wanted.iter().copied().collect();
        let runs: Vec<RunRow> = self
            .driven(self.store.runs_by_pks(&pks).await?)
            .into_iter()
            .filter(|r| r.state == RunState::Running)
            .collect();
        if runs.is_empty() && ready.is_empty() {
            return Ok(());
        }
        let waited: HashMap<i64, i64> = ready.iter().map(|r| (r.transition.ti_id, r.run)).collect();
        let by_run = self.task_instances_of(&runs).await?;
        let mut moves = Vec::new();
        let mut finished = Vec::new();
        let mut expansions: Vec<(&RunRow, Arc<Dag>, TiRow)> = Vec::new();
        for run in &runs {
            let tis: &[TiRow] = by_run.get(&run.id).map(Vec::as_slice).unwrap_or(&[]);
            let Some(dag) = self.dag(&run.dag_id) else {
                if self.config.only_runs.is_empty() {
                    moves.extend(tis.iter().filter_map(evaluate::removal));
                    finished.push((run, RunState::Failed));
                }
                continue;
            };
            let past = if dag.tasks.iter().any(|t| t.depends_on_past) {
                self.past_states(&dag, run).await?
            } else {
                HashMap::new()
            };
            let shape = self.shape(&dag);
            let mut outcome = evaluate_shaped(&dag, &shape, tis, now, &past);
            if !outcome.ready.is_empty() {
                let by_id: HashMap<i64, &TiRow> = tis.iter().map(|t| (t.id, t)).collect();
                for m in std::mem::take(&mut outcome.ready) {
                    if let Some(ti) = by_id.get(&m.ti_id) {
                        ready.push(Ready {
                            priority: ti.priority_weight,
                            logical_date: run.logical_date,
                            pool: ti.pool.clone(),
                            slots: ti.pool_slots,
                            run: run.id,
                            dag: dag.clone(),
                            transition: m,
                        });
                    }
                }
            }
            if let Some(at) = outcome.next_retry
                && let Ok(mut pending) = self.pending.lock()
            {
                pending.due.insert((at, run.id));
            }
            if let Some(due) = self.check_slas(&dag, run, tis, now).await? {
                report.next_due = earliest(report.next_due, timestamp(due));
                if let Ok(mut pending) = self.pending.lock() {
                    pending.due.insert((due, run.id));
                }
            }
            report.next_due = match outcome.next_retry {
                Some(t) => earliest(report.next_due, timestamp(t)),
                None => report.next_due,
            };
            moves.extend(outcome.moves);
            for ti_id in outcome.expand {
                if let Some(ti) = tis.iter().find(|t| t.id == ti_id) {
                    expansions.push((run, dag.clone(), ti.clone()));
                }
            }
            if let Some(state) = outcome.run_state {
                finished.push((run, state));
            }
        }
        let (mut queued, waiting) = evaluate::ration(ready, &mut capacity);
        // A run that waited was not read this round: it must still be running to start a
        // task (a mark or a delete elsewhere ends it). A run that is not loses its room for
        // this round, and what of it waited.
        let mut by_run = by_run;
        let to_check: HashSet<i64> = queued
            .iter()
            .filter_map(|m| waited.get(&m.ti_id).copied())
            .collect();
        let mut gone = to_check.clone();
        if !to_check.is_empty() {
            let pks: Vec<i64> = to_check.iter().copied().collect();
            for run in self.store.runs_by_pks(&pks).await? {
                if run.state == RunState::Running {
                    gone.remove(&run.id);
                }
            }
            queued.retain(|m| waited.get(&m.ti_id).is_none_or(|run| !gone.contains(run)));
            // Their views get this round's moves, as the evaluated runs' do.
            if let Ok(mut views) = self.views.lock() {
                for run in &to_check {
                    if let Some(tis) = views.remove(run)
                        && !gone.contains(run)
                    {
                        by_run.insert(*run, tis);
                    }
                }
            }
        }
        // Every instance that waited was rationed again now or belongs to a run evaluated
        // anew: what still waits replaces it.
        if let Ok(mut pending) = self.pending.lock() {
            pending.blocked.clear();
            for r in waiting.into_iter().filter(|r| !gone.contains(&r.run)) {
                pending.blocked.entry(r.run).or_default().push(r);
            }
        }
        report.queued += queued.len();
        moves.extend(queued);
        let moved = self.store.apply_transitions(&moves).await?;
        // The worker claims while this round goes on.
        if moves
            .iter()
            .zip(&moved)
            .any(|(m, applied)| *applied && m.to == TaskState::Queued)
        {
            self.worker_wake.notify_one();
        }
        let ended: HashSet<i64> = finished.iter().map(|(run, _)| run.id).collect();
        self.remember(by_run, &moves, &moved, &ended);
        self.expand_mapped(expansions).await?;
        for (run, state) in finished {
            let messages = self.run_messages(run, state);
            if self.store.finish_run(run.id, state, &messages).await? {
                if let Some(start) = run.start_date {
                    metrics::histogram!("weir_dag_run_duration_seconds", "state" => state.as_str())
                        .record((now_micros() - start) as f64 / 1e6);
                }
                report
                    .finished_runs
                    .push((run.dag_id.clone(), run.run_id.clone(), state));
                if !messages.is_empty() {
                    self.outbox_wake.notify_one();
                }
            }
        }
        Ok(())
    }

    /// Expands the mapped task instances that evaluation found ready: renders each one's
    /// `map_over` and makes one instance per item in one transaction, skips it (with the
    /// reason) for an empty list, or fails it with the error for anything but a list. Their
    /// runs are read again and evaluated in the next round, which starts at once.
    async fn expand_mapped(
        &self,
        expansions: Vec<(&RunRow, Arc<Dag>, TiRow)>,
    ) -> Result<(), StoreError> {
        if expansions.is_empty() {
            return Ok(());
        }
        let renderer = weir_template::Renderer::new();
        let variables: std::collections::BTreeMap<String, String> = self
            .store
            .list_variables()
            .await?
            .into_iter()
            .map(|v| (v.key, v.val))
            .collect();
        let mut ends = Vec::new();
        let mut runs = HashSet::new();
        for (run, dag, ti) in &expansions {
            let Some(task) = dag.task(&ti.task_id) else {
                continue;
            };
            let input = mapping::MapInput {
                dag,
                task,
                run,
                xcoms: weir_template::pulled_xcoms(self.store.xcom_texts(run.id).await?),
                variables: variables.clone(),
            };
            let (to, reason) = match mapping::items(&renderer, input, self.config.max_map_length) {
                Ok(items) if items.is_empty() => (
                    TaskState::Skipped,
                    "map_over gave an empty list: no item to run".to_string(),
                ),
                Ok(items) => {
                    if self.store.expand_mapped(ti, &items).await? {
                        tracing::info!(dag = %dag.dag_id, task = %ti.task_id, items = items.len(), "expanded a mapped task");
                    }
                    runs.insert(run.id);
                    continue;
                }
                Err(message) => (TaskState::Failed, message),
            };
            ends.push(weir_store::Transition {
                ti_id: ti.id,
                from: ti.state,
                to,
                next_retry_at: None,
                reason: Some(reason),
            });
            runs.insert(run.id);
        }
        self.store.apply_transitions(&ends).await?;
        let now = now_micros();
        if let (Ok(mut views), Ok(mut pending)) = (self.views.lock(), self.pending.lock()) {
            for run in runs {
                views.remove(&run);
                pending.due.insert((now, run));
            }
        }
        self.wake.notify_one();
        Ok(())
    }

    /// The shape of `dag`, computed once per parsed version of it.
    fn shape(&self, dag: &Arc<Dag>) -> Arc<DagShape> {
        let mut shapes = self.shapes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((version, shape)) = shapes.get(&dag.dag_id)
            && Arc::ptr_eq(version, dag)
        {
            return shape.clone();
        }
        let shape = Arc::new(DagShape::new(dag));
        shapes.insert(dag.dag_id.clone(), (dag.clone(), shape.clone()));
        shape
    }

    /// The task instances of `runs`, by run: from this scheduler's views where it holds
    /// them, from the store for the others (one query).
    async fn task_instances_of(
        &self,
        runs: &[RunRow],
    ) -> Result<HashMap<i64, Vec<TiRow>>, StoreError> {
        let mut by_run: HashMap<i64, Vec<TiRow>> = HashMap::with_capacity(runs.len());
        let mut missing = Vec::new();
        if let Ok(mut views) = self.views.lock() {
            for run in runs {
                match views.remove(&run.id) {
                    Some(tis) => {
                        by_run.insert(run.id, tis);
                    }
                    None => missing.push(run.id),
                }
            }
        }
        if !missing.is_empty() {
            for ti in self.store.task_instances_of_runs(&missing).await? {
                by_run.entry(ti.run_pk).or_default().push(ti);
            }
        }
        Ok(by_run)
    }

    /// Keeps the views of the evaluated runs that go on running, with this round's moves in
    /// them; a run with a move that did not apply (someone else changed the instance) is
    /// read again next time.
    fn remember(
        &self,
        mut by_run: HashMap<i64, Vec<TiRow>>,
        moves: &[weir_store::Transition],
        moved: &[bool],
        ended: &HashSet<i64>,
    ) {
        let mut stale: HashSet<i64> = ended.clone();
        let run_of: HashMap<i64, i64> = by_run
            .iter()
            .flat_map(|(run, tis)| tis.iter().map(move |t| (t.id, *run)))
            .collect();
        for (m, ok) in moves.iter().zip(moved) {
            let Some(&run) = run_of.get(&m.ti_id) else {
                continue;
            };
            if !*ok {
                stale.insert(run);
                continue;
            }
            if let Some(tis) = by_run.get_mut(&run)
                && let Ok(i) = tis.binary_search_by_key(&m.ti_id, |t| t.id)
            {
                tis[i].state = m.to;
                tis[i].next_retry_at = m.next_retry_at;
                tis[i].reason = m.reason.clone();
                if m.to == TaskState::None {
                    tis[i].decision = None;
                }
            }
        }
        if let Ok(mut views) = self.views.lock() {
            for (run, tis) in by_run {
                if !stale.contains(&run) {
                    views.insert(run, tis);
                }
            }
        }
    }

    /// Applies what in-process workers reported to the views; a change of unknown outcome
    /// drops its run's view, to be read again.
    fn apply_changes(&self, changes: HashMap<i64, Vec<weir_core::TiChange>>) {
        let Ok(mut views) = self.views.lock() else {
            return;
        };
        for (run, changes) in changes {
            let Some(tis) = views.get_mut(&run) else {
                continue;
            };
            let known = changes.iter().all(|c| {
                let Some(state) = c.state else {
                    return false;
                };
                match tis.binary_search_by_key(&c.ti_id, |t| t.id) {
                    Ok(i) => {
                        let ti = &mut tis[i];
                        ti.state = state;
                        ti.try_number = c.try_number;
                        ti.next_retry_at = c.next_retry_at;
                        true
                    }
                    Err(_) => false,
                }
            });
            if !known {
                views.remove(&run);
            }
        }
    }

    /// The runs this round evaluates, or `None` for all of them (a sweep is due).
    async fn runs_to_evaluate(
        &self,
        started: Vec<i64>,
        now: i64,
    ) -> Result<(HashSet<i64>, bool), StoreError> {
        let mut wanted: HashSet<i64> = started.into_iter().collect();
        let changes = self
            .changed_runs
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default();
        wanted.extend(changes.keys().copied());
        self.apply_changes(changes);
        let mut sweep = false;
        let poll_since = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if pending.last_sweep.is_none_or(|t| t.elapsed() >= SWEEP) {
                // The sweep compares every instance with the views: no poll this round.
                pending.last_sweep = Some(Instant::now());
                pending.last_poll = Some(Instant::now());
                pending.ended_since = now - ENDED_MARGIN;
                sweep = true;
                // What waits for room is evaluated anew from time to time (a DAG parsed
                // anew may weigh or pool its tasks differently).
                wanted.extend(pending.blocked.keys().copied());
            }
            while let Some(&(at, run)) = pending.due.first() {
                if at > now {
                    break;
                }
                pending.due.pop_first();
                wanted.insert(run);
            }
            if !sweep
                && pending
                    .last_poll
                    .is_none_or(|t| t.elapsed() >= self.config.poll)
            {
                pending.last_poll = Some(Instant::now());
                let since = pending.ended_since;
                pending.ended_since = now - ENDED_MARGIN;
                Some(since)
            } else {
                None
            }
        };
        if let Some(since) = poll_since {
            // Instances that ended lately: those this scheduler's views do not already hold
            // in that state were changed by other processes; their runs are read again.
            let ended = self.store.ended_since(since).await?;
            if let Ok(mut views) = self.views.lock() {
                for (run, ti_id, state) in ended {
                    let known = views.get(&run).is_some_and(|tis| {
                        tis.binary_search_by_key(&ti_id, |t| t.id)
                            .is_ok_and(|i| tis[i].state == state)
                    });
                    if !known {
                        views.remove(&run);
                        wanted.insert(run);
                    }
                }
            }
        }
        Ok((wanted, sweep))
    }

    /// For a sweep: the running runs whose instances changed without this scheduler being
    /// told (another process cleared, marked or finished them), or that it holds no view of,
    /// or whose DAG was parsed anew. Compares how many instances of each run are in each
    /// state, as the store counts them (a covering index answers it without reading a row),
    /// with its views: a run of ten thousand deferred sensors costs a few rows a sweep, not
    /// ten thousand. Two opposite moves between the same two states in one sweep would cancel
    /// out; the poll of instances that ended, and the next change, still catch them.
    /// Changed runs lose their views and are read again.
    async fn changed_behind_our_back(&self) -> Result<HashSet<i64>, StoreError> {
        let counts = self.store.running_instance_state_counts().await?;
        let mut by_run: HashMap<i64, HashMap<TaskState, i64>> = HashMap::new();
        for (run, state, n) in counts {
            *by_run
                .entry(run)
                .or_default()
                .entry(swept(state))
                .or_default() += n;
        }
        let mut changed = HashSet::new();
        let dags = self.dags();
        let (Ok(dags), Ok(shapes), Ok(mut views)) =
            (dags.read(), self.shapes.lock(), self.views.lock())
        else {
            return Ok(by_run.into_keys().collect());
        };
        // Views of runs that are no longer running go.
        views.retain(|run, _| by_run.contains_key(run));
        for (run, stored) in by_run {
            let same = views.get(&run).is_some_and(|tis| {
                let mut held: HashMap<TaskState, i64> = HashMap::new();
                for t in tis {
                    *held.entry(swept(t.state)).or_default() += 1;
                }
                held == stored
            });
            if !same {
                views.remove(&run);
                changed.insert(run);
                continue;
            }
            // A new version of the run's DAG (tasks added or removed) asks for a look.
            let dag_id = views
                .get(&run)
                .and_then(|tis| tis.first())
                .map(|t| t.dag_id.clone());
            let current = dag_id.as_ref().and_then(|d| dags.get(d));
            let seen = dag_id.as_ref().and_then(|d| shapes.get(d));
            let new_version = match (current, seen) {
                (Some(current), Some((seen, _))) => !Arc::ptr_eq(current, seen),
                _ => true,
            };
            if new_version {
                changed.insert(run);
            }
        }
        Ok(changed)
    }

    /// Tasks with an `sla` (a duration from the run's start) that have not succeeded by then get
    /// the DAG's `sla_miss` notification, once per task and run: the miss is recorded in the
    /// store with its notification, so a restarted scheduler does not send it again. Returns
    /// the next SLA deadline still ahead, so the scheduler wakes for it.
    async fn check_slas(
        &self,
        dag: &Dag,
        run: &RunRow,
        tis: &[TiRow],
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let Some(callbacks) = dag.callbacks.get("sla_miss") else {
            return Ok(None);
        };
        let Some(started) = run.start_date else {
            return Ok(None);
        };
        let mut next = None;
        for task in dag.tasks.iter().filter(|t| t.sla.is_some()) {
            let sla = task.sla.unwrap_or_default();
            let deadline = started + sla.as_micros() as i64;
            let Some(ti) = tis.iter().find(|t| t.task_id == task.task_id) else {
                continue;
            };
            if matches!(ti.state, TaskState::Success | TaskState::Skipped) {
                continue;
            }
            if now < deadline {
                next = Some(next.map_or(deadline, |n: i64| n.min(deadline)));
                continue;
            }
            let key = (run.id, task.task_id.clone());
            if self
                .slas_missed
                .lock()
                .map(|sent| sent.contains(&key))
                .unwrap_or(false)
            {
                continue;
            }
            let event = weir_core::notify::Event {
                event: "sla_miss".into(),
                dag_id: run.dag_id.clone(),
                run_id: Some(run.run_id.clone()),
                task_id: Some(task.task_id.clone()),
                try_number: Some(ti.try_number),
                state: Some(ti.state.to_string()),
                logical_date: Some(weir_core::iso(timestamp(run.logical_date))),
                message: Some(format!(
                    "task {}.{} has not succeeded within its sla of {} from the run's start",
                    run.dag_id,
                    task.task_id,
                    weir_core::format_duration(sla)
                )),
                ..Default::default()
            };
            let messages = NewMessage::notifications(callbacks, &event);
            if self
                .store
                .record_sla_miss(run.id, &ti.task_id, ti.map_index, &messages)
                .await?
            {
                self.outbox_wake.notify_one();
            }
            if let Ok(mut sent) = self.slas_missed.lock() {
                sent.insert(key);
            }
        }
        Ok(next)
    }

    /// The DAG's `on_failure` / `on_success` notifications of a finished run, to write with
    /// the run's final state.
    fn run_messages(&self, run: &RunRow, state: RunState) -> Vec<NewMessage> {
        let key = match state {
            RunState::Failed => "on_failure",
            RunState::Success => "on_success",
            _ => return Vec::new(),
        };
        let Some(dag) = self.dag(&run.dag_id) else {
            return Vec::new();
        };
        let Some(callbacks) = dag.callbacks.get(key) else {
            return Vec::new();
        };
        let event = weir_core::notify::Event {
            event: if state == RunState::Failed {
                "failure"
            } else {
                "success"
            }
            .into(),
            dag_id: run.dag_id.clone(),
            run_id: Some(run.run_id.clone()),
            state: Some(state.to_string()),
            logical_date: Some(weir_core::iso(timestamp(run.logical_date))),
            ..Default::default()
        };
        NewMessage::notifications(callbacks, &event)
    }

    /// The runs this scheduler drives: all, or only those of `only_runs`.
    fn driven(&self, runs: Vec<RunRow>) -> Vec<RunRow> {
        if self.config.only_runs.is_empty() {
            runs
        } else {
            runs.into_iter()
                .filter(|r| self.config.only_runs.contains(&r.id))
                .collect()
        }
    }

    /// Makes `dags` the DAGs this scheduler knows, without reading the folder (in-process
    /// runs of one DAG).
    pub fn set_dags(&self, dags: Vec<Arc<Dag>>) {
        self.loader.set(dags);
    }

    /// For `depends_on_past`: each task's state in the previous run of the same DAG.
    async fn past_states(
        &self,
        dag: &Dag,
        run: &RunRow,
    ) -> Result<HashMap<String, TaskState>, StoreError> {
        let Some(prev) = self
            .store
            .previous_run(&dag.dag_id, run.logical_date)
            .await?
        else {
            return Ok(HashMap::new());
        };
        Ok(self
            .store
            .task_instances(prev.id)
            .await?
            .into_iter()
            .map(|t| (t.task_id, t.state))
            .collect())
    }
}

/// A new run of `dag` of `run_type` at `logical_date` covering `interval`, with the run id
/// from its type and logical date; callers may change any field before [`create_run`].
pub fn new_run(
    dag: &Dag,
    run_type: RunType,
    logical_date: Timestamp,
    interval: DataInterval,
    conf: serde_json::Map<String, serde_json::Value>,
) -> NewRun {
    NewRun {
        dag_id: dag.dag_id.clone(),
        run_id: run_id(run_type, logical_date),
        run_type,
        logical_date: micros(logical_date),
        data_interval_start: micros(interval.start),
        data_interval_end: micros(interval.end),
        conf,
        backfill_id: None,
        parent_ti_id: None,
    }
}

/// Creates `new`, a run of `dag`, with a task instance per task; `None` when a run with the
/// same id or logical date exists.
pub async fn create_run(
    store: &Store,
    dag: &Dag,
    new: &NewRun,
) -> Result<Option<RunRow>, StoreError> {
    store.create_run(new, &task_seeds(dag)).await
}

/// Creates many runs of `dag` with their task instances, a hundred to a transaction (a
/// backfill of years of daily runs); `None` for each that already existed.
pub async fn create_runs(
    store: &Store,
    dag: &Dag,
    new: Vec<NewRun>,
) -> Result<Vec<Option<RunRow>>, StoreError> {
    let seeds = task_seeds(dag);
    let runs: Vec<(NewRun, Vec<TaskSeed>)> = new.into_iter().map(|n| (n, seeds.clone())).collect();
    store.create_runs(&runs).await
}

/// The task instances a new run of `dag` gets, with Airflow's downstream priority weights.
fn task_seeds(dag: &Dag) -> Vec<TaskSeed> {
    dag.tasks
        .iter()
        .zip(dag.priority_weights())
        .map(|(task, weight)| TaskSeed {
            priority_weight: weight,
            ..TaskSeed::from(task)
        })
        .collect()
}

/// A DAG version and its shape.
type Shaped = (Arc<Dag>, Arc<DagShape>);

/// Runs the next round evaluates besides the changed ones.
#[derive(Debug, Default)]
struct Pending {
    /// By run: task instances found ready that got no room, rationed again in every round
    /// without evaluating their runs again (a thousand runs waiting behind `parallelism` cost
    /// a sort per round, not a read and an evaluation of each). A run evaluated again, and
    /// every run at a sweep, replaces its own.
    blocked: HashMap<i64, Vec<Ready>>,
    /// `(when, run)`: runs to evaluate at a time (a retry is due, an sla runs out).
    due: std::collections::BTreeSet<(i64, i64)>,
    /// When the last full evaluation and the last look for other processes' changes were.
    last_sweep: Option<Instant>,
    last_poll: Option<Instant>,
    /// Task instances that ended at or after this were looked for by the last poll.
    ended_since: i64,
}

/// Every running run's instance states are compared with the views this often, whatever
/// announced a change.
const SWEEP: Duration = Duration::from_secs(2);

/// A state as the sweep compares it: `queued` and `running` are one, since a worker's claim
/// (one to the other) is not announced and changes nothing the scheduler decides; told apart,
/// every sweep during a fan-out of ten thousand tries read the whole run again.
fn swept(state: TaskState) -> TaskState {
    match state {
        TaskState::Running => TaskState::Queued,
        other => other,
    }
}

/// How far back a poll for ended task instances reaches before its last look: a finish
/// commits a little after its end_date was taken.
const ENDED_MARGIN: i64 = 2_000_000;

fn earliest(a: Option<Timestamp>, b: Timestamp) -> Option<Timestamp> {
    Some(a.map_or(b, |a| a.min(b)))
}
