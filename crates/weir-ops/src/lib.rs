//! weir-ops: one module per task type, and the one registry that lists them.
//!
//! A task type turns a validated [`weir_core::Task`] and its template context into a [`Plan`]:
//! nothing to do, a process to start, work inside the worker, or a control-flow decision
//! (`branch`, `short_circuit`, `latest_only`: which downstream tasks to skip, recorded by the
//! worker and applied by the scheduler). Key types: [`Operator`], [`Registry`], [`Plan`],
//! [`ProcessSpec`], [`Decide`]. Each operator has a typed `Config` deserialized from the task's
//! keys.
//!
//! Must not know about the metadata store, scheduling, or how processes are supervised: the
//! worker runs the plan (process groups, logs, timeouts) and records the outcome.

mod branch;
mod check;
mod empty;
pub mod http;
mod latest_only;
pub mod models;
pub mod notify;
mod python;
pub mod sensor;
mod shell;
mod short_circuit;
mod sql;
pub mod trigger_dag;
pub mod warehouse;

pub use branch::Branch;
pub use check::Check;
pub use empty::Empty;
pub use http::Http;
pub use latest_only::LatestOnly;
pub use models::Models;
pub use python::Python;
pub use sensor::WaitFor;
pub use shell::Shell;
pub use short_circuit::ShortCircuit;
pub use sql::Sql;
pub use trigger_dag::TriggerDag;

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use weir_core::connection::Connection;
use weir_core::{Dag, Decision, RunType, Task};
use weir_template::{Renderer, TemplateContext};

/// Why a task could not be planned; it fails the task instance, never the process.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("task '{task}': {message}")]
    Config { task: String, message: String },
    #[error("task '{task}': {source}")]
    Template {
        task: String,
        #[source]
        source: weir_template::TemplateError,
    },
    #[error("task '{task}': cannot read '{path}': {source}")]
    Io {
        task: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("task type '{0}' is not registered")]
    UnknownType(String),
    /// A control-flow task could not decide (a branch chose a task it cannot choose); the
    /// message names the task.
    #[error("{0}")]
    Undecided(String),
}

/// How a process hands back its XCom value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XcomMode {
    /// JSON written to the file named in `$WEIR_XCOM` (always read if present).
    File,
    /// The last line of stdout, as JSON if it parses, else as a string.
    LastLine,
}

/// A process to start in its own process group.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSpec {
    pub program: String,
    pub args: Vec<String>,
    /// Extra environment on top of the worker's and the `WEIR_*` context.
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub xcom: XcomMode,
    /// An exit code that means "skipped" rather than "failed" (99, as Airflow's bash operator).
    pub skip_exit_code: Option<i32>,
}

/// What running a task means.
pub enum Plan {
    /// Succeed at once (`empty`).
    Nothing,
    Process(ProcessSpec),
    /// Work done inside the worker (notifications): no process to supervise.
    Native(Box<dyn Native>),
    /// Work against warehouses (`sql`, `check`, `http`, `models`), run where the worker keeps
    /// its warehouses.
    Warehouse(Box<warehouse::WarehouseWork>),
    /// A control-flow task: a decision about its downstream tasks.
    Decide(Decide),
    /// A sensor: wait until its condition holds (how depends on its mode).
    Wait(sensor::Wait),
    /// `trigger_dag`: start another DAG's run (and maybe wait for it).
    Trigger(trigger_dag::Trigger),
}

/// What a control-flow task concluded: the decision the worker records with its success
/// (`None`: every downstream task goes on), its XCom value, and a line for its log.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub decision: Option<Decision>,
    pub xcom: Option<serde_json::Value>,
    pub message: String,
}

/// How a script of a control-flow task ended: its exit code and last line of output.
#[derive(Debug, Clone, Copy)]
pub struct ScriptEnd<'a> {
    pub code: i32,
    pub last_line: Option<&'a str>,
}

/// Reads a [`ScriptEnd`] into a verdict; `Err` fails the task with a message for its log.
pub type ReadScript = Box<dyn FnOnce(ScriptEnd<'_>) -> Result<Verdict, String> + Send>;

/// How a control-flow task reaches its verdict.
pub enum Decide {
    /// Already, while planning (a rendered template, the run's interval).
    Now(Verdict),
    /// From a script the worker runs as any other process; a script killed by a signal or a
    /// timeout fails the task as any other.
    Script { spec: ProcessSpec, read: ReadScript },
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Plan::Nothing => f.write_str("Nothing"),
            Plan::Process(spec) => f.debug_tuple("Process").field(spec).finish(),
            Plan::Native(_) => f.write_str("Native"),
            Plan::Warehouse(_) => f.write_str("Warehouse"),
            Plan::Decide(Decide::Now(verdict)) => f.debug_tuple("Decide").field(verdict).finish(),
            Plan::Decide(Decide::Script { spec, .. }) => {
                f.debug_tuple("DecideByScript").field(spec).finish()
            }
            Plan::Wait(wait) => f.debug_tuple("Wait").field(wait).finish(),
            Plan::Trigger(trigger) => f.debug_tuple("Trigger").field(trigger).finish(),
        }
    }
}

/// A boxed future, as native tasks return them.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// What the worker gives a native task: its log, connections, the project.
pub trait Runtime: Send + Sync {
    /// Appends a line to the try's log (secrets are masked by the worker).
    fn log(&self, line: &str);
    /// A connection by id (environment first, then the metadata database).
    fn connection<'a>(&'a self, conn_id: &'a str) -> BoxFuture<'a, Result<Connection, String>>;
    fn project_dir(&self) -> &Path;
}

/// A task that runs inside the worker. `Ok` carries the XCom value; `Err` fails the try with
/// a message for the log.
pub trait Native: Send {
    fn run<'a>(
        self: Box<Self>,
        rt: &'a dyn Runtime,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>, String>>;
}

/// What an operator gets to plan a task.
pub struct PlanContext<'a> {
    /// The task's DAG: control-flow tasks read their downstream tasks and the timetable.
    pub dag: &'a Dag,
    pub task: &'a Task,
    pub run_type: RunType,
    /// When the try started planning (`latest_only` compares it with the run's interval).
    pub now: jiff::Timestamp,
    pub template: &'a TemplateContext,
    pub renderer: &'a Renderer,
    /// The project root: relative script paths and the default working directory.
    pub project_dir: &'a Path,
}

impl PlanContext<'_> {
    /// The task's own keys as the operator's typed config.
    pub fn config<C: DeserializeOwned>(&self) -> Result<C, OpError> {
        serde_json::from_value(serde_json::Value::Object(self.task.config.clone())).map_err(|e| {
            OpError::Config {
                task: self.task.task_id.clone(),
                message: e.to_string(),
            }
        })
    }

    pub fn render(&self, text: &str) -> Result<String, OpError> {
        self.renderer
            .render_str(text, self.template)
            .map_err(|source| OpError::Template {
                task: self.task.task_id.clone(),
                source,
            })
    }

    /// Renders every string inside a JSON value (keys stay as written).
    pub fn render_value(&self, value: &serde_json::Value) -> Result<serde_json::Value, OpError> {
        use serde_json::Value;
        Ok(match value {
            Value::String(s) => Value::String(self.render(s)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.render_value(v))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_value(v)?)))
                    .collect::<Result<_, OpError>>()?,
            ),
            other => other.clone(),
        })
    }

    /// `sql` as written: a path ending in `.sql` is read from the project, else inline; then
    /// rendered.
    pub fn render_sql(&self, sql: &str) -> Result<String, OpError> {
        if sql.trim_end().ends_with(".sql") && !sql.contains('\n') {
            self.render_file(sql.trim())
        } else {
            self.render(sql)
        }
    }

    /// A `script` key of a control-flow task: a single line ending in `.sh` is a file of the
    /// project, anything else inline bash; rendered either way, as a bash process whose XCom
    /// the verdict gives.
    pub fn script_process(&self, script: &str) -> Result<ProcessSpec, OpError> {
        let text = if script.trim_end().ends_with(".sh") && !script.trim().contains('\n') {
            self.render_file(script.trim())?
        } else {
            self.render(script)?
        };
        Ok(ProcessSpec {
            program: "bash".into(),
            args: vec!["-c".into(), text],
            env: Vec::new(),
            cwd: self.project_dir.to_path_buf(),
            xcom: XcomMode::File,
            skip_exit_code: None,
        })
    }

    /// The ids of the tasks directly downstream of this one, in file order.
    pub fn downstream(&self) -> Vec<&str> {
        self.dag.downstream(&self.task.task_id)
    }

    pub fn config_error(&self, message: impl Into<String>) -> OpError {
        OpError::Config {
            task: self.task.task_id.clone(),
            message: message.into(),
        }
    }

    /// Reads a file named relative to the project and renders it as a template.
    pub fn render_file(&self, path: &str) -> Result<String, OpError> {
        let full = self.project_dir.join(path);
        let text = std::fs::read_to_string(&full).map_err(|source| OpError::Io {
            task: self.task.task_id.clone(),
            path: full.display().to_string(),
            source,
        })?;
        self.render(&text)
    }
}

/// A task type.
pub trait Operator: Send + Sync + 'static {
    /// The `type:` name in DAG files.
    fn name(&self) -> &'static str;
    fn plan(&self, cx: &PlanContext<'_>) -> Result<Plan, OpError>;
}

/// Every task type this build can run, by name.
pub struct Registry {
    operators: Vec<Box<dyn Operator>>,
}

impl Registry {
    pub fn new() -> Self {
        Registry {
            operators: Vec::new(),
        }
    }

    pub fn with(mut self, op: impl Operator) -> Self {
        self.operators.push(Box::new(op));
        self
    }

    /// The registry of every built-in task type.
    pub fn builtin() -> Self {
        Registry::new()
            .with(Shell)
            .with(Python)
            .with(Empty)
            .with(Sql)
            .with(Check)
            .with(Http)
            .with(Models)
            .with(notify::Notify)
            .with(Branch)
            .with(ShortCircuit)
            .with(LatestOnly)
            .with(WaitFor)
            .with(TriggerDag)
    }

    pub fn names(&self) -> Vec<String> {
        self.operators
            .iter()
            .map(|o| o.name().to_string())
            .collect()
    }

    pub fn plan(&self, cx: &PlanContext<'_>) -> Result<Plan, OpError> {
        let op = self
            .operators
            .iter()
            .find(|o| o.name() == cx.task.task_type)
            .ok_or_else(|| OpError::UnknownType(cx.task.task_type.clone()))?;
        op.plan(cx)
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::builtin()
    }
}
