//! `weir tasks ...`

use crate::Failed;
use crate::cmd_dags::{find_dag, services};
use crate::config::Settings;
use crate::engine::{self, open_store};
use crate::output::{Format, Listing, time};
use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};
use serde_json::json;
use weir_core::{TaskState, parse_instant};
use weir_scheduler::Scheduler;
use weir_service::{Actor, ClearRequest};
use weir_store::{Store, Transition};

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// List a DAG's tasks in dependency order.
    List { dag_id: String },
    /// Run one task instance now, ignoring its dependencies; exit 1 if it fails.
    Run {
        dag_id: String,
        task_id: String,
        date: String,
    },
    /// Clear task instances so that the scheduler runs them again.
    Clear {
        dag_id: String,
        /// Only tasks whose id matches this regular expression.
        #[arg(long, short = 't')]
        task: Option<String>,
        /// Only runs with logical date on or after this.
        #[arg(long, short = 's')]
        start: Option<String>,
        /// Only runs with logical date on or before this.
        #[arg(long, short = 'e')]
        end: Option<String>,
        /// Only failed and upstream_failed task instances.
        #[arg(long)]
        only_failed: bool,
        /// Also clear the tasks downstream of the matched ones.
        #[arg(long, short = 'd')]
        downstream: bool,
        /// Also clear the tasks upstream of the matched ones.
        #[arg(long, short = 'u')]
        upstream: bool,
        /// Only these items of the matched mapped tasks (repeatable); the tasks added by
        /// --downstream or --upstream are cleared whole.
        #[arg(long = "map-index", value_name = "INDEX")]
        map_index: Vec<i64>,
    },
    /// Mark task instances of a run success or failed; without --yes, only list them.
    ///
    /// As Airflow's "mark success/failed": running instances are left alone, the failed and
    /// upstream_failed tasks downstream of the marked ones are cleared to run again, and the
    /// scheduler decides the run again (a failed run goes on from the marked task). Without
    /// --yes it prints what it would mark and changes nothing.
    Mark {
        dag_id: String,
        run_id: String,
        /// The tasks whose id matches this regular expression.
        #[arg(long, short = 't')]
        task: String,
        /// The state to give them.
        #[arg(long, value_enum)]
        state: MarkState,
        /// Also mark the tasks downstream of the matched ones.
        #[arg(long, short = 'd')]
        downstream: bool,
        /// Also mark the tasks upstream of the matched ones.
        #[arg(long, short = 'u')]
        upstream: bool,
        /// Mark them; without it, only list what would be marked.
        #[arg(long)]
        yes: bool,
    },
    /// Print the log of one try of a task instance (default: the latest try).
    Logs {
        dag_id: String,
        run_id: String,
        task_id: String,
        #[arg(long)]
        r#try: Option<i64>,
        /// The item of a mapped task (-1, the default, for an unmapped task).
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        map_index: i64,
    },
    /// The state of every task instance of a run, with the reason of a skip that a branch,
    /// short_circuit or latest_only task decided.
    States { dag_id: String, run_id: String },
}

/// What `weir tasks mark` can set.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MarkState {
    Success,
    Failed,
}

impl From<MarkState> for TaskState {
    fn from(state: MarkState) -> TaskState {
        match state {
            MarkState::Success => TaskState::Success,
            MarkState::Failed => TaskState::Failed,
        }
    }
}

pub async fn run(settings: &Settings, cmd: TasksCommand, format: Format) -> Result<()> {
    let store = open_store(settings).await?;
    let result = dispatch(settings, &store, cmd, format).await;
    store.close().await;
    result
}

async fn loaded(settings: &Settings, store: &Store) -> Result<Scheduler> {
    let scheduler = Scheduler::new(
        store.clone(),
        engine::scheduler_config(settings, Vec::new()),
    );
    scheduler
        .load_dag_folder()
        .await
        .context("reading the DAG folder")?;
    Ok(scheduler)
}

async fn dispatch(
    settings: &Settings,
    store: &Store,
    cmd: TasksCommand,
    format: Format,
) -> Result<()> {
    match cmd {
        TasksCommand::List { dag_id } => {
            let scheduler = loaded(settings, store).await?;
            let dag = find_dag(store, &scheduler, &dag_id).await?;
            let mut listing = Listing::new(&["task_id", "type", "group", "depends_on"]);
            for i in weir_scheduler::topological_order(&dag) {
                let t = &dag.tasks[i];
                listing.row(vec![
                    json!(t.task_id),
                    json!(t.task_type),
                    json!(t.group),
                    json!(t.depends_on.join(",")),
                ]);
            }
            print!("{}", listing.render(format));
            Ok(())
        }
        TasksCommand::Run {
            dag_id,
            task_id,
            date,
        } => {
            let scheduler = loaded(settings, store).await?;
            let dag = find_dag(store, &scheduler, &dag_id).await?;
            match dag.task(&task_id) {
                None => {
                    bail!("DAG '{dag_id}' has no task '{task_id}'\nhint: weir tasks list {dag_id}")
                }
                // Its items come from its upstream tasks when the scheduler expands it.
                Some(task) if task.map_over.is_some() => bail!(
                    "task '{task_id}' of DAG '{dag_id}' is mapped (map_over): it runs once per item, which its upstream tasks give\nhint: weir dags test {dag_id} runs it with them"
                ),
                Some(_) => {}
            }
            let at = parse_instant(&date, &dag.tz()).map_err(anyhow::Error::msg)?;
            let (run, _) = services(settings, store)
                .run_at(&Actor::cli(), &dag, at, Default::default())
                .await?;
            // Only this task: every other task instance of the run is left as it is, and this
            // one is queued whatever its upstream says.
            let ti = store
                .task_instances(run.id)
                .await?
                .into_iter()
                .find(|t| t.task_id == task_id)
                .context("the run has no instance of this task")?;
            if ti.state == TaskState::Running {
                bail!(
                    "task '{task_id}' of run {} is running right now",
                    run.run_id
                );
            }
            if ti.state != TaskState::None {
                store.clear_task_instances(&[ti.id], &[(ti.id, 0)]).await?;
            }
            store
                .apply_transitions(&[Transition {
                    ti_id: ti.id,
                    from: TaskState::None,
                    to: TaskState::Queued,
                    next_retry_at: None,
                    reason: None,
                }])
                .await?;
            // The DAG as this command read it: no scheduler may have written its row yet.
            let worker = std::sync::Arc::new(
                weir_worker::Worker::new(
                    store.clone(),
                    engine::registry(),
                    engine::worker_config(settings, Vec::new(), 1, vec![run.id]),
                )
                .with_warehouses(engine::warehouses(settings))
                .with_scheduler(
                    scheduler.dags(),
                    scheduler.worker_wake.clone(),
                    scheduler.tries_ended.clone(),
                    scheduler.wake.clone(),
                    scheduler.changed_runs.clone(),
                ),
            );
            let (stop, stop_rx) = tokio::sync::watch::channel(false);
            let handle = tokio::spawn(worker.clone().run(stop_rx));
            let state = loop {
                let now = store
                    .task_instance(ti.id)
                    .await?
                    .context("the task instance disappeared")?;
                if now.state.is_finished() || now.state == TaskState::UpForRetry {
                    break now.state;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            };
            let _ = stop.send(true);
            let _ = handle.await;
            let path = weir_core::log_path(
                &settings.log_dir(),
                &dag_id,
                &run.run_id,
                &task_id,
                ti.map_index,
                ti.try_number + 1,
            );
            if let Ok(text) = std::fs::read_to_string(&path) {
                eprint!("{text}");
            }
            println!("{task_id} {state}");
            if state != TaskState::Success && state != TaskState::Skipped {
                return Err(Failed(String::new()).into());
            }
            Ok(())
        }
        TasksCommand::Clear {
            dag_id,
            task,
            start,
            end,
            only_failed,
            downstream,
            upstream,
            map_index,
        } => {
            let scheduler = loaded(settings, store).await?;
            let dag = find_dag(store, &scheduler, &dag_id).await?;
            let tz = dag.tz();
            let parse = |text: Option<String>| {
                text.map(|s| parse_instant(&s, &tz))
                    .transpose()
                    .map_err(anyhow::Error::msg)
            };
            let request = ClearRequest {
                task_regex: task,
                run_ids: Vec::new(),
                start: parse(start)?,
                end: parse(end)?,
                only_failed,
                downstream,
                upstream,
                map_indexes: map_index,
            };
            let cleared = services(settings, store)
                .clear(&Actor::cli(), &dag, &request)
                .await?
                .len();
            println!("cleared {cleared} task instances");
            Ok(())
        }
        TasksCommand::Mark {
            dag_id,
            run_id,
            task,
            state,
            downstream,
            upstream,
            yes,
        } => {
            let scheduler = loaded(settings, store).await?;
            let dag = find_dag(store, &scheduler, &dag_id).await?;
            let state = TaskState::from(state);
            let request = ClearRequest {
                task_regex: Some(task),
                run_ids: vec![run_id.clone()],
                downstream,
                upstream,
                ..ClearRequest::default()
            };
            let svc = services(settings, store);
            let listing = |tis: &[weir_store::TiRow], columns: &[&'static str]| {
                let mut listing = Listing::new(columns);
                for ti in tis {
                    listing.row(vec![
                        json!(ti.task_id),
                        json!(ti.map_index),
                        json!(ti.state.as_str()),
                    ]);
                }
                listing.render(format)
            };
            if !yes {
                let preview = svc.mark_preview(&dag, &request, state).await?;
                print!("{}", listing(&preview, &["task_id", "map_index", "state"]));
                eprintln!(
                    "would mark {} task instances {state}; nothing changed\nhint: add --yes to mark them",
                    preview.len()
                );
                return Ok(());
            }
            let done = svc.mark(&Actor::cli(), &dag, &request, state).await?;
            print!(
                "{}",
                listing(&done.marked, &["task_id", "map_index", "was"])
            );
            eprintln!("marked {} task instances {state}", done.marked.len());
            if !done.resumed.is_empty() {
                let ids: std::collections::BTreeSet<&str> =
                    done.resumed.iter().map(|t| t.task_id.as_str()).collect();
                eprintln!(
                    "cleared {} failed task instances downstream to run again: {}",
                    done.resumed.len(),
                    ids.into_iter().collect::<Vec<_>>().join(", ")
                );
            }
            Ok(())
        }
        TasksCommand::Logs {
            dag_id,
            run_id,
            task_id,
            r#try,
            map_index,
        } => {
            let run = store.get_run(&dag_id, &run_id).await?.with_context(|| {
                format!(
                    "no run '{run_id}' of DAG '{dag_id}'\nhint: weir dags runs {dag_id} lists them"
                )
            })?;
            let ti = store
                .task_instances(run.id)
                .await?
                .into_iter()
                .find(|t| t.task_id == task_id && t.map_index == map_index)
                .with_context(|| match map_index {
                    -1 => format!("run '{run_id}' has no task '{task_id}'"),
                    n => format!("run '{run_id}' has no map index {n} of task '{task_id}'"),
                })?;
            let try_number = r#try.unwrap_or(ti.try_number.max(1));
            let path = weir_core::log_path(
                &settings.log_dir(),
                &dag_id,
                &run_id,
                &task_id,
                map_index,
                try_number,
            );
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "no log for try {try_number} of '{task_id}' at {}",
                    path.display()
                )
            })?;
            print!("{text}");
            Ok(())
        }
        TasksCommand::States { dag_id, run_id } => {
            let run = store.get_run(&dag_id, &run_id).await?.with_context(|| {
                format!(
                    "no run '{run_id}' of DAG '{dag_id}'\nhint: weir dags runs {dag_id} lists them"
                )
            })?;
            let mut listing = Listing::new(&[
                "task_id",
                "map_index",
                "state",
                "try_number",
                "start_date",
                "end_date",
                "reason",
            ]);
            for ti in store.task_instances(run.id).await? {
                listing.row(vec![
                    json!(ti.task_id),
                    json!(ti.map_index),
                    json!(ti.state.as_str()),
                    json!(ti.try_number),
                    time(ti.start_date),
                    time(ti.end_date),
                    json!(ti.reason),
                ]);
            }
            print!("{}", listing.render(format));
            Ok(())
        }
    }
}
