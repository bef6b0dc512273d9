//! weir-worker: claims queued task instances and runs them.
//!
//! Owns the local executor: the claim loop ([`Worker::run`]), one process group and one log
//! file per try ([`process`]), heartbeats, timeouts, and recording each try's outcome with a
//! compare-and-set from `running`. Key types: [`Worker`], [`WorkerConfig`].
//!
//! Architecture invariant: a worker never decides what runs next. It only claims what the
//! scheduler queued, and a finish that lost its compare-and-set (the instance was reaped or
//! cleared meanwhile) changes nothing.

pub mod notifier;
pub mod process;
pub mod wait;
pub mod warehouse;

use process::{Exit, Pgid, run_process};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use weir_core::connection::{Connection, Masker, is_secret_key};
use weir_core::{Dag, SharedDags, TaskState, now_micros, timestamp};
use weir_ops::warehouse::{InProcess, WarehouseHost};
use weir_ops::{Decide, Plan, PlanContext, Registry, ScriptEnd, XcomMode};
use weir_store::{ClaimedTi, Finish, Finished, NewMessage, RunRow, Store};
use weir_template::{Renderer, TemplateContext};

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Unique per process: `host:pid:start`.
    pub worker_id: String,
    /// Queues to take work from; empty means all.
    pub queues: Vec<String>,
    /// How many tries run at once.
    pub slots: usize,
    pub heartbeat: Duration,
    /// How often to look for work when nothing wakes the worker (other processes).
    pub poll: Duration,
    pub project_dir: PathBuf,
    pub log_dir: PathBuf,
    /// Between SIGTERM and SIGKILL when a try is stopped.
    pub kill_grace: Duration,
    /// How long the worker's lease lasts without a heartbeat (the zombie threshold).
    pub lease: Duration,
    /// When non-empty, only task instances of these runs are claimed (`dags test`, backfill).
    pub only_runs: Vec<i64>,
}

impl WorkerConfig {
    /// A worker id unique to this process on this host.
    pub fn default_worker_id() -> String {
        format!(
            "{}:{}:{}",
            hostname(),
            std::process::id(),
            now_micros() % 1_000_000
        )
    }
}

/// The id a worker takes when it lost its lease: `host:pid:start~N`.
fn next_generation(id: &str) -> String {
    match id.rsplit_once('~') {
        Some((base, n)) => format!("{base}~{}", n.parse::<u64>().unwrap_or(1) + 1),
        None => format!("{id}~2"),
    }
}

/// This host's name, as recorded with the tries it runs.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// The local executor.
pub struct Worker {
    store: Store,
    registry: Arc<Registry>,
    /// Where `sql`, `check`, `http` and `models` tries do their work.
    warehouses: Arc<dyn WarehouseHost>,
    renderer: Arc<Renderer>,
    config: WorkerConfig,
    /// DAGs shared by an in-process scheduler; otherwise read from the store.
    shared: Option<SharedDags>,
    cache: Mutex<HashMap<String, (Arc<Dag>, Instant)>>,
    /// Woken when work is queued.
    pub wake: Arc<Notify>,
    /// Woken by the worker whenever a try finishes.
    pub scheduler_wake: Arc<Notify>,
    /// Woken when a finish wrote outbox messages (notifications).
    pub outbox_wake: Arc<Notify>,
    /// The in-process scheduler's set of changed runs, if there is one.
    changed: Option<weir_core::ChangedRuns>,
    /// This worker's id in the store. It gains a generation suffix when the lease is lost, so
    /// the tries of the old id stay lost and the worker goes on under a new lease.
    id: std::sync::RwLock<String>,
    running: Mutex<HashMap<i64, RunningTry>>,
    /// The last read of connections and variables, shared by tries for [`SECRETS_TTL`].
    secrets_cache: Mutex<Option<(Instant, Arc<Secrets>)>>,
    /// Runs of recent tries: what templates read of a run (dates, conf, ids) never changes.
    runs: Mutex<HashMap<i64, Arc<RunRow>>>,
}

/// A try this worker runs, as the heartbeat sees it.
struct RunningTry {
    try_number: i64,
    /// The try's process group, once it exists.
    pgid: Option<Pgid>,
    /// Set when the store says the try no longer owns its task instance: it is killed, and
    /// its outcome is never recorded.
    lost: Arc<std::sync::atomic::AtomicBool>,
    stop: watch::Sender<bool>,
}

impl Worker {
    pub fn new(store: Store, registry: Arc<Registry>, config: WorkerConfig) -> Self {
        Worker {
            store,
            registry,
            warehouses: Arc::new(InProcess),
            renderer: Arc::new(Renderer::new()),
            shared: None,
            cache: Mutex::new(HashMap::new()),
            wake: Arc::new(Notify::new()),
            scheduler_wake: Arc::new(Notify::new()),
            outbox_wake: Arc::new(Notify::new()),
            changed: None,
            id: std::sync::RwLock::new(config.worker_id.clone()),
            running: Mutex::new(HashMap::new()),
            secrets_cache: Mutex::new(None),
            runs: Mutex::new(HashMap::new()),
            config,
        }
    }

    /// Reads DAG definitions from an in-process scheduler, tells it which runs changed, and
    /// wakes it via `scheduler_wake`.
    pub fn with_scheduler(
        mut self,
        shared: SharedDags,
        wake: Arc<Notify>,
        scheduler_wake: Arc<Notify>,
        changed: weir_core::ChangedRuns,
    ) -> Self {
        self.shared = Some(shared);
        self.wake = wake;
        self.scheduler_wake = scheduler_wake;
        self.changed = Some(changed);
        self
    }

    /// Runs warehouse work on `host` (the process's warehouse process) instead of in this
    /// process.
    pub fn with_warehouses(mut self, host: Arc<dyn WarehouseHost>) -> Self {
        self.warehouses = host;
        self
    }

    /// The warehouse host of this worker, for the sensors its tries check.
    pub fn warehouses(&self) -> Arc<dyn WarehouseHost> {
        self.warehouses.clone()
    }

    /// The id this worker claims and heartbeats under now.
    pub fn id(&self) -> String {
        self.id.read().map(|id| id.clone()).unwrap_or_default()
    }

    /// Claims and runs task instances until `shutdown` turns true; then stops every running
    /// try (SIGTERM, then SIGKILL) and records it.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        self.take_lease(&self.id()).await;
        let mut tries: JoinSet<()> = JoinSet::new();
        let heartbeat = {
            let me = self.clone();
            let mut shutdown = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(me.config.heartbeat) => {}
                        _ = shutdown.changed() => break,
                    }
                    me.beat().await;
                }
            })
        };
        loop {
            if *shutdown.borrow() {
                break;
            }
            let free = self.config.slots.saturating_sub(tries.len());
            metrics::gauge!("weir_executor_open_slots").set(free as f64);
            metrics::gauge!("weir_executor_running_slots").set(tries.len() as f64);
            let mut claimed_full = false;
            if free > 0 {
                let want = free.min(64);
                match self
                    .store
                    .claim(
                        &self.id(),
                        &self.config.queues,
                        &self.config.only_runs,
                        want as i64,
                    )
                    .await
                {
                    Ok(claimed) => {
                        claimed_full = claimed.len() == want;
                        for ti in claimed {
                            let (stop, kill) = watch::channel(false);
                            let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
                            if let Ok(mut running) = self.running.lock() {
                                running.insert(
                                    ti.id,
                                    RunningTry {
                                        try_number: ti.try_number,
                                        pgid: None,
                                        lost: lost.clone(),
                                        stop,
                                    },
                                );
                            }
                            let me = self.clone();
                            tries.spawn(async move { me.execute(ti, kill, lost).await });
                        }
                    }
                    Err(e) => tracing::warn!("claiming task instances failed: {e}"),
                }
            }
            if claimed_full && tries.len() < self.config.slots {
                continue;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                Some(_) = tries.join_next(), if !tries.is_empty() => {}
                _ = tokio::time::sleep(self.config.poll) => {}
                _ = shutdown.changed() => {}
            }
        }
        if let Ok(running) = self.running.lock() {
            for t in running.values() {
                let _ = t.stop.send(true);
            }
        }
        while tries.join_next().await.is_some() {}
        heartbeat.abort();
        if let Err(e) = self.store.end_lease(&self.id()).await {
            tracing::warn!("could not end the worker's lease: {e}");
        }
    }

    async fn take_lease(&self, id: &str) {
        let now = now_micros();
        let until = now + self.config.lease.as_micros() as i64;
        let pid = std::process::id() as i64;
        if let Err(e) = self
            .store
            .register_worker(id, &hostname(), pid, now, until)
            .await
        {
            tracing::warn!("could not register the worker's lease: {e}");
        }
    }

    /// One heartbeat: renews the lease and refreshes every owned try; a try the store no
    /// longer gives this worker (reaped, cleared, retried elsewhere) is killed at once and
    /// its outcome will not be recorded. A lost lease loses every try, and the worker goes
    /// on under a new id.
    async fn beat(&self) {
        // Only tries claimed before the heartbeat's statement can be judged by its answer.
        let before: Vec<(i64, i64)> = self
            .running
            .lock()
            .map(|r| r.iter().map(|(id, t)| (*id, t.try_number)).collect())
            .unwrap_or_default();
        let id = self.id();
        let now = now_micros();
        let until = now + self.config.lease.as_micros() as i64;
        let owned: Option<std::collections::HashSet<(i64, i64)>> = match self
            .store
            .renew_lease(&id, now, until)
            .await
        {
            Ok(true) => match self.store.heartbeat_tries(&id).await {
                Ok(owned) => Some(owned.into_iter().collect()),
                Err(e) => {
                    tracing::warn!("worker heartbeat failed: {e}");
                    return;
                }
            },
            Ok(false) => {
                let next = next_generation(&id);
                tracing::warn!(
                    "worker {id} lost its lease (paused or cut off past it); its tries are stopped and it goes on as {next}"
                );
                if let Ok(mut current) = self.id.write() {
                    *current = next.clone();
                }
                self.take_lease(&next).await;
                None
            }
            Err(e) => {
                tracing::warn!("worker lease renewal failed: {e}");
                return;
            }
        };
        let Ok(running) = self.running.lock() else {
            return;
        };
        for (ti_id, try_number) in before {
            if owned
                .as_ref()
                .is_some_and(|o| o.contains(&(ti_id, try_number)))
            {
                continue;
            }
            let Some(t) = running.get(&ti_id).filter(|t| t.try_number == try_number) else {
                continue;
            };
            if t.lost.swap(true, std::sync::atomic::Ordering::SeqCst) {
                continue;
            }
            tracing::warn!(
                ti = ti_id,
                try_number,
                "try lost its task instance; killing it"
            );
            if let Some(pgid) = t.pgid {
                process::signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
            }
            let _ = t.stop.send(true);
        }
    }

    /// The run of a try, from the store once per run: its logical date, interval, conf and
    /// ids are fixed when it is created (its state is not read from here).
    async fn run_of(&self, ti: &ClaimedTi) -> Result<Arc<RunRow>, String> {
        if let Some(run) = self
            .runs
            .lock()
            .ok()
            .and_then(|r| r.get(&ti.run_pk).cloned())
        {
            return Ok(run);
        }
        let run = Arc::new(
            self.store
                .get_run_by_pk(ti.run_pk)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("run '{}' no longer exists", ti.run_id))?,
        );
        if let Ok(mut runs) = self.runs.lock() {
            if runs.len() >= 4096 {
                runs.clear();
            }
            runs.insert(ti.run_pk, run.clone());
        }
        Ok(run)
    }

    /// The DAG of a task instance, from the in-process scheduler or the store (cached 1 s).
    async fn dag(&self, dag_id: &str) -> Option<Arc<Dag>> {
        if let Some(shared) = &self.shared
            && let Some(dag) = shared.read().ok().and_then(|m| m.get(dag_id).cloned())
        {
            return Some(dag);
        }
        if let Some((dag, at)) = self.cache.lock().ok().and_then(|c| c.get(dag_id).cloned())
            && at.elapsed() < Duration::from_secs(1)
        {
            return Some(dag);
        }
        let (dag, _) = self.store.get_dag(dag_id).await.ok().flatten()?;
        let dag = Arc::new(dag);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(dag_id.to_string(), (dag.clone(), Instant::now()));
        }
        Some(dag)
    }

    /// Runs one claimed try to its end and records the outcome, unless the try lost its task
    /// instance meanwhile.
    async fn execute(
        &self,
        ti: ClaimedTi,
        mut kill: watch::Receiver<bool>,
        lost: Arc<std::sync::atomic::AtomicBool>,
    ) {
        let path = ti.log_file(&self.config.log_dir);
        // Read once per try: the template context and the log's masker both need them.
        let secrets = self.secrets().await;
        let log = TaskLog::open(&path, secrets.masker.clone());
        let outcome = match secrets.error.clone() {
            Some(e) => Err(e),
            None => self.attempt(&ti, &log, &secrets, &mut kill).await,
        };
        let outcome = outcome.unwrap_or_else(Outcome::failed);
        let Outcome {
            mut state,
            message,
            xcom,
            decision,
            ..
        } = outcome;
        let mut next_retry_at = outcome.next_check;
        if state == TaskState::Failed && !outcome.no_retry && ti.try_number <= ti.max_tries {
            state = TaskState::UpForRetry;
            let delay = match self
                .dag(&ti.dag_id)
                .await
                .as_ref()
                .and_then(|d| d.task(&ti.task_id).cloned())
            {
                Some(task) => task.retry_delay_after(ti.try_number as u32),
                None => Duration::ZERO,
            };
            next_retry_at = Some(now_micros() + delay.as_micros() as i64);
        }
        log.line(
            match state {
                TaskState::Success | TaskState::Deferred | TaskState::UpForReschedule => "INFO",
                _ => "ERROR",
            },
            &message,
        );
        if let Ok(mut running) = self.running.lock() {
            running.remove(&ti.id);
        }
        // A lost try records nothing of its own; its finish can only reset an instance that a
        // clear left `restarting` for this very try (the compare-and-set checks both).
        let lost = lost.load(std::sync::atomic::Ordering::SeqCst);
        let messages = if lost {
            Vec::new()
        } else {
            self.notifications(&ti, state, &path).await
        };
        let notifies = !messages.is_empty();
        let finish = Finish {
            ti_id: ti.id,
            try_number: ti.try_number,
            state,
            next_retry_at,
            xcom: xcom.filter(|_| state == TaskState::Success && !lost),
            decision: decision.filter(|_| state == TaskState::Success && !lost),
            messages,
            reason: outcome.reason,
            sensor: outcome.sensor,
            sensor_key: outcome.sensor_key,
        };
        let decided = finish.decision.is_some();
        let result = self.store.finish(&self.id(), &[finish]).await;
        // A recorded decision is more than the scheduler's view holds: it reads the instance.
        let recorded = match &result {
            Ok(done) if done == &[Finished::Applied] && !decided => Some(state),
            _ => None,
        };
        match result {
            Ok(done) if done == [Finished::Applied] => {
                log.line("INFO", &format!("marked {state}"));
                if let Some(start) = ti.start_date {
                    metrics::histogram!("weir_task_duration_seconds", "state" => state.as_str())
                        .record((weir_core::now_micros() - start) as f64 / 1e6);
                }
                if notifies {
                    self.outbox_wake.notify_one();
                }
            }
            Ok(done) if done == [Finished::Restarted] => log.line(
                "WARNING",
                "the task instance was cleared while it ran; this try was stopped and it will run again",
            ),
            Ok(_) if lost => log.line(
                "WARNING",
                "this try lost its task instance (reaped, cleared or retried elsewhere); it was killed and its outcome is not recorded",
            ),
            Ok(_) => log.line(
                "WARNING",
                "the task instance changed state while it ran (reaped or cleared); outcome not recorded",
            ),
            Err(e) => {
                tracing::error!(task = %ti.task_id, "recording the outcome failed: {e}");
                log.line("ERROR", &format!("recording the outcome failed: {e}"));
            }
        }
        if let Some(changed) = &self.changed {
            weir_core::note_change(
                changed,
                ti.run_pk,
                weir_core::TiChange {
                    ti_id: ti.id,
                    state: recorded,
                    // A reschedule gave its try number back.
                    try_number: ti.try_number
                        - (recorded == Some(TaskState::UpForReschedule)) as i64,
                    next_retry_at,
                },
            );
        }
        self.scheduler_wake.notify_one();
    }

    /// The task's `on_failure` / `on_retry` / `on_success` notifications for this outcome, as
    /// outbox messages written with the finish, so that they are sent at least once.
    async fn notifications(
        &self,
        ti: &ClaimedTi,
        state: TaskState,
        log_file: &Path,
    ) -> Vec<NewMessage> {
        if outcome_callback(state).is_none() {
            return Vec::new();
        }
        let Some(dag) = self.dag(&ti.dag_id).await else {
            return Vec::new();
        };
        let logical_date = self.run_of(ti).await.ok().map(|r| r.logical_date);
        outcome_messages(&dag, ti, logical_date, state, log_file)
    }

    /// Plans and runs the try; `Err` is a failure message for the log.
    async fn attempt(
        &self,
        ti: &ClaimedTi,
        log: &TaskLog,
        secrets: &Secrets,
        kill: &mut watch::Receiver<bool>,
    ) -> Result<Outcome, String> {
        let dag = self
            .dag(&ti.dag_id)
            .await
            .ok_or_else(|| format!("DAG '{}' is not loaded", ti.dag_id))?;
        let task = dag
            .task(&ti.task_id)
            .ok_or_else(|| format!("task '{}' is no longer in DAG '{}'", ti.task_id, ti.dag_id))?;
        log.line(
            "INFO",
            &format!(
                "starting try {} of {} of {}.{}{} (run {}) on {}",
                ti.try_number,
                ti.max_tries + 1,
                ti.dag_id,
                ti.task_id,
                match ti.map_index {
                    -1 => String::new(),
                    i => format!("[{i}]"),
                },
                ti.run_id,
                self.id()
            ),
        );
        let run = self.run_of(ti).await?;
        let ctx = self.template_context(&dag, task, &run, ti, secrets).await?;
        let cx = PlanContext {
            dag: &dag,
            task,
            run_type: run.run_type,
            now: jiff::Timestamp::now(),
            template: &ctx,
            renderer: &self.renderer,
            project_dir: &self.config.project_dir,
        };
        let plan = self.registry.plan(&cx).map_err(|e| e.to_string())?;
        let rt = NativeRuntime { worker: self, log };
        let (spec, read) = match plan {
            Plan::Nothing => return Ok(Outcome::success(None, "nothing to do".into())),
            Plan::Process(spec) => (spec, None),
            Plan::Native(native) => return Ok(self.in_worker(native.run(&rt), task, kill).await),
            Plan::Warehouse(work) => {
                let work = self.warehouses.run(*work, &rt);
                return Ok(self.in_worker(work, task, kill).await);
            }
            Plan::Wait(wait) => return self.sensor(ti, wait, log, kill).await,
            Plan::Trigger(trigger) => return self.trigger(ti, trigger, log).await,
            Plan::Decide(Decide::Now(verdict)) => return Ok(Outcome::decided(verdict)),
            Plan::Decide(Decide::Script { spec, read }) => (spec, Some(read)),
        };
        let xcom_file = std::env::temp_dir().join(format!(
            "weir-xcom-{}-{}-{}.json",
            std::process::id(),
            ti.id,
            ti.try_number
        ));
        let _ = std::fs::remove_file(&xcom_file);
        let mut env: Vec<(String, String)> = Renderer::context_strings(&ctx)
            .into_iter()
            .map(|(k, v)| (format!("WEIR_{}", k.to_ascii_uppercase()), v))
            .collect();
        env.push(("WEIR_XCOM".into(), xcom_file.display().to_string()));
        env.push((
            weir_core::TRY_TAG_ENV.into(),
            weir_core::try_tag(
                &ti.worker.clone().unwrap_or_else(|| self.id()),
                ti.id,
                ti.try_number,
            ),
        ));
        env.push((
            "WEIR_PARAMS".into(),
            serde_json::Value::Object(ctx.params.clone()).to_string(),
        ));
        env.push((
            "WEIR_CONF".into(),
            serde_json::Value::Object(ctx.conf.clone()).to_string(),
        ));
        env.push((
            "WEIR_PROJECT_DIR".into(),
            self.config.project_dir.display().to_string(),
        ));
        for (key, value) in &task.env {
            let rendered = self
                .renderer
                .render_str(value, &ctx)
                .map_err(|e| format!("env '{key}' of task '{}': {e}", task.task_id))?;
            env.push((key.clone(), rendered));
        }
        let log_file = log
            .file_clone()
            .ok_or_else(|| "cannot open the log file".to_string())?;
        let running = &self.running;
        let store = &self.store;
        let result = run_process(
            &spec,
            &env,
            process::ProcessLog {
                file: log_file,
                masker: log.masker(),
            },
            task.execution_timeout,
            self.config.kill_grace,
            |pgid| async move {
                if let Ok(mut r) = running.lock()
                    && let Some(t) = r.get_mut(&ti.id)
                {
                    t.pgid = Some(pgid);
                    // Lost before the process existed: the heartbeat could not kill it.
                    if t.lost.load(std::sync::atomic::Ordering::SeqCst) {
                        process::signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
                    }
                }
                if let Err(e) = store.set_pid(ti.id, ti.try_number, pgid as i64).await {
                    tracing::warn!("cannot record the pid of {}: {e}", ti.task_id);
                }
            },
            async {
                let _ = kill.wait_for(|k| *k).await;
            },
        )
        .await;
        let xcom = read_xcom(&xcom_file, spec.xcom, result.last_line.as_deref());
        let _ = std::fs::remove_file(&xcom_file);
        // A control-flow script: its exit code and last line are its verdict.
        if let (Some(read), Exit::Code(code)) = (read, &result.exit) {
            return read(ScriptEnd {
                code: *code,
                last_line: result.last_line.as_deref(),
            })
            .map(Outcome::decided);
        }
        let xcom = xcom?;
        Ok(match result.exit {
            Exit::Code(0) => Outcome::success(xcom, "task exited with return code 0".into()),
            Exit::Code(code) if Some(code) == spec.skip_exit_code => Outcome {
                state: TaskState::Skipped,
                ..Outcome::failed(format!("task exited with return code {code}: skipped"))
            },
            Exit::Code(code) => Outcome::failed(format!("task exited with return code {code}")),
            Exit::Signal(sig) => Outcome::failed(format!("task was killed by signal {sig}")),
            Exit::TimedOut(limit) => Outcome::failed(format!(
                "task timed out after {}; its process group was killed",
                weir_core::format_duration(limit)
            )),
            Exit::Killed => Outcome::failed("task was stopped: the worker is shutting down".into()),
            Exit::SpawnFailed(message) => Outcome::failed(message),
        })
    }

    /// Waits for work that runs without a process of its own (here, or in the warehouse
    /// process), bounded by the task's timeout and the kill signal; dropping `work` stops it.
    async fn in_worker(
        &self,
        work: weir_ops::BoxFuture<'_, Result<Option<serde_json::Value>, String>>,
        task: &weir_core::Task,
        kill: &mut watch::Receiver<bool>,
    ) -> Outcome {
        let bounded = async {
            match task.execution_timeout {
                Some(limit) => tokio::time::timeout(limit, work).await.map_err(|_| {
                    format!("task timed out after {}", weir_core::format_duration(limit))
                }),
                None => Ok(work.await),
            }
        };
        let result = tokio::select! {
            r = bounded => r,
            _ = kill.wait_for(|k| *k) => Err("task was stopped: the worker is shutting down".to_string()),
        };
        match result {
            Ok(Ok(xcom)) => Outcome::success(xcom, "task succeeded".into()),
            Ok(Err(message)) | Err(message) => Outcome::failed(message),
        }
    }

    async fn template_context(
        &self,
        dag: &Dag,
        task: &weir_core::Task,
        run: &RunRow,
        ti: &ClaimedTi,
        secrets: &Secrets,
    ) -> Result<TemplateContext, String> {
        let xcoms = weir_template::pulled_xcoms(
            self.store
                .xcom_texts(run.id)
                .await
                .map_err(|e| e.to_string())?,
        );
        let mut ctx = template_context(
            dag,
            task,
            run,
            ti.try_number as u32,
            secrets.variables.clone(),
            xcoms,
        );
        ctx.map_index = ti.map_index;
        ctx.item = ti.map_item.clone();
        if run.run_type == weir_core::RunType::AssetTriggered {
            let events = self
                .store
                .run_asset_events(run.id)
                .await
                .map_err(|e| e.to_string())?;
            ctx.triggering_asset_events = triggering_asset_events(&events);
        }
        ctx.connections = secrets
            .connections
            .iter()
            .map(|c| (c.conn_id.clone(), c.template_value()))
            .collect();
        Ok(ctx)
    }

    /// Every connection a task may use and every variable, read at most once per
    /// [`SECRETS_TTL`] for all the tries that start meanwhile (a fan-out of 1000 tries is not
    /// 2000 reads); a failed read is not kept.
    async fn secrets(&self) -> Arc<Secrets> {
        if let Some((at, cached)) = self.secrets_cache.lock().ok().and_then(|c| c.clone())
            && at.elapsed() < SECRETS_TTL
        {
            return cached;
        }
        let fresh = Arc::new(self.read_secrets().await);
        if fresh.error.is_none()
            && let Ok(mut cache) = self.secrets_cache.lock()
        {
            *cache = Some((Instant::now(), fresh.clone()));
        }
        fresh
    }

    /// The metadata database's connections, then the environment's `WEIR_CONN_<ID>`, which
    /// win, then the default DuckDB warehouse when none is defined; and every variable.
    async fn read_secrets(&self) -> Secrets {
        let mut out = Secrets::default();
        let mut all: BTreeMap<String, Connection> = BTreeMap::new();
        match self.store.list_connections().await {
            Ok(conns) => all.extend(conns.into_iter().map(|c| (c.conn_id.clone(), c))),
            Err(e) => out.error = Some(format!("cannot read connections: {e}")),
        }
        for (name, _) in std::env::vars() {
            if let Some(id) = name.strip_prefix("WEIR_CONN_") {
                let id = id.to_ascii_lowercase();
                match weir_store::env_connection(&id) {
                    Ok(Some(c)) => {
                        all.insert(id, c);
                    }
                    Ok(None) => {}
                    Err(e) => out.error = Some(e.to_string()),
                }
            }
        }
        all.entry(DEFAULT_WAREHOUSE.to_string())
            .or_insert_with(default_warehouse);
        out.connections = all.into_values().collect();
        match self.store.list_variables().await {
            Ok(vars) => out.variables = vars.into_iter().map(|v| (v.key, v.val)).collect(),
            Err(e) => out.error = Some(format!("cannot read variables: {e}")),
        }
        out.masker = Arc::new(out.mask());
        out
    }
}

/// The callback key and event name of an outcome that notifies (`on_failure`, ...).
fn outcome_callback(state: TaskState) -> Option<(&'static str, &'static str)> {
    match state {
        TaskState::Failed => Some(("on_failure", "failure")),
        TaskState::UpForRetry => Some(("on_retry", "retry")),
        TaskState::Success => Some(("on_success", "success")),
        _ => None,
    }
}

/// The task's `on_failure` / `on_retry` / `on_success` notifications for this outcome of a
/// try of `ti` (its run at `logical_date`), as outbox messages to write with the finish.
pub fn outcome_messages(
    dag: &Dag,
    ti: &ClaimedTi,
    logical_date: Option<i64>,
    state: TaskState,
    log_file: &Path,
) -> Vec<NewMessage> {
    let Some((key, event)) = outcome_callback(state) else {
        return Vec::new();
    };
    let Some(callbacks) = dag.task(&ti.task_id).and_then(|t| t.callbacks.get(key)) else {
        return Vec::new();
    };
    let error = (state != TaskState::Success).then(|| log_tail(log_file, 20));
    let logical_date = logical_date.map(|at| weir_core::iso(timestamp(at)));
    let event = weir_core::notify::Event {
        event: event.into(),
        dag_id: ti.dag_id.clone(),
        run_id: Some(ti.run_id.clone()),
        task_id: Some(ti.task_id.clone()),
        try_number: Some(ti.try_number),
        state: Some(state.to_string()),
        logical_date,
        error,
        log_url: Some(log_file.display().to_string()),
        message: None,
    };
    NewMessage::notifications(callbacks, &event)
}

/// What one try may read and must never print: connections and variables.
#[derive(Default)]
struct Secrets {
    connections: Vec<Connection>,
    variables: BTreeMap<String, String>,
    /// Why they could not all be read; the try fails with it (its log still masks what was read).
    error: Option<String>,
    /// Masks every secret above in log lines.
    masker: Arc<Masker>,
}

/// How long tries share one read of connections and variables.
const SECRETS_TTL: Duration = Duration::from_secs(1);

impl Secrets {
    /// Every connection secret and every secret-looking variable.
    fn mask(&self) -> Masker {
        let conns = self.connections.iter().flat_map(Connection::secrets);
        let vars = self
            .variables
            .iter()
            .filter(|(k, _)| is_secret_key(k))
            .map(|(_, v)| v.clone());
        Masker::new(conns.chain(vars))
    }
}

/// The connection id `sql` and `check` tasks use when a project defines no `warehouse`.
pub const DEFAULT_WAREHOUSE: &str = "warehouse";

/// DuckDB in `.weir/warehouse.duckdb`: the warehouse of a project that configured none.
pub fn default_warehouse() -> Connection {
    Connection {
        conn_id: DEFAULT_WAREHOUSE.into(),
        conn_type: "duckdb".into(),
        host: Some(".weir/warehouse.duckdb".into()),
        description: Some("the default DuckDB warehouse".into()),
        ..Connection::default()
    }
}

/// What a native task sees of the worker.
struct NativeRuntime<'a> {
    worker: &'a Worker,
    log: &'a TaskLog,
}

impl weir_ops::Runtime for NativeRuntime<'_> {
    fn log(&self, line: &str) {
        self.log.line("INFO", line);
    }

    fn connection<'a>(
        &'a self,
        conn_id: &'a str,
    ) -> weir_ops::BoxFuture<'a, Result<Connection, String>> {
        Box::pin(wait::resolve_connection(&self.worker.store, conn_id))
    }

    fn project_dir(&self) -> &Path {
        &self.worker.config.project_dir
    }
}

/// `triggering_asset_events` as Airflow's templates see it: asset name -> its events.
pub fn triggering_asset_events(
    events: &[weir_store::AssetEventRow],
) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    for e in events {
        let entry = out
            .entry(e.asset.clone())
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(list) = entry {
            list.push(serde_json::json!({
                "asset": e.asset,
                "source_dag_id": e.source_dag_id,
                "source_run_id": e.source_run_id,
                "source_task_id": e.source_task_id,
                "source_map_index": e.source_map_index,
                "timestamp": weir_core::iso(timestamp(e.timestamp)),
                "extra": e.extra,
            }));
        }
    }
    out
}

/// The template context of one try of `task` in `run`: what `{{ ds }}` and friends see.
pub fn template_context(
    dag: &Dag,
    task: &weir_core::Task,
    run: &RunRow,
    try_number: u32,
    variables: BTreeMap<String, String>,
    xcoms: weir_template::Xcoms,
) -> TemplateContext {
    weir_template::task_context(dag, task, run_facts(run), try_number, variables, xcoms)
}

/// What a template context needs of a stored run.
fn run_facts(run: &RunRow) -> weir_template::RunFacts<'_> {
    weir_template::RunFacts {
        run_id: &run.run_id,
        logical_date: run.logical_date,
        data_interval_start: run.data_interval_start,
        data_interval_end: run.data_interval_end,
        conf: &run.conf,
    }
}

struct Outcome {
    state: TaskState,
    message: String,
    xcom: Option<serde_json::Value>,
    /// A control-flow task's decision, recorded with its success for the scheduler.
    decision: Option<weir_core::Decision>,
    /// A failure that does not use the task's retries (a sensor's timeout).
    no_retry: bool,
    /// A waiting sensor: when it is checked next (micros), why it waits, what it waits for.
    next_check: Option<i64>,
    reason: Option<String>,
    sensor: Option<serde_json::Value>,
    sensor_key: Option<String>,
}

impl Outcome {
    fn success(xcom: Option<serde_json::Value>, message: String) -> Self {
        Outcome {
            state: TaskState::Success,
            xcom,
            ..Outcome::failed(message)
        }
    }

    fn failed(message: String) -> Self {
        Outcome {
            state: TaskState::Failed,
            message,
            xcom: None,
            decision: None,
            no_retry: false,
            next_check: None,
            reason: None,
            sensor: None,
            sensor_key: None,
        }
    }

    /// A control-flow task succeeds with its verdict.
    fn decided(verdict: weir_ops::Verdict) -> Self {
        Outcome {
            state: TaskState::Success,
            xcom: verdict.xcom,
            decision: verdict.decision,
            ..Outcome::failed(verdict.message)
        }
    }
}

/// The XCom value of a try: the `$WEIR_XCOM` file if written, else the last line in
/// `last_line` mode (JSON if it parses, else the text).
fn read_xcom(
    file: &Path,
    mode: XcomMode,
    last_line: Option<&str>,
) -> Result<Option<serde_json::Value>, String> {
    if let Ok(text) = std::fs::read_to_string(file)
        && !text.trim().is_empty()
    {
        return serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("the XCom file is not valid JSON: {e}"));
    }
    Ok(match (mode, last_line) {
        (XcomMode::LastLine, Some(line)) => Some(weir_core::xcom_value(line)),
        _ => None,
    })
}

/// The last `lines` lines of a log file, for a failure notification.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A try's log file: every line goes through the masker, so no secret reaches it.
pub struct TaskLog {
    file: Mutex<Option<std::fs::File>>,
    masker: Arc<Masker>,
}

impl TaskLog {
    /// Opens (appends to) the log at `path`; a log that cannot be opened drops lines rather
    /// than failing the task.
    pub fn open(path: &Path, masker: Arc<Masker>) -> TaskLog {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // Logs may quote data a task read: readable by the project's owner only.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .ok();
        TaskLog {
            file: Mutex::new(file),
            masker,
        }
    }

    /// Appends one line in weir's log format: `[2026-01-15T03:00:00.123Z] INFO - message`.
    pub fn line(&self, level: &str, message: &str) {
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(file) = guard.as_mut() {
            let now = jiff::Timestamp::now()
                .round(jiff::Unit::Millisecond)
                .unwrap_or_else(|_| jiff::Timestamp::now());
            let _ = writeln!(file, "[{now}] {level} - {}", self.masker.mask(message));
        }
    }

    fn file_clone(&self) -> Option<std::fs::File> {
        let guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().and_then(|f| f.try_clone().ok())
    }

    pub fn masker(&self) -> Arc<Masker> {
        self.masker.clone()
    }
}
