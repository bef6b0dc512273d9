//! weir-ops: one module per task type, and the one registry that lists them.
//!
//! A task type turns a validated [`weir_core::Task`] and its template context into a [`Plan`]:
//! nothing to do, or a process to start. Key types: [`Operator`], [`Registry`], [`Plan`],
//! [`ProcessSpec`]. Each operator has a typed `Config` deserialized from the task's keys.
//!
//! Must not know about the metadata store, scheduling, or how processes are supervised: the
//! worker runs the plan (process groups, logs, timeouts) and records the outcome.

mod check;
mod empty;
pub mod http;
pub mod models;
pub mod notify;
mod python;
mod shell;
mod sql;

pub use check::Check;
pub use empty::Empty;
pub use http::Http;
pub use models::Models;
pub use python::Python;
pub use shell::Shell;
pub use sql::Sql;

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use weir_core::Task;
use weir_core::connection::Connection;
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
    /// Work done inside the worker (SQL, checks, HTTP): no process to supervise.
    Native(Box<dyn Native>),
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Plan::Nothing => f.write_str("Nothing"),
            Plan::Process(spec) => f.debug_tuple("Process").field(spec).finish(),
            Plan::Native(_) => f.write_str("Native"),
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
    pub task: &'a Task,
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
