//! `weir dags ...`

use crate::Failed;
use crate::config::Settings;
use crate::engine::{self, open_store};
use crate::output::{Format, Listing, time};
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use weir_core::{Dag, RunState, RunType, Timetable, iso, parse_instant};
use weir_scheduler::Scheduler;
use weir_service::{Actor, Services};
use weir_store::Store;

#[derive(Debug, Subcommand)]
pub enum DagsCommand {
    /// List DAGs with their schedule and paused state.
    List,
    /// List files that failed to parse, with their errors.
    ListImportErrors,
    /// Show a DAG's settings and tasks.
    Show { dag_id: String },
    /// Check DAG files (a file, a folder, or the DAG folder) and print every problem.
    Validate { path: Option<PathBuf> },
    /// Print the JSON Schema of DAG files, for editors (`# yaml-language-server: $schema=...`).
    Schema,
    /// Create a manual run; a running scheduler picks it up.
    Trigger {
        dag_id: String,
        /// JSON object merged over the DAG's params.
        #[arg(long)]
        conf: Option<String>,
        /// The run's logical date (default: now).
        #[arg(long)]
        logical_date: Option<String>,
        /// Wait until the run finishes; exit 1 if it fails.
        #[arg(long)]
        wait: bool,
    },
    /// Stop creating scheduled runs.
    Pause { dag_id: String },
    /// Resume creating scheduled runs.
    Unpause { dag_id: String },
    /// Run one run of a DAG in this process, printing each task's state; exit 1 if it fails.
    Test {
        dag_id: String,
        /// Logical date (default: now).
        date: Option<String>,
        /// JSON object merged over the DAG's params.
        #[arg(long)]
        conf: Option<String>,
    },
    /// Create and run one run per interval whose logical date lies in [start, end].
    Backfill {
        dag_id: String,
        #[arg(long, short = 's')]
        start: String,
        #[arg(long, short = 'e')]
        end: String,
        /// Clear runs that already exist and run them again.
        #[arg(long)]
        reset: bool,
        /// Print the intervals without creating runs.
        #[arg(long)]
        dry_run: bool,
        /// Only create the runs; leave them to the scheduler.
        #[arg(long)]
        no_run: bool,
    },
    /// List a DAG's runs, newest first.
    Runs {
        dag_id: String,
        #[arg(long, default_value_t = 25)]
        limit: i64,
    },
    /// Print the state of one run.
    State { dag_id: String, run_id: String },
    /// Delete every run of a DAG, with its task instances, tries and XComs.
    DeleteRuns {
        dag_id: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
}

pub async fn run(settings: &Settings, cmd: DagsCommand, format: Format) -> Result<()> {
    if let DagsCommand::Validate { path } = &cmd {
        return validate(settings, path.as_deref());
    }
    if let DagsCommand::Schema = &cmd {
        return crate::cmd_schema::print_schema();
    }
    let store = open_store(settings).await?;
    let scheduler = Scheduler::new(
        store.clone(),
        engine::scheduler_config(settings, Vec::new()),
    );
    scheduler
        .load_dag_folder()
        .await
        .context("reading the DAG folder")?;
    let result = dispatch(settings, &store, &scheduler, cmd, format).await;
    store.close().await;
    result
}

async fn dispatch(
    settings: &Settings,
    store: &Store,
    scheduler: &Scheduler,
    cmd: DagsCommand,
    format: Format,
) -> Result<()> {
    match cmd {
        DagsCommand::Validate { .. } | DagsCommand::Schema => {
            unreachable!("handled before opening the store")
        }
        DagsCommand::List => {
            let mut listing = Listing::new(&[
                "dag_id",
                "fileloc",
                "owner",
                "schedule",
                "timezone",
                "is_paused",
                "next_run",
            ]);
            // The store's DAGs, and those of the folder no scheduler has parsed yet.
            let rows = store.list_dags().await?;
            let mut all: Vec<(Arc<Dag>, bool)> = Vec::new();
            for row in &rows {
                if let Some(dag) = scheduler.dag(&row.dag_id) {
                    all.push((dag, row.is_paused));
                } else if let Some((dag, paused)) = store.get_dag(&row.dag_id).await? {
                    all.push((Arc::new(dag), paused));
                }
            }
            let dags = scheduler.dags();
            let mut new: Vec<Arc<Dag>> = dags
                .read()
                .map(|d| {
                    d.values()
                        .filter(|d| !rows.iter().any(|r| r.dag_id == d.dag_id))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            new.sort_by(|a, b| a.dag_id.cmp(&b.dag_id));
            for dag in new {
                let paused = dag
                    .is_paused_upon_creation
                    .unwrap_or(settings.paused_by_default());
                all.push((dag, paused));
            }
            all.sort_by(|a, b| a.0.dag_id.cmp(&b.0.dag_id));
            for (dag, paused) in all {
                listing.row(vec![
                    json!(dag.dag_id),
                    json!(dag.fileloc),
                    json!(dag.owner),
                    json!(dag.schedule.text()),
                    json!(dag.timezone),
                    json!(paused),
                    json!(next_run(&dag)),
                ]);
            }
            print!("{}", listing.render(format));
            let errors = scheduler.import_errors();
            if !errors.is_empty() {
                eprintln!(
                    "warning: {} DAG files failed to parse (weir dags list-import-errors)",
                    errors.len()
                );
            }
            Ok(())
        }
        DagsCommand::ListImportErrors => {
            // What the folder says now, whether or not a scheduler has seen it yet.
            let errors = scheduler.import_errors();
            if format == Format::Table {
                for message in errors.values() {
                    println!("{message}\n");
                }
            } else {
                let mut listing = Listing::new(&["filename", "error"]);
                for (filename, message) in errors {
                    listing.row(vec![json!(filename), json!(message)]);
                }
                print!("{}", listing.render(format));
            }
            Ok(())
        }
        DagsCommand::Show { dag_id } => {
            let dag = find_dag(store, scheduler, &dag_id).await?;
            show(&dag, format);
            Ok(())
        }
        DagsCommand::Trigger {
            dag_id,
            conf,
            logical_date,
            wait,
        } => {
            let dag = find_dag(store, scheduler, &dag_id).await?;
            let conf = parse_conf(conf.as_deref())?;
            let at = logical_date
                .map(|text| parse_instant(&text, &dag.tz()))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let run = services(settings, store)
                .trigger(&Actor::cli(), &dag, at, conf, None)
                .await?;
            println!("{}", run.run_id);
            if store.dag_row(&dag_id).await?.is_some_and(|r| r.is_paused) {
                eprintln!(
                    "note: DAG '{dag_id}' is paused; the run starts when it is unpaused (weir dags unpause {dag_id})"
                );
            }
            if wait {
                let alive = store.latest_job_heartbeat("scheduler").await?;
                if alive.is_none() {
                    eprintln!(
                        "note: no scheduler is running; the run waits for `weir standalone` or `weir scheduler`"
                    );
                }
                loop {
                    let current = store
                        .get_run(&dag_id, &run.run_id)
                        .await?
                        .context("the run disappeared")?;
                    if current.state.is_finished() {
                        eprintln!("run {} {}", current.run_id, current.state);
                        if current.state == RunState::Failed {
                            return Err(Failed(String::new()).into());
                        }
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
            Ok(())
        }
        DagsCommand::Pause { ref dag_id } | DagsCommand::Unpause { ref dag_id } => {
            let paused = matches!(cmd, DagsCommand::Pause { .. });
            let dag_id = dag_id.clone();
            let dag = find_dag(store, scheduler, &dag_id).await?;
            services(settings, store)
                .set_paused(&Actor::cli(), &dag, paused, settings.paused_by_default())
                .await?;
            println!("{} {dag_id}", if paused { "paused" } else { "unpaused" });
            Ok(())
        }
        DagsCommand::DeleteRuns { dag_id, yes } => {
            if !yes {
                bail!(
                    "this deletes every run of '{dag_id}' with its task instances, tries and XComs\nhint: add --yes to go ahead"
                );
            }
            let deleted = services(settings, store)
                .delete_runs(&Actor::cli(), &dag_id)
                .await?;
            println!("deleted {deleted} runs of {dag_id}");
            Ok(())
        }
        DagsCommand::Test { dag_id, date, conf } => {
            let dag = find_dag(store, scheduler, &dag_id).await?;
            let conf = parse_conf(conf.as_deref())?;
            let at = match date {
                Some(text) => parse_instant(&text, &dag.tz()).map_err(anyhow::Error::msg)?,
                None => jiff::Timestamp::now(),
            };
            let svc = services(settings, store);
            let (run, created) = svc.run_at(&Actor::cli(), &dag, at, conf).await?;
            if !created {
                svc.reset_run(&Actor::cli(), &dag, &run).await?;
            }
            eprintln!("testing {} run {}", dag.dag_id, run.run_id);
            let finished =
                engine::run_to_completion(settings, store, dag.clone(), vec![run.id], |_, ti| {
                    if ti.state.is_finished() || ti.state == weir_core::TaskState::UpForRetry {
                        let task = match ti.map_index {
                            -1 => ti.task_id.clone(),
                            i => format!("{}[{i}]", ti.task_id),
                        };
                        let (state, try_number) = (ti.state, ti.try_number);
                        match &ti.reason {
                            // A skip that a branch, short_circuit or latest_only decided.
                            Some(reason) => {
                                println!("{task:<30} {state} (try {try_number}): {reason}")
                            }
                            None => println!("{task:<30} {state} (try {try_number})"),
                        }
                    }
                })
                .await?;
            let run = &finished[0];
            println!("run {} {}", run.run_id, run.state);
            if !engine::succeeded(run) {
                return Err(Failed(String::new()).into());
            }
            Ok(())
        }
        DagsCommand::Backfill {
            dag_id,
            start,
            end,
            reset,
            dry_run,
            no_run,
        } => {
            let dag = find_dag(store, scheduler, &dag_id).await?;
            backfill(settings, store, dag, &start, &end, reset, dry_run, no_run).await
        }
        DagsCommand::Runs { dag_id, limit } => {
            // Runs outlive their DAG file: a deleted DAG's runs are still listed.
            if scheduler.dag(&dag_id).is_none() && store.list_runs(&dag_id, 1).await?.is_empty() {
                return Err(unknown_dag(store, scheduler, &dag_id).await);
            }
            let mut listing = Listing::new(&[
                "dag_id",
                "run_id",
                "state",
                "run_type",
                "logical_date",
                "start_date",
                "end_date",
                "triggered_by",
            ]);
            for run in store.list_runs(&dag_id, limit).await? {
                // A run a `trigger_dag` task created names it: DAG/run/task.
                let parent = match run.parent_ti_id {
                    Some(id) => store
                        .task_instance(id)
                        .await?
                        .map(|ti| format!("{}/{}/{}", ti.dag_id, ti.run_id, ti.task_id)),
                    None => None,
                };
                listing.row(vec![
                    json!(run.dag_id),
                    json!(run.run_id),
                    json!(run.state.as_str()),
                    json!(run.run_type.as_str()),
                    time(Some(run.logical_date)),
                    time(run.start_date),
                    time(run.end_date),
                    json!(parent.unwrap_or_default()),
                ]);
            }
            print!("{}", listing.render(format));
            Ok(())
        }
        DagsCommand::State { dag_id, run_id } => {
            let run = store.get_run(&dag_id, &run_id).await?.with_context(|| {
                format!(
                    "no run '{run_id}' of DAG '{dag_id}'\nhint: weir dags runs {dag_id} lists them"
                )
            })?;
            match format {
                Format::Json => println!(
                    "{}",
                    json!({"dag_id": run.dag_id, "run_id": run.run_id, "state": run.state.as_str(), "conf": run.conf})
                ),
                _ => println!("{}", run.state),
            }
            Ok(())
        }
    }
}

/// The DAG as currently parsed, or a clear error with a did-you-mean hint.
pub async fn find_dag(store: &Store, scheduler: &Scheduler, dag_id: &str) -> Result<Arc<Dag>> {
    if let Some(dag) = scheduler.dag(dag_id) {
        return Ok(dag);
    }
    Err(unknown_dag(store, scheduler, dag_id).await)
}

async fn unknown_dag(store: &Store, scheduler: &Scheduler, dag_id: &str) -> anyhow::Error {
    let mut known: Vec<String> = store
        .list_dags()
        .await
        .map(|d| d.into_iter().map(|r| r.dag_id).collect())
        .unwrap_or_default();
    if let Ok(loaded) = scheduler.dags().read() {
        known.extend(loaded.keys().cloned());
    }
    let best = known
        .iter()
        .map(|k| (strsim::levenshtein(k, dag_id), k))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.clone());
    let errors = scheduler.import_errors();
    let hint = match (best, errors.is_empty()) {
        (Some(b), _) => format!("did you mean '{b}'?"),
        (None, false) => "some DAG files failed to parse: weir dags list-import-errors".to_string(),
        (None, true) => "weir dags list shows the DAGs".to_string(),
    };
    anyhow::anyhow!("DAG '{dag_id}' not found\nhint: {hint}")
}

fn parse_conf(conf: Option<&str>) -> Result<serde_json::Map<String, Value>> {
    match conf {
        None => Ok(Default::default()),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => bail!("--conf must be a JSON object\nhint: --conf '{{\"country\": \"KR\"}}'"),
            Err(e) => {
                bail!("--conf is not valid JSON: {e}\nhint: --conf '{{\"country\": \"KR\"}}'")
            }
        },
    }
}

/// The use cases, over this command's store; each change pokes the project's running
/// schedulers (see [`crate::wake`]).
pub fn services(settings: &Settings, store: &Store) -> Services {
    let state_dir = settings.state_dir();
    Services::new(store.clone())
        .with_waker(std::sync::Arc::new(move || crate::wake::poke(&state_dir)))
}

#[allow(clippy::too_many_arguments)]
async fn backfill(
    settings: &Settings,
    store: &Store,
    dag: Arc<Dag>,
    start: &str,
    end: &str,
    reset: bool,
    dry_run: bool,
    no_run: bool,
) -> Result<()> {
    let tz = dag.tz();
    let from = parse_instant(start, &tz).map_err(anyhow::Error::msg)?;
    let to = weir_core::parse_instant_inclusive(end, &tz).map_err(anyhow::Error::msg)?;
    if dry_run {
        let intervals = weir_service::backfill_intervals(&dag, from, to)?;
        for i in &intervals {
            println!(
                "{}  {} .. {}",
                weir_core::run_id(RunType::Backfill, i.start),
                iso(i.start),
                iso(i.end)
            );
        }
        eprintln!("{} runs would be created", intervals.len());
        return Ok(());
    }
    let reprocess = if reset {
        weir_service::Reprocess::Completed
    } else {
        weir_service::Reprocess::None
    };
    let backfill = services(settings, store)
        .create_backfill(&Actor::cli(), &dag, from, to, reprocess, Default::default())
        .await?;
    for existing in &backfill.skipped {
        eprintln!(
            "skipping {}: run {} exists (use --reset to run it again)",
            iso(weir_core::timestamp(existing.logical_date)),
            existing.run_id
        );
    }
    let runs = backfill.runs;
    // A running scheduler runs the backfill; with none, this process does.
    let scheduler_alive = store
        .latest_job_heartbeat("scheduler")
        .await?
        .is_some_and(|beat| {
            weir_core::now_micros() - beat
                < 3 * settings.seconds("scheduler", "heartbeat_s").as_micros() as i64 + 1_000_000
        });
    let no_run = no_run || scheduler_alive;
    if scheduler_alive {
        eprintln!(
            "a scheduler is running: it runs backfill {} (weir dags runs {} shows them)",
            backfill.record.id, dag.dag_id
        );
    }
    eprintln!("backfill of {}: {} runs", dag.dag_id, runs.len());
    if no_run || runs.is_empty() {
        for run in &runs {
            println!("{}", run.run_id);
        }
        return Ok(());
    }
    let pks: Vec<i64> = runs.iter().map(|r| r.id).collect();
    let finished = engine::run_to_completion(settings, store, dag, pks, |_, _| {}).await?;
    let mut listing = Listing::new(&["run_id", "state"]);
    let mut failed = 0;
    for run in &finished {
        if run.state != RunState::Success {
            failed += 1;
        }
        listing.row(vec![json!(run.run_id), json!(run.state.as_str())]);
    }
    print!("{}", listing.render(Format::Table));
    if failed > 0 {
        return Err(Failed(format!(
            "{failed} of {} backfill runs failed",
            finished.len()
        ))
        .into());
    }
    Ok(())
}

fn next_run(dag: &Dag) -> Option<String> {
    let tt = Timetable::new(&dag.schedule, dag.tz()).ok()?;
    tt.next_fire_after(jiff::Timestamp::now()).map(|t| {
        let local = t.to_zoned(dag.tz());
        format!(
            "{} ({})",
            local.strftime("%Y-%m-%d %H:%M %Z"),
            t.strftime("%H:%M UTC")
        )
    })
}

fn show(dag: &Dag, format: Format) {
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(dag).unwrap_or_default());
        return;
    }
    println!("dag_id:      {}", dag.dag_id);
    println!("file:        {}", dag.fileloc);
    if let Some(d) = &dag.description {
        println!("description: {d}");
    }
    println!("schedule:    {} ({})", dag.schedule.text(), dag.timezone);
    println!("catchup:     {}", dag.catchup);
    if let Some(next) = next_run(dag) {
        println!("next run:    {next}");
    }
    println!("tasks:");
    // The group column only when the DAG has groups.
    let grouped = dag.tasks.iter().any(|t| t.group.is_some());
    let mut columns = vec!["task_id", "type"];
    if grouped {
        columns.push("group");
    }
    columns.extend(["depends_on", "trigger_rule", "retries"]);
    let mut listing = Listing::new(&columns);
    for t in &dag.tasks {
        let mut row = vec![json!(t.task_id), json!(t.task_type)];
        if grouped {
            row.push(json!(t.group));
        }
        row.extend([
            json!(t.depends_on.join(",")),
            json!(t.trigger_rule.as_str()),
            json!(t.retries),
        ]);
        listing.row(row);
    }
    print!("{}", listing.render(Format::Table));
}

/// `dags validate`: parse files without touching the metadata database.
fn validate(settings: &Settings, path: Option<&std::path::Path>) -> Result<()> {
    let target = match path {
        Some(p) => p.to_path_buf(),
        None => settings.dags_folder(),
    };
    let files: Vec<PathBuf> = if target.is_dir() {
        weir_scheduler::folder::dag_files(&target)
    } else if target.exists() {
        vec![target.clone()]
    } else {
        bail!("'{}' does not exist", target.display());
    };
    let options = settings.parse_options(engine::registry().names());
    let mut bad = 0;
    let mut problems = 0;
    let mut parsed = Vec::new();
    let mut failed = std::collections::BTreeSet::new();
    for file in &files {
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let shown = file
            .strip_prefix(&settings.project_dir)
            .unwrap_or(file)
            .display()
            .to_string();
        match weir_spec::parse_dag(&shown, &bytes, &options) {
            Err(errors) => {
                bad += 1;
                failed.insert(shown.clone());
                // Still take part in the cross-DAG check when only this build lacks a type.
                let every_type = weir_spec::ParseOptions {
                    available_types: weir_spec::TASK_TYPES
                        .iter()
                        .map(|t| t.name.to_string())
                        .collect(),
                    ..options.clone()
                };
                if let Ok(dag) = weir_spec::parse_dag(&shown, &bytes, &every_type) {
                    parsed.push(dag);
                }
                for e in &errors.0 {
                    problems += 1;
                    eprintln!("error: {}", e.message);
                    eprintln!("  --> {}:{}", e.file, e.line);
                    if let Some(hint) = &e.hint {
                        eprintln!("hint: {hint}");
                    }
                }
            }
            // `models` tasks with `expand: true`: their dbt project must parse too.
            Ok(dag) => {
                if let Err(message) =
                    weir_scheduler::loader::models::expand_dag(&dag, &settings.project_dir)
                {
                    bad += 1;
                    problems += 1;
                    eprintln!("error: {message}");
                }
                parsed.push(dag);
            }
        }
    }
    // Across DAGs (trigger_dag / wait_for on another DAG): only a whole folder can tell.
    if target.is_dir() {
        for e in weir_spec::cross_dag_errors(&parsed) {
            problems += 1;
            if failed.insert(e.file.clone()) {
                bad += 1;
            }
            eprintln!("error: {}", e.message);
            eprintln!("  --> {}:{}", e.file, e.line);
            if let Some(hint) = &e.hint {
                eprintln!("hint: {hint}");
            }
        }
    }
    if bad > 0 {
        return Err(Failed(format!(
            "{problems} problems in {bad} of {} files",
            files.len()
        ))
        .into());
    }
    println!("{} DAG files valid", files.len());
    Ok(())
}
