//! Wiring: the store, the scheduler and the workers built from settings, run as
//! `standalone`, `scheduler`, `worker`, or in the CLI's own process for one set of runs
//! (`dags test`, `dags backfill`, `tasks run`).

use crate::config::Settings;
use anyhow::{Context, Result};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::watch;
use weir_core::{RunState, TaskState};
use weir_ops::Registry;
use weir_ops::warehouse::WarehouseHost;
use weir_scheduler::{Scheduler, SchedulerConfig};
use weir_store::{RunRow, Store, TiRow};
use weir_triggerer::{Triggerer, TriggererConfig};
use weir_worker::notifier::{Notifier, NotifierConfig};
use weir_worker::warehouse::WarehouseProcess;
use weir_worker::{Worker, WorkerConfig};

/// Opens (and migrates) the project's metadata database, and applies `[pools]`.
pub async fn open_store(settings: &Settings) -> Result<Store> {
    settings.ensure_state_dir()?;
    let url = settings.database_url()?;
    let cipher = weir_store::Cipher::new(&settings.fernet_key()?)?;
    let store = Store::open(&url)
        .await
        .with_context(|| format!("cannot open the metadata database {}", redact(&url)))?
        .with_cipher(cipher);
    for (name, slots) in settings.pools() {
        store.set_pool(&name, slots, None).await?;
    }
    restrict_sqlite_files(&url);
    Ok(store)
}

/// A SQLite metadata database holds encrypted secrets and every run's conf: readable by the
/// project's owner only (the file, its WAL and shared memory).
fn restrict_sqlite_files(url: &str) {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = url.strip_prefix("sqlite://") else {
        return;
    };
    let path = path.split('?').next().unwrap_or(path);
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{path}{suffix}");
        let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600));
    }
}

/// A URL with its password hidden.
pub fn redact(url: &str) -> String {
    weir_core::connection::mask_uri(url)
}

pub fn registry() -> Arc<Registry> {
    Arc::new(Registry::builtin())
}

pub fn scheduler_config(settings: &Settings, only_runs: Vec<i64>) -> SchedulerConfig {
    SchedulerConfig {
        dags_folder: settings.dags_folder(),
        project_dir: settings.project_dir.clone(),
        log_dir: settings.log_dir(),
        dag_dir_list_interval: settings.seconds("scheduler", "dag_dir_list_interval"),
        poll: settings
            .seconds("scheduler", "poll_s")
            .max(Duration::from_millis(10)),
        heartbeat: settings
            .seconds("scheduler", "heartbeat_s")
            .max(Duration::from_millis(100)),
        zombie_threshold: settings.seconds("scheduler", "zombie_threshold_s"),
        parallelism: settings.parallelism(),
        max_map_length: settings.max_map_length(),
        paused_by_default: settings.paused_by_default(),
        parse: settings.parse_options(registry().names()),
        only_runs,
    }
}

pub fn worker_config(
    settings: &Settings,
    queues: Vec<String>,
    slots: usize,
    only_runs: Vec<i64>,
) -> WorkerConfig {
    WorkerConfig {
        worker_id: WorkerConfig::default_worker_id(),
        queues,
        slots,
        heartbeat: settings
            .seconds("scheduler", "heartbeat_s")
            .max(Duration::from_millis(100)),
        poll: settings
            .seconds("scheduler", "poll_s")
            .max(Duration::from_millis(10)),
        project_dir: settings.project_dir.clone(),
        log_dir: settings.log_dir(),
        kill_grace: settings.seconds("worker", "kill_grace_s"),
        lease: settings
            .seconds("scheduler", "zombie_threshold_s")
            .max(Duration::from_millis(200)),
        only_runs,
    }
}

/// The warehouse process of this weir process, shared by its worker and triggerer: started by
/// the first warehouse work, gone after `[worker] warehouse_idle_s` without any, so a
/// long-running weir does not keep DuckDB's memory (or its file locks) between runs.
pub fn warehouses(settings: &Settings) -> Arc<dyn WarehouseHost> {
    WAREHOUSES
        .get_or_init(|| {
            let program = std::env::current_exe().unwrap_or_else(|_| "weir".into());
            Arc::new(WarehouseProcess::new(
                program,
                vec!["warehouse-process".to_string()],
                settings.seconds("worker", "warehouse_idle_s"),
            ))
        })
        .clone()
}

static WAREHOUSES: OnceLock<Arc<WarehouseProcess>> = OnceLock::new();

/// Stops this process's warehouse process, if it started one, and waits for it to close its
/// databases: called before weir exits.
pub async fn stop_warehouses() {
    if let Some(host) = WAREHOUSES.get() {
        host.shutdown(Duration::from_secs(30)).await;
    }
}

/// The triggerer of this process: it checks deferred waits.
pub fn triggerer(settings: &Settings, store: &Store) -> Triggerer {
    Triggerer::new(
        store.clone(),
        TriggererConfig {
            poll: settings
                .seconds("triggerer", "poll_s")
                .max(Duration::from_millis(10)),
            log_dir: settings.log_dir(),
            project_dir: settings.project_dir.clone(),
            ..TriggererConfig::default()
        },
    )
    .with_warehouses(warehouses(settings))
}

/// A triggerer that tells this process's scheduler (and notifier) when waits end.
fn wired_triggerer(
    settings: &Settings,
    store: &Store,
    scheduler: &Scheduler,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let triggerer = Arc::new(triggerer(settings, store).with_scheduler(
        scheduler.tries_ended.clone(),
        scheduler.changed_runs.clone(),
        scheduler.outbox_wake.clone(),
    ));
    tokio::spawn(triggerer.run(shutdown))
}

/// The outbox deliverer of this process.
pub fn notifier(settings: &Settings, store: &Store) -> Arc<Notifier> {
    Arc::new(Notifier::new(
        store.clone(),
        NotifierConfig {
            id: format!("notifier:{}", WorkerConfig::default_worker_id()),
            project_dir: settings.project_dir.clone(),
            poll: settings
                .seconds("scheduler", "poll_s")
                .max(Duration::from_millis(10)),
            max_attempts: settings.integer("notifications", "max_attempts").max(1),
            retry_delay: settings.seconds("notifications", "retry_delay_s"),
            claim_for: settings
                .seconds("notifications", "claim_s")
                .max(Duration::from_millis(100)),
        },
    ))
}

/// A watch channel that turns true on Ctrl-C or SIGTERM.
fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        eprintln!("weir: shutting down (running tries are stopped and recorded)");
        let _ = tx.send(true);
    });
    rx
}

/// Scheduler and worker in one process, woken through channels rather than polling.
pub async fn standalone(settings: &Settings) -> Result<()> {
    let started = std::time::Instant::now();
    let store = open_store(settings).await?;
    let scheduler = Arc::new(Scheduler::new(
        store.clone(),
        scheduler_config(settings, Vec::new()),
    ));
    scheduler
        .sync_dag_folder()
        .await
        .context("reading the DAG folder")?;
    let worker = Arc::new(
        Worker::new(
            store.clone(),
            registry(),
            worker_config(settings, Vec::new(), settings.worker_slots(), Vec::new()),
        )
        .with_warehouses(warehouses(settings))
        .with_scheduler(
            scheduler.dags(),
            scheduler.worker_wake.clone(),
            scheduler.tries_ended.clone(),
            scheduler.wake.clone(),
            scheduler.changed_runs.clone(),
        ),
    );
    let dags = scheduler.dags().read().map(|d| d.len()).unwrap_or(0);
    let errors = store.import_errors().await?.len();
    let wake = scheduler.wake.clone();
    let web = crate::web::bind(settings, &store, Arc::new(move || wake.notify_one()), None).await?;
    eprintln!(
        "weir standalone: project {} · {dags} DAGs{} · metadata {} · ready in {} ms",
        settings.project_dir.display(),
        if errors > 0 {
            format!(" · {errors} import errors (weir dags list-import-errors)")
        } else {
            String::new()
        },
        redact(&settings.database_url()?),
        started.elapsed().as_millis()
    );
    eprintln!(
        "web UI and REST API: {} (API at {}/api/v2)",
        web.url(),
        web.url()
    );
    eprintln!("press Ctrl-C to stop");
    let shutdown = shutdown_signal();
    let web_task = tokio::spawn(web.serve(shutdown.clone()));
    let notifier = wired_notifier(settings, &store, &scheduler, Some(&worker));
    let notifier_task = spawn_notifier(&notifier, shutdown.clone());
    let _wake = crate::wake::listen(&settings.state_dir(), scheduler.wake.clone());
    let worker_task = tokio::spawn(worker.clone().run(shutdown.clone()));
    let triggerer_task = wired_triggerer(settings, &store, &scheduler, shutdown.clone());
    let result = scheduler.run(shutdown).await;
    let _ = worker_task.await;
    let _ = triggerer_task.await;
    let _ = notifier_task.await;
    match web_task.await {
        Ok(Err(e)) => eprintln!("weir: {e:#}"),
        Err(e) => eprintln!("weir: the webserver panicked: {e}"),
        Ok(Ok(())) => {}
    }
    notifier.flush(Duration::from_secs(20)).await;
    store.close().await;
    result.map_err(Into::into)
}

/// A notifier woken by the scheduler's and the worker's state changes.
fn wired_notifier(
    settings: &Settings,
    store: &Store,
    scheduler: &Scheduler,
    worker: Option<&Worker>,
) -> Arc<Notifier> {
    let notifier = notifier(settings, store);
    let wake = notifier.wake.clone();
    let from_scheduler = scheduler.outbox_wake.clone();
    let from_worker = worker.map(|w| w.outbox_wake.clone());
    tokio::spawn(async move {
        loop {
            match &from_worker {
                Some(w) => tokio::select! {
                    _ = from_scheduler.notified() => {}
                    _ = w.notified() => {}
                },
                None => from_scheduler.notified().await,
            }
            wake.notify_one();
        }
    });
    notifier
}

fn spawn_notifier(
    notifier: &Arc<Notifier>,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let notifier = notifier.clone();
    tokio::spawn(async move { notifier.run(shutdown).await })
}

pub async fn scheduler_only(settings: &Settings) -> Result<()> {
    let store = open_store(settings).await?;
    let scheduler = Scheduler::new(store.clone(), scheduler_config(settings, Vec::new()));
    eprintln!(
        "weir scheduler: project {} · press Ctrl-C to stop",
        settings.project_dir.display()
    );
    let shutdown = shutdown_signal();
    let notifier = wired_notifier(settings, &store, &scheduler, None);
    let notifier_task = spawn_notifier(&notifier, shutdown.clone());
    let _wake = crate::wake::listen(&settings.state_dir(), scheduler.wake.clone());
    let triggerer_task = wired_triggerer(settings, &store, &scheduler, shutdown.clone());
    let result = scheduler.run(shutdown).await;
    let _ = triggerer_task.await;
    let _ = notifier_task.await;
    notifier.flush(Duration::from_secs(20)).await;
    store.close().await;
    result.map_err(Into::into)
}

/// The triggerer alone (`weir triggerer`): checks deferred waits against the project's
/// metadata database; schedulers see what it ended at their next look.
pub async fn triggerer_only(settings: &Settings) -> Result<()> {
    let store = open_store(settings).await?;
    eprintln!(
        "weir triggerer: project {} · press Ctrl-C to stop",
        settings.project_dir.display()
    );
    let shutdown = shutdown_signal();
    let notifier = notifier(settings, &store);
    let notifier_task = spawn_notifier(&notifier, shutdown.clone());
    Arc::new(triggerer(settings, &store)).run(shutdown).await;
    let _ = notifier_task.await;
    notifier.flush(Duration::from_secs(20)).await;
    store.close().await;
    Ok(())
}

/// The webserver alone (`weir webserver`): the REST API over the project's metadata database.
/// Use cases it runs poke the project's schedulers on this host, as CLI commands do.
pub async fn webserver_only(settings: &Settings, port: Option<u16>) -> Result<()> {
    let store = open_store(settings).await?;
    let state_dir = settings.state_dir();
    let web = crate::web::bind(
        settings,
        &store,
        Arc::new(move || crate::wake::poke(&state_dir)),
        port,
    )
    .await?;
    eprintln!(
        "weir webserver: project {} · {} (API at {}/api/v2) · press Ctrl-C to stop",
        settings.project_dir.display(),
        web.url(),
        web.url()
    );
    let result = web.serve(shutdown_signal()).await;
    store.close().await;
    result
}

pub async fn worker_only(
    settings: &Settings,
    queues: Vec<String>,
    concurrency: Option<usize>,
) -> Result<()> {
    let store = open_store(settings).await?;
    let slots = concurrency.unwrap_or_else(|| settings.worker_slots());
    let config = worker_config(settings, queues.clone(), slots, Vec::new());
    eprintln!(
        "weir worker {}: queues {} · {slots} slots · press Ctrl-C to stop",
        config.worker_id,
        if queues.is_empty() {
            "all".to_string()
        } else {
            queues.join(",")
        }
    );
    let worker = Arc::new(
        Worker::new(store.clone(), registry(), config).with_warehouses(warehouses(settings)),
    );
    let shutdown = shutdown_signal();
    let notifier = notifier(settings, &store);
    let notifier_task = spawn_notifier(&notifier, shutdown.clone());
    worker.run(shutdown).await;
    let _ = notifier_task.await;
    notifier.flush(Duration::from_secs(20)).await;
    store.close().await;
    Ok(())
}

/// Drives `runs` of `dag` to completion in this process, calling `on_change` with each task
/// instance whose state changed. Returns the runs' final rows.
pub async fn run_to_completion(
    settings: &Settings,
    store: &Store,
    dag: Arc<weir_core::Dag>,
    runs: Vec<i64>,
    mut on_change: impl FnMut(&RunRow, &TiRow),
) -> Result<Vec<RunRow>> {
    let scheduler = Scheduler::new(store.clone(), scheduler_config(settings, runs.clone()));
    scheduler.set_dags(vec![dag]);
    let worker = Arc::new(
        Worker::new(
            store.clone(),
            registry(),
            worker_config(settings, Vec::new(), settings.worker_slots(), runs.clone()),
        )
        .with_warehouses(warehouses(settings))
        .with_scheduler(
            scheduler.dags(),
            scheduler.worker_wake.clone(),
            scheduler.tries_ended.clone(),
            scheduler.wake.clone(),
            scheduler.changed_runs.clone(),
        ),
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let triggerer_task = wired_triggerer(settings, store, &scheduler, stop_rx.clone());
    let worker_task = tokio::spawn(worker.clone().run(stop_rx));
    let mut seen: std::collections::HashMap<i64, TaskState> = std::collections::HashMap::new();
    let mut interrupt = std::pin::pin!(tokio::signal::ctrl_c());
    let finished = loop {
        // A round that queues work wakes the worker itself.
        let report = scheduler.tick().await?;
        let mut rows = Vec::new();
        for pk in &runs {
            if let Some(run) = store.get_run_by_pk(*pk).await? {
                for ti in store.task_instances(run.id).await? {
                    if seen.insert(ti.id, ti.state) != Some(ti.state) && ti.state != TaskState::None
                    {
                        on_change(&run, &ti);
                    }
                }
                rows.push(run);
            }
        }
        if rows.iter().all(|r| r.state.is_finished()) {
            break rows;
        }
        let mut sleep = Duration::from_millis(500);
        if let Some(due) = report.next_due
            && let Ok(until) = Duration::try_from(due.duration_since(jiff::Timestamp::now()))
        {
            sleep = sleep.min(until);
        }
        tokio::select! {
            _ = scheduler.wake.notified() => {}
            _ = scheduler.tries_ended.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
            _ = &mut interrupt => {
                let _ = stop_tx.send(true);
                let _ = worker_task.await;
                let _ = triggerer_task.await;
                anyhow::bail!("interrupted; the runs stay where they are (weir dags state shows them)");
            }
        }
    };
    let _ = stop_tx.send(true);
    let _ = worker_task.await;
    let _ = triggerer_task.await;
    // In-process runs have no notifier running beside them: deliver what they caused now.
    notifier(settings, store)
        .flush(Duration::from_secs(20))
        .await;
    Ok(finished)
}

/// True when a run ended in success.
pub fn succeeded(run: &RunRow) -> bool {
    run.state == RunState::Success
}
