//! weir-worker: claims queued task instances and runs them.
//!
//! Owns the local executor: the claim loop ([`Worker::run`]), one process group and one log
//! file per try ([`process`]), heartbeats, timeouts, and recording each try's outcome with a
//! compare-and-set from `running`. Key types: [`Worker`], [`WorkerConfig`].
//!
//! Architecture invariant: a worker never decides what runs next. It only claims what the
//! scheduler queued, and a finish that lost its compare-and-set (the instance was reaped or
//! cleared meanwhile) changes nothing.

mod attempt;
mod context;
mod log;
pub mod notifier;
pub mod process;
mod record;
pub mod wait;
pub mod warehouse;

use attempt::Outcome;
pub use attempt::outcome_messages;
pub use context::{
    DEFAULT_WAREHOUSE, default_warehouse, template_context, triggering_asset_events,
};
use context::{NativeRuntime, Secrets};
pub use log::{TaskLog, log_tail};
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
    /// Woken when a try changed more than its task instance (a `trigger_dag` created or
    /// reset a run): the in-process scheduler's full round.
    runs_wake: Arc<Notify>,
    /// Woken when a finish wrote outbox messages (notifications).
    pub outbox_wake: Arc<Notify>,
    /// The in-process scheduler's set of changed runs, if there is one.
    changed: Option<weir_core::ChangedRuns>,
    /// This worker's id in the store. It gains a generation suffix when the lease is lost, so
    /// the tries of the old id stay lost and the worker goes on under a new lease.
    id: std::sync::RwLock<String>,
    running: Mutex<HashMap<i64, RunningTry>>,
    /// The last read of connections and variables, shared by tries for `context::SECRETS_TTL`.
    secrets_cache: Mutex<Option<(Instant, Arc<Secrets>)>>,
    /// Held while connections and variables are read, so that tries wait for one read.
    secrets_read: tokio::sync::Mutex<()>,
    /// Runs of recent tries: what templates read of a run (dates, conf, ids) never changes.
    runs: Mutex<HashMap<i64, Arc<RunRow>>>,
    /// Writes the pids and outcomes of tries, batched; started by the first try.
    recorder: std::sync::OnceLock<record::Recorder>,
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
            runs_wake: Arc::new(Notify::new()),
            outbox_wake: Arc::new(Notify::new()),
            changed: None,
            id: std::sync::RwLock::new(config.worker_id.clone()),
            running: Mutex::new(HashMap::new()),
            secrets_cache: Mutex::new(None),
            secrets_read: tokio::sync::Mutex::new(()),
            runs: Mutex::new(HashMap::new()),
            recorder: std::sync::OnceLock::new(),
            config,
        }
    }

    /// Reads DAG definitions from an in-process scheduler, tells it which runs changed, and
    /// wakes it: `tries_ended` when a try ends, `runs_wake` when a try created or reset a run.
    pub fn with_scheduler(
        mut self,
        shared: SharedDags,
        wake: Arc<Notify>,
        tries_ended: Arc<Notify>,
        runs_wake: Arc<Notify>,
        changed: weir_core::ChangedRuns,
    ) -> Self {
        self.shared = Some(shared);
        self.wake = wake;
        self.scheduler_wake = tries_ended;
        self.runs_wake = runs_wake;
        self.changed = Some(changed);
        self
    }

    /// Runs warehouse work on `host` (the process's warehouse process) instead of in this
    /// process.
    pub fn with_warehouses(mut self, host: Arc<dyn WarehouseHost>) -> Self {
        self.warehouses = host;
        self
    }

    /// The recorder of this worker's tries (started on the current runtime at first use).
    fn recorder(&self) -> &record::Recorder {
        self.recorder
            .get_or_init(|| record::Recorder::start(self.store.clone()))
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
        // Whether a claim may find work: always after a wake, a poll or a claim that filled
        // every slot it asked for; not when a try ended and the last claim took everything
        // queued (the scheduler wakes the worker when it queues more). An empty claim is a
        // write transaction that the scheduler's next write would wait for.
        let mut worth_claiming = true;
        let mut claimed_full = true;
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Tries that ended together free their slots for one claim.
            while tries.try_join_next().is_some() {}
            let free = self.config.slots.saturating_sub(tries.len());
            metrics::gauge!("weir_executor_open_slots").set(free as f64);
            metrics::gauge!("weir_executor_running_slots").set(tries.len() as f64);
            if free == 0 {
                // Nothing was asked for; whatever is queued is still there.
                claimed_full = true;
            }
            if free > 0 && worth_claiming {
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
                    Err(e) => {
                        // Retried at the next wake or poll, not at once.
                        claimed_full = false;
                        tracing::warn!("claiming task instances failed: {e}")
                    }
                }
            }
            if claimed_full && worth_claiming && tries.len() < self.config.slots {
                continue;
            }
            worth_claiming = tokio::select! {
                _ = self.wake.notified() => true,
                Some(_) = tries.join_next(), if !tries.is_empty() => claimed_full,
                _ = tokio::time::sleep(self.config.poll) => true,
                _ = shutdown.changed() => true,
            };
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
}
