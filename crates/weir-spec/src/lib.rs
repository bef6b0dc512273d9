//! weir-spec: YAML DAG files to validated [`weir_core::Dag`]s.
//!
//! Owns the DAG file format: [`parse_dag`] reads one file to a raw tree with positions
//! ([`yaml`]), then builds and checks it (`build`: the error-collecting builder and typed
//! readers; `dag`: DAG keys, schedule and cross-task checks; `task`: each task; `groups`:
//! task groups resolved to plain dependencies; `cross`: checks across the DAGs of a folder), reporting
//! every problem at once as [`SpecError`]s with file, line, field and a hint. The key
//! declarations ([`TASK_TYPES`], [`COMMON_TASK_KEYS`], [`DAG_KEYS`], each key with its
//! [`Type`]) are the single source for
//! validation, the JSON Schema ([`json_schema`]) and the DAG reference
//! ([`reference_markdown`]); [`values`] holds the closed value sets as the Rust enums the
//! operators deserialize into.
//!
//! Must not know about the file system or the network: callers pass `(path, bytes)`.

mod build;
mod cross;
mod dag;
mod error;
mod groups;
mod keys;
mod reference;
mod schema;
mod task;
pub mod values;
pub mod yaml;

pub use cross::cross_dag_errors;
pub use keys::{
    COMMON_TASK_KEYS, DAG_KEYS, DEFAULT_ARGS_KEYS, KeyDoc, NOTIFICATION_KEYS, TASK_TYPES,
    TaskTypeDoc, Type, task_type,
};
pub use reference::{EXAMPLE_DAG, reference_markdown};
pub use schema::json_schema;

pub use error::{SpecError, SpecErrors};

use build::Builder;
pub(crate) use build::did_you_mean;
use weir_core::Dag;

/// What the caller decides about parsing.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Time zone of DAGs that name none.
    pub default_timezone: String,
    /// Task types this build can run.
    pub available_types: Vec<String>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            default_timezone: "UTC".into(),
            available_types: TASK_TYPES.iter().map(|t| t.name.to_string()).collect(),
        }
    }
}

/// Parses and validates one DAG file.
pub fn parse_dag(path: &str, bytes: &[u8], opts: &ParseOptions) -> Result<Dag, SpecErrors> {
    let mut b = Builder {
        file: path.to_string(),
        errors: Vec::new(),
    };
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let at = e.valid_up_to();
            let line = bytes[..at].iter().filter(|&&c| c == b'\n').count() as u32 + 1;
            b.error(
                line,
                None,
                format!("file is not valid UTF-8 (byte 0x{:02x})", bytes[at]),
                Some("save the file as UTF-8".into()),
            );
            return Err(b.finish());
        }
    };
    let root = match yaml::parse(text) {
        Ok(Some(root)) => root,
        Ok(None) => {
            b.error(
                1,
                None,
                "file is empty".into(),
                Some("a DAG file needs at least a 'tasks:' list".into()),
            );
            return Err(b.finish());
        }
        Err(e) => {
            b.errors.push(SpecError {
                file: path.into(),
                line: e.line,
                column: e.col,
                field: None,
                message: format!("invalid YAML: {}", e.message),
                hint: Some(
                    "check the indentation and quoting on this line and the one before".into(),
                ),
            });
            return Err(b.finish());
        }
    };
    let dag = b.dag(path, &root, opts);
    if b.errors.is_empty()
        && let Some(dag) = dag
    {
        return Ok(dag);
    }
    Err(b.finish())
}
