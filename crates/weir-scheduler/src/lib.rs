//! weir-scheduler: decides what runs next. It never runs user code.
//!
//! Owns the DAG folder watch ([`folder`]), run creation from timetables (catchup,
//! `max_active_runs`), task readiness (trigger rules, `depends_on_past`, retries, pools,
//! `parallelism`, `max_active_tasks`), run completion, and the zombie reaper. Key type:
//! [`Scheduler`]; one [`Scheduler::tick`] does one round of all of it.
//!
//! Architecture invariants: every state change goes through the store's compare-and-set, so
//! several schedulers may run at once; a broken DAG file becomes an import error and never
//! stops the others; runs are created only through `Store::create_run`, which refuses a
//! second run for the same logical date.

pub mod folder;

use folder::{DagFolder, Parsed};
use jiff::Timestamp;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use weir_core::state::{Readiness, UpstreamCounts};
use weir_core::{
    Dag, DataInterval, RunState, RunType, SharedDags, TaskState, Timetable, micros, now_micros,
    run_id, timestamp,
};
use weir_store::{Finish, NewRun, RunRow, Store, StoreError, TaskSeed, TiRow, Transition};

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
    dags: SharedDags,
    folder: Mutex<DagFolder>,
    /// Woken by workers when a try ends, and by anything else that wants a round now.
    pub wake: Arc<Notify>,
    /// Woken when task instances were queued.
    pub worker_wake: Arc<Notify>,
    hostname: String,
    last_scan: Mutex<Option<Instant>>,
    last_reap: Mutex<Option<Instant>>,
    /// DAG-level notifications being sent; [`Scheduler::flush_notifications`] waits for them.
    notifications: Mutex<tokio::task::JoinSet<()>>,
    /// (run, task) pairs whose sla_miss was sent by this process.
    slas_missed: Mutex<std::collections::HashSet<(i64, String)>>,
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
            config,
            dags: SharedDags::default(),
            folder: Mutex::new(folder),
            wake: Arc::new(Notify::new()),
            worker_wake: Arc::new(Notify::new()),
            hostname: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "localhost".into()),
            last_scan: Mutex::new(None),
            last_reap: Mutex::new(None),
            notifications: Mutex::new(tokio::task::JoinSet::new()),
            slas_missed: Mutex::new(Default::default()),
        }
    }

    /// Waits (up to `limit`) for DAG-level notifications still being sent, so a process that
    /// is about to exit delivers them.
    pub async fn flush_notifications(&self, limit: Duration) {
        let mut pending = match self.notifications.lock() {
            Ok(mut set) => std::mem::take(&mut *set),
            Err(_) => return,
        };
        let _ = tokio::time::timeout(limit, async {
            while pending.join_next().await.is_some() {}
        })
        .await;
    }

    /// The DAGs as last parsed, shared with in-process workers.
    pub fn dags(&self) -> SharedDags {
        self.dags.clone()
    }

    pub fn dag(&self, dag_id: &str) -> Option<Arc<Dag>> {
        self.dags.read().ok()?.get(dag_id).cloned()
    }

    /// Runs rounds until `shutdown` turns true.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) -> Result<(), StoreError> {
        let job = self
            .store
            .start_job("scheduler", &self.hostname, now_micros())
            .await?;
        let mut last_beat = Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let report = match self.tick().await {
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
            if report.queued > 0 {
                self.worker_wake.notify_one();
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
                _ = shutdown.changed() => {}
            }
        }
        self.store.end_job(job, now_micros()).await?;
        Ok(())
    }

    /// One round: re-read changed DAG files (when due), create due runs, start queued runs,
    /// move ready task instances to queued, finish completed runs, reap zombies (when due).
    pub async fn tick(&self) -> Result<TickReport, StoreError> {
        let mut report = TickReport::default();
        if !self.config.only_runs.is_empty() {
            self.start_queued_runs().await?;
            self.schedule_task_instances(&mut report).await?;
            return Ok(report);
        }
        let scan_due = self
            .last_scan
            .lock()
            .map(|l| l.is_none_or(|t| t.elapsed() >= self.config.dag_dir_list_interval))
            .unwrap_or(true);
        if scan_due {
            self.sync_dag_folder().await?;
            report.runs_created = self.create_scheduled_runs(&mut report).await?;
            if let Ok(mut l) = self.last_scan.lock() {
                *l = Some(Instant::now());
            }
        }
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
        self.start_queued_runs().await?;
        self.schedule_task_instances(&mut report).await?;
        Ok(report)
    }

    /// Reads the DAG folder and brings the store and the shared DAG map up to date.
    pub async fn sync_dag_folder(&self) -> Result<(), StoreError> {
        let (scan, all): (folder::Scan, Vec<(String, Parsed)>) = {
            let mut folder = self.folder.lock().unwrap_or_else(|e| e.into_inner());
            let scan = folder.scan();
            let all = folder
                .all()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            (scan, all)
        };
        if scan.changed.is_empty()
            && scan.removed.is_empty()
            && !self.dags.read().map(|d| d.is_empty()).unwrap_or(true)
        {
            return Ok(());
        }
        let now = now_micros();
        // A DAG id defined by two files: the first file (by name) wins, the second is an error.
        let mut owner: HashMap<String, String> = HashMap::new();
        let mut dags: HashMap<String, Arc<Dag>> = HashMap::new();
        let mut errors: Vec<(String, String)> = Vec::new();
        let mut files = Vec::new();
        for (file, parsed) in &all {
            files.push(file.clone());
            match parsed {
                Parsed::Dag(dag) => {
                    if let Some(first) = owner.get(&dag.dag_id) {
                        errors.push((
                            file.clone(),
                            format!("{file}:1: dag_id '{}' is already defined in {first}\n  hint: give each DAG file its own dag_id", dag.dag_id),
                        ));
                    } else {
                        owner.insert(dag.dag_id.clone(), file.clone());
                        dags.insert(dag.dag_id.clone(), Arc::new((**dag).clone()));
                    }
                }
                Parsed::Error(message) => errors.push((file.clone(), message.clone())),
            }
        }
        // A file that breaks keeps its last good DAG running (as Airflow keeps the last
        // serialized version) until it is fixed or deleted; its import error says what is wrong.
        let previous: Vec<Arc<Dag>> = self
            .dags
            .read()
            .map(|d| d.values().cloned().collect())
            .unwrap_or_default();
        for (file, _) in &errors {
            for dag in previous.iter().filter(|d| &d.fileloc == file) {
                if !dags.contains_key(&dag.dag_id) {
                    owner.insert(dag.dag_id.clone(), file.clone());
                    dags.insert(dag.dag_id.clone(), dag.clone());
                }
            }
        }
        let changed_files: HashSet<&str> =
            scan.changed.iter().map(|(f, _, _)| f.as_str()).collect();
        let hashes: HashMap<&str, &str> = scan
            .changed
            .iter()
            .map(|(f, h, _)| (f.as_str(), h.as_str()))
            .collect();
        let to_write: Vec<(&Dag, &str)> = dags
            .values()
            .filter(|d| changed_files.contains(d.fileloc.as_str()) || self.dag(&d.dag_id).is_none())
            .map(|d| {
                (
                    d.as_ref(),
                    hashes.get(d.fileloc.as_str()).copied().unwrap_or(""),
                )
            })
            .collect();
        self.store
            .upsert_dags(&to_write, self.config.paused_by_default, now)
            .await?;
        let keep: Vec<String> = dags.keys().cloned().collect();
        self.store.deactivate_dags_except(&keep).await?;
        let error_files: HashSet<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        for (file, message) in &errors {
            self.store
                .set_import_error(file, Some(message), now)
                .await?;
        }
        for file in changed_files.iter().filter(|f| !error_files.contains(**f)) {
            self.store.set_import_error(file, None, now).await?;
        }
        self.store.retain_import_errors(&files).await?;
        for (file, _) in &errors {
            if changed_files.contains(file.as_str()) {
                tracing::warn!("import error in {file}");
            }
        }
        if let Ok(mut shared) = self.dags.write() {
            *shared = dags;
        }
        Ok(())
    }

    /// Creates every scheduled run that is due, per DAG, up to `max_active_runs` active runs.
    async fn create_scheduled_runs(&self, report: &mut TickReport) -> Result<usize, StoreError> {
        let now = Timestamp::now();
        let paused: HashMap<String, bool> = self
            .store
            .list_dags()
            .await?
            .into_iter()
            .map(|d| (d.dag_id, d.is_paused))
            .collect();
        let active = self.active_run_counts().await?;
        let dags: Vec<Arc<Dag>> = self
            .dags
            .read()
            .map(|d| d.values().cloned().collect())
            .unwrap_or_default();
        let mut created = 0;
        for dag in dags {
            if paused.get(&dag.dag_id).copied().unwrap_or(true) {
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
                    break;
                }
                if self
                    .create_run(&dag, RunType::Scheduled, next, serde_json::Map::new())
                    .await?
                    .is_some()
                {
                    created += 1;
                    running += 1;
                }
                last = Some(next);
            }
        }
        Ok(created)
    }

    async fn active_run_counts(&self) -> Result<HashMap<String, usize>, StoreError> {
        let mut counts = HashMap::new();
        for run in self
            .store
            .runs_in_states(&[RunState::Queued, RunState::Running])
            .await?
        {
            *counts.entry(run.dag_id).or_insert(0) += 1;
        }
        Ok(counts)
    }

    /// Creates one run of `dag` for `interval`, with a task instance per task.
    pub async fn create_run(
        &self,
        dag: &Dag,
        run_type: RunType,
        interval: DataInterval,
        conf: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Option<RunRow>, StoreError> {
        create_run(
            &self.store,
            dag,
            run_type,
            interval.start,
            interval,
            conf,
            None,
        )
        .await
    }

    /// Moves queued runs to running while their DAG has fewer than `max_active_runs` running.
    async fn start_queued_runs(&self) -> Result<(), StoreError> {
        let runs = self.driven(
            self.store
                .runs_in_states(&[RunState::Queued, RunState::Running])
                .await?,
        );
        let mut running: HashMap<&str, usize> = HashMap::new();
        for run in runs.iter().filter(|r| r.state == RunState::Running) {
            *running.entry(run.dag_id.as_str()).or_insert(0) += 1;
        }
        for run in runs.iter().filter(|r| r.state == RunState::Queued) {
            let Some(dag) = self.dag(&run.dag_id) else {
                continue;
            };
            let count = running.entry(run.dag_id.as_str()).or_insert(0);
            if *count < dag.max_active_runs as usize
                && self
                    .store
                    .set_run_state(run.id, RunState::Queued, RunState::Running)
                    .await?
            {
                *count += 1;
            }
        }
        Ok(())
    }

    /// Evaluates every running run: ready task instances become queued (within pool,
    /// parallelism and `max_active_tasks` limits), impossible ones skipped or
    /// upstream_failed, and finished runs get their final state.
    async fn schedule_task_instances(&self, report: &mut TickReport) -> Result<(), StoreError> {
        let runs = self.driven(self.store.runs_in_states(&[RunState::Running]).await?);
        if runs.is_empty() {
            return Ok(());
        }
        let pks: Vec<i64> = runs.iter().map(|r| r.id).collect();
        let all = self.store.task_instances_of_runs(&pks).await?;
        let mut by_run: HashMap<i64, Vec<TiRow>> = HashMap::new();
        for ti in all {
            by_run.entry(ti.run_pk).or_default().push(ti);
        }
        let mut capacity = Capacity::load(&self.store, self.config.parallelism).await?;
        let now = now_micros();
        let mut moves = Vec::new();
        let mut finished = Vec::new();
        for run in &runs {
            let Some(dag) = self.dag(&run.dag_id) else {
                continue;
            };
            let tis = by_run.remove(&run.id).unwrap_or_default();
            let past = if dag.tasks.iter().any(|t| t.depends_on_past) {
                self.past_states(&dag, run).await?
            } else {
                HashMap::new()
            };
            let outcome = evaluate_run(&dag, &tis, now, &past, &mut capacity);
            if let Some(due) = self.check_slas(&dag, run, &tis, now) {
                report.next_due = earliest(report.next_due, timestamp(due));
            }
            report.next_due = match outcome.next_retry {
                Some(t) => earliest(report.next_due, timestamp(t)),
                None => report.next_due,
            };
            report.queued += outcome
                .moves
                .iter()
                .filter(|m| m.to == TaskState::Queued)
                .count();
            moves.extend(outcome.moves);
            if let Some(state) = outcome.run_state {
                finished.push((run, state));
            }
        }
        self.store.apply_transitions(&moves).await?;
        for (run, state) in finished {
            if self
                .store
                .set_run_state(run.id, RunState::Running, state)
                .await?
            {
                report
                    .finished_runs
                    .push((run.dag_id.clone(), run.run_id.clone(), state));
                self.notify_run(run, state);
            }
        }
        Ok(())
    }

    /// Tasks with an `sla` (a duration from the run's start) that have not succeeded by then get
    /// the DAG's `sla_miss` notification, once per task and run in this process. Returns the
    /// next SLA deadline still ahead, so the scheduler wakes for it.
    fn check_slas(&self, dag: &Dag, run: &RunRow, tis: &[TiRow], now: i64) -> Option<i64> {
        let callbacks = dag.callbacks.get("sla_miss")?;
        let started = run.start_date?;
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
            let first = self
                .slas_missed
                .lock()
                .map(|mut sent| sent.insert(key))
                .unwrap_or(false);
            if !first {
                continue;
            }
            let event = weir_ops::notify::Event {
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
            self.send_in_background(callbacks.clone(), event);
        }
        next
    }

    fn send_in_background(&self, callbacks: serde_json::Value, event: weir_ops::notify::Event) {
        let rt = StoreRuntime {
            store: self.store.clone(),
            project_dir: self.config.project_dir.clone(),
        };
        let send = async move {
            for line in weir_ops::notify::deliver(&callbacks, &event, &rt).await {
                tracing::info!(dag = %event.dag_id, "{line}");
            }
        };
        if let Ok(mut set) = self.notifications.lock() {
            while set.try_join_next().is_some() {}
            set.spawn(send);
        }
    }

    /// Sends the DAG's `on_failure` / `on_success` notifications of a finished run in the
    /// background; deliveries and failures go to the scheduler's log.
    fn notify_run(&self, run: &RunRow, state: RunState) {
        let key = match state {
            RunState::Failed => "on_failure",
            RunState::Success => "on_success",
            _ => return,
        };
        let Some(dag) = self.dag(&run.dag_id) else {
            return;
        };
        let Some(callbacks) = dag.callbacks.get(key).cloned() else {
            return;
        };
        let event = weir_ops::notify::Event {
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
        self.send_in_background(callbacks, event);
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
        if let Ok(mut shared) = self.dags.write() {
            *shared = dags.into_iter().map(|d| (d.dag_id.clone(), d)).collect();
        }
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

    /// Finds running task instances whose heartbeat stopped (or whose worker process on this
    /// host is gone), kills what is left of their process group here, and retries or fails
    /// them per their retries.
    pub async fn reap_zombies(&self) -> Result<usize, StoreError> {
        let now = now_micros();
        let stale_before = now - self.config.zombie_threshold.as_micros() as i64;
        let running = self.store.zombies(now + 1).await?;
        let mut finishes = Vec::new();
        let mut reaped = Vec::new();
        for ti in running {
            let stale = ti.heartbeat.is_none_or(|hb| hb < stale_before);
            let dead_here = ti
                .worker
                .as_deref()
                .is_some_and(|w| self.worker_is_dead_here(w));
            if !(stale || dead_here) {
                continue;
            }
            if let Some(pid) = ti.pid.filter(|p| *p > 0)
                && ti
                    .worker
                    .as_deref()
                    .is_some_and(|w| w.split(':').next() == Some(self.hostname.as_str()))
            {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            if let Some(worker) = ti.worker.as_deref()
                && worker.split(':').next() == Some(self.hostname.as_str())
            {
                kill_tagged(&weir_core::try_tag(worker, ti.id, ti.try_number));
            }
            let (state, next_retry_at) = if ti.try_number <= ti.max_tries {
                let delay = self
                    .dag(&ti.dag_id)
                    .and_then(|d| {
                        d.task(&ti.task_id)
                            .map(|t| t.retry_delay_after(ti.try_number as u32))
                    })
                    .unwrap_or_default();
                (TaskState::UpForRetry, Some(now + delay.as_micros() as i64))
            } else {
                (TaskState::Failed, None)
            };
            finishes.push(Finish {
                ti_id: ti.id,
                try_number: ti.try_number,
                state,
                next_retry_at,
            });
            reaped.push((ti, state));
        }
        let applied = self.store.finish(&finishes).await?;
        let mut count = 0;
        for ((ti, state), ok) in reaped.into_iter().zip(applied) {
            if !ok {
                continue;
            }
            count += 1;
            let path = weir_core::log_path(
                &self.config.log_dir,
                &ti.dag_id,
                &ti.run_id,
                &ti.task_id,
                ti.try_number,
            );
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
            {
                use std::io::Write;
                let _ = writeln!(
                    f,
                    "[{}] ERROR - zombie: the heartbeat of worker {} stopped; marked {state}",
                    Timestamp::now(),
                    ti.worker.as_deref().unwrap_or("?")
                );
            }
            tracing::warn!(dag = %ti.dag_id, task = %ti.task_id, "reaped a zombie task instance: {state}");
        }
        if count > 0 {
            self.wake.notify_one();
        }
        Ok(count)
    }

    /// A worker id is `host:pid:start`; on this host a missing pid means the worker is gone.
    fn worker_is_dead_here(&self, worker: &str) -> bool {
        let mut parts = worker.split(':');
        let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
            return false;
        };
        if host != self.hostname {
            return false;
        }
        let Ok(pid) = pid.parse::<i32>() else {
            return false;
        };
        if pid as u32 == std::process::id() {
            return false;
        }
        matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        )
    }
}

/// Connections for the scheduler's notifications.
struct StoreRuntime {
    store: Store,
    project_dir: PathBuf,
}

impl weir_ops::Runtime for StoreRuntime {
    fn log(&self, line: &str) {
        tracing::info!("{line}");
    }

    fn connection<'a>(
        &'a self,
        conn_id: &'a str,
    ) -> weir_ops::BoxFuture<'a, Result<weir_core::connection::Connection, String>> {
        Box::pin(async move {
            self.store
                .resolve_connection(conn_id)
                .await
                .map_err(|e| format!("connection '{conn_id}': {e}"))?
                .ok_or_else(|| format!("connection '{conn_id}' does not exist"))
        })
    }

    fn project_dir(&self) -> &std::path::Path {
        &self.project_dir
    }
}

/// Kills every process on this host whose environment carries `tag` as its try tag: what a
/// dead worker's try left running, including children that left its process group. Linux
/// only (reads `/proc`); elsewhere the process group kill is all there is.
fn kill_tagged(tag: &str) {
    let needle = format!("{}={tag}\0", weir_core::TRY_TAG_ENV);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
        {
            tracing::info!(pid, "killing a leftover process of a dead worker's try");
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Creates one run of `dag`: its run id from the type and logical date unless given.
pub async fn create_run(
    store: &Store,
    dag: &Dag,
    run_type: RunType,
    logical_date: Timestamp,
    interval: DataInterval,
    conf: serde_json::Map<String, serde_json::Value>,
    run_id_override: Option<String>,
) -> Result<Option<RunRow>, StoreError> {
    let seeds: Vec<TaskSeed> = dag.tasks.iter().map(TaskSeed::from).collect();
    let new = NewRun {
        dag_id: dag.dag_id.clone(),
        run_id: run_id_override.unwrap_or_else(|| run_id(run_type, logical_date)),
        run_type,
        logical_date: micros(logical_date),
        data_interval_start: micros(interval.start),
        data_interval_end: micros(interval.end),
        conf,
    };
    store.create_run(&new, &seeds).await
}

fn earliest(a: Option<Timestamp>, b: Timestamp) -> Option<Timestamp> {
    Some(a.map_or(b, |a| a.min(b)))
}

/// Free slots: overall, per DAG, per pool.
#[derive(Debug, Clone)]
pub struct Capacity {
    pub parallelism_left: i64,
    pub dag_active: HashMap<String, i64>,
    pub pool_free: HashMap<String, i64>,
}

impl Capacity {
    async fn load(store: &Store, parallelism: usize) -> Result<Capacity, StoreError> {
        let dag_active: HashMap<String, i64> =
            store.active_task_counts().await?.into_iter().collect();
        let used: HashMap<String, i64> = store.pool_usage().await?.into_iter().collect();
        let pool_free = store
            .pools()
            .await?
            .into_iter()
            .map(|(name, slots)| {
                let free = slots - used.get(&name).copied().unwrap_or(0);
                (name, free)
            })
            .collect();
        Ok(Capacity {
            parallelism_left: parallelism as i64 - dag_active.values().sum::<i64>(),
            dag_active,
            pool_free,
        })
    }

    /// Takes room for one task instance, or says there is none.
    fn take(&mut self, dag: &Dag, pool: &str, slots: i64) -> bool {
        let dag_used = self.dag_active.get(&dag.dag_id).copied().unwrap_or(0);
        let pool_free = self.pool_free.get(pool).copied();
        if self.parallelism_left <= 0 || dag_used >= dag.max_active_tasks as i64 {
            return false;
        }
        if pool_free.is_some_and(|free| free < slots) {
            return false;
        }
        self.parallelism_left -= 1;
        *self.dag_active.entry(dag.dag_id.clone()).or_insert(0) += 1;
        if let Some(free) = self.pool_free.get_mut(pool) {
            *free -= slots;
        }
        true
    }
}

/// What evaluating one run decided.
#[derive(Debug, Default)]
pub struct RunOutcome {
    pub moves: Vec<Transition>,
    /// Set when every task instance has finished.
    pub run_state: Option<RunState>,
    /// The earliest pending retry time.
    pub next_retry: Option<i64>,
}

/// Decides, for one running run, which task instances move where. Pure: reads the current
/// states and returns compare-and-set transitions.
pub fn evaluate_run(
    dag: &Dag,
    tis: &[TiRow],
    now: i64,
    past: &HashMap<String, TaskState>,
    capacity: &mut Capacity,
) -> RunOutcome {
    let mut out = RunOutcome::default();
    let mut state: HashMap<&str, TaskState> =
        tis.iter().map(|t| (t.task_id.as_str(), t.state)).collect();
    let by_task: HashMap<&str, &TiRow> = tis.iter().map(|t| (t.task_id.as_str(), t)).collect();
    let order = topological_order(dag);
    for index in order {
        let task = &dag.tasks[index];
        let Some(ti) = by_task.get(task.task_id.as_str()) else {
            continue;
        };
        let current = state[task.task_id.as_str()];
        let next = match current {
            TaskState::None | TaskState::Scheduled => {
                let mut counts = UpstreamCounts::default();
                for up in &task.depends_on {
                    counts.add(
                        state
                            .get(up.as_str())
                            .copied()
                            .unwrap_or(TaskState::Removed),
                    );
                }
                match task.trigger_rule.evaluate(counts) {
                    Readiness::Wait => None,
                    Readiness::Skip => Some(TaskState::Skipped),
                    Readiness::UpstreamFailed => Some(TaskState::UpstreamFailed),
                    Readiness::Run => {
                        let past_ok = !task.depends_on_past
                            || past.get(&task.task_id).is_none_or(|s| {
                                matches!(s, TaskState::Success | TaskState::Skipped)
                            });
                        if past_ok && capacity.take(dag, &task.pool, task.pool_slots as i64) {
                            Some(TaskState::Queued)
                        } else if past_ok {
                            Some(TaskState::Scheduled).filter(|_| current == TaskState::None)
                        } else {
                            None
                        }
                    }
                }
            }
            TaskState::UpForRetry => match ti.next_retry_at {
                Some(at) if at > now => {
                    out.next_retry = Some(out.next_retry.map_or(at, |n: i64| n.min(at)));
                    None
                }
                _ if capacity.take(dag, &task.pool, task.pool_slots as i64) => {
                    Some(TaskState::Queued)
                }
                _ => None,
            },
            _ => None,
        };
        if let Some(to) = next {
            out.moves.push(Transition {
                ti_id: ti.id,
                from: current,
                to,
                next_retry_at: None,
            });
            state.insert(task.task_id.as_str(), to);
        }
    }
    if state.values().all(|s| s.is_finished()) && !state.is_empty() {
        let leaves_failed = dag
            .tasks
            .iter()
            .filter(|t| dag.downstream(&t.task_id).is_empty())
            .any(|t| {
                matches!(
                    state.get(t.task_id.as_str()),
                    Some(TaskState::Failed | TaskState::UpstreamFailed)
                )
            });
        out.run_state = Some(if leaves_failed {
            RunState::Failed
        } else {
            RunState::Success
        });
    } else if state.is_empty() {
        out.run_state = Some(RunState::Success);
    }
    out
}

/// Task indexes with every task after its upstream tasks (the spec rejects cycles; anything
/// left over is appended in file order so that nothing is lost).
pub fn topological_order(dag: &Dag) -> Vec<usize> {
    let index: HashMap<&str, usize> = dag
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.task_id.as_str(), i))
        .collect();
    let mut indegree: Vec<usize> = dag
        .tasks
        .iter()
        .map(|t| {
            t.depends_on
                .iter()
                .filter(|d| index.contains_key(d.as_str()))
                .count()
        })
        .collect();
    let mut downstream: Vec<Vec<usize>> = vec![Vec::new(); dag.tasks.len()];
    for (i, t) in dag.tasks.iter().enumerate() {
        for d in &t.depends_on {
            if let Some(&u) = index.get(d.as_str()) {
                downstream[u].push(i);
            }
        }
    }
    let mut ready: std::collections::VecDeque<usize> =
        (0..dag.tasks.len()).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(dag.tasks.len());
    while let Some(i) = ready.pop_front() {
        order.push(i);
        for &d in &downstream[i] {
            indegree[d] -= 1;
            if indegree[d] == 0 {
                ready.push_back(d);
            }
        }
    }
    if order.len() < dag.tasks.len() {
        let seen: HashSet<usize> = order.iter().copied().collect();
        order.extend((0..dag.tasks.len()).filter(|i| !seen.contains(i)));
    }
    order
}
