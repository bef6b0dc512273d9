//! `models`: a dbt command (`build`, `run`, `test`, `seed`, `snapshot`) on the project's dbt
//! project, run by the models engine inside the worker, with `vars` rendered from the run's
//! context. The log gets dbt's console lines; the task fails when any node errors or a test
//! fails.
//!
//! An expanded task (`expand: true`; the DAG loader made one task per node) carries the unique
//! ids it runs in `nodes`, and runs only those.

use std::path::PathBuf;

use crate::{OpError, Operator, Plan, PlanContext, Runtime};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use weir_models::project::{IndirectSelection, LoadOptions, Project, Selection, render_errors};
use weir_models::run::{Command, RunOptions};
use weir_spec::values::ModelsCommand;

pub struct Models;

/// Where the dbt project is when `project_dir` is not set, relative to the weir project.
pub const DEFAULT_PROJECT_DIR: &str = "models";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    project_dir: Option<String>,
    command: Option<ModelsCommand>,
    select: Option<String>,
    exclude: Option<String>,
    vars: Option<Map<String, Value>>,
    full_refresh: Option<bool>,
    target: Option<String>,
    #[allow(dead_code)]
    expand: Option<bool>,
    /// Set by the DAG loader on the tasks it expands to: the unique ids this task runs.
    nodes: Option<Vec<String>>,
}

impl Operator for Models {
    fn name(&self) -> &'static str {
        "models"
    }

    fn plan(&self, cx: &PlanContext<'_>) -> Result<Plan, OpError> {
        let config: Config = cx.config()?;
        let dir = cx
            .project_dir
            .join(config.project_dir.as_deref().unwrap_or(DEFAULT_PROJECT_DIR));
        let vars = match &config.vars {
            Some(vars) => match cx.render_value(&Value::Object(vars.clone()))? {
                Value::Object(map) => map,
                _ => Map::new(),
            },
            None => Map::new(),
        };
        let words = |text: Option<&String>| -> Result<Vec<String>, OpError> {
            Ok(match text {
                Some(t) => cx
                    .render(t)?
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
                None => Vec::new(),
            })
        };
        Ok(Plan::Warehouse(Box::new(
            Job {
                task: cx.task.task_id.clone(),
                dir,
                target: config.target.clone(),
                vars,
                command: config.command.unwrap_or(ModelsCommand::Build),
                select: words(config.select.as_ref())?,
                exclude: words(config.exclude.as_ref())?,
                full_refresh: config.full_refresh.unwrap_or(false),
                nodes: config.nodes,
            }
            .into(),
        )))
    }
}

/// A planned `models` task: the dbt command, ready to run where the warehouse is.
#[derive(Serialize, Deserialize)]
pub struct Job {
    task: String,
    dir: PathBuf,
    target: Option<String>,
    vars: Map<String, Value>,
    command: ModelsCommand,
    select: Vec<String>,
    exclude: Vec<String>,
    full_refresh: bool,
    nodes: Option<Vec<String>>,
}

impl Job {
    pub(crate) async fn run(self, rt: &dyn Runtime) -> Result<Option<Value>, String> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        // The engine blocks (it drives its own runtime); its lines reach the log as they come.
        let work = tokio::task::spawn_blocking(move || self.execute(&tx));
        while let Some(line) = rx.recv().await {
            rt.log(&line);
        }
        work.await
            .map_err(|e| format!("the models engine stopped unexpectedly: {e}"))?
            .map(|()| None)
    }

    fn execute(self, log: &tokio::sync::mpsc::UnboundedSender<String>) -> Result<(), String> {
        let shown = self.dir.display().to_string();
        if !self.dir.join("dbt_project.yml").is_file() {
            return Err(format!(
                "task '{}': no dbt project in {shown} (no dbt_project.yml)\nhint: set `project_dir` to the folder that holds dbt_project.yml (default models/)",
                self.task
            ));
        }
        let load = LoadOptions {
            target: self.target,
            vars: self.vars,
            ..Default::default()
        };
        let command = match self.command {
            ModelsCommand::Build => Command::Build,
            ModelsCommand::Run => Command::Run,
            ModelsCommand::Test => Command::Test,
            ModelsCommand::Seed => Command::Seed,
            ModelsCommand::Snapshot => Command::Snapshot,
        };
        let mut project = Project::load(&self.dir, &load)
            .map_err(|errors| format!("dbt project {shown}:\n{}", render_errors(&errors)))?;
        let mut selection = Selection {
            select: self.select,
            exclude: self.exclude,
            ..Default::default()
        };
        if let Some(ids) = &self.nodes {
            // Exactly these nodes: each by its full fqn, and no tests picked up indirectly.
            let mut select = Vec::new();
            for id in ids {
                let node = project.node(id).ok_or_else(|| {
                    format!(
                        "task '{}': node '{id}' is no longer in the dbt project {shown}\nhint: the DAG is expanded again at its next parse; run it then",
                        self.task
                    )
                })?;
                select.push(format!("fqn:{}", node.fqn.join(".")));
            }
            selection = Selection {
                select,
                indirect_selection: IndirectSelection::Empty,
                ..Default::default()
            };
        }
        let _ = log.send(format!(
            "weir models {} {}in {shown}",
            command.as_str(),
            if selection.select.is_empty() {
                String::new()
            } else {
                format!("--select {} ", selection.select.join(" "))
            }
        ));
        let options = RunOptions {
            command,
            selection,
            full_refresh: self.full_refresh,
            threads: None,
            fail_fast: false,
            empty: false,
        };
        let out = LineWriter {
            tx: log.clone(),
            buf: Vec::new(),
        };
        let report = weir_models::run::execute(&mut project, &options, Box::new(out))
            .map_err(|e| format!("task '{}': {e}", self.task))?;
        let failed = report
            .results
            .iter()
            .filter(|r| {
                matches!(
                    r.status,
                    weir_models::run::Status::Error | weir_models::run::Status::Fail
                )
            })
            .count();
        if failed > 0 {
            return Err(format!(
                "{failed} of {} dbt nodes failed (their errors are above)",
                report.results.len()
            ));
        }
        Ok(())
    }
}

/// dbt's console output, one log line per printed line.
struct LineWriter {
    tx: tokio::sync::mpsc::UnboundedSender<String>,
    buf: Vec<u8>,
}

impl std::io::Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        while let Some(at) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=at).collect();
            let _ = self
                .tx
                .send(String::from_utf8_lossy(&line[..at]).trim_end().to_string());
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let _ = self.tx.send(String::from_utf8_lossy(&self.buf).to_string());
        }
    }
}
