//! What the caller (the project reader, the graph runner) tells the Jinja layer about the node
//! being compiled: `ref`/`source` resolution, vars, target, `this`, and where `config()` goes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::adapter::Relation;

/// The arguments of one `ref()` call: `ref('m')`, `ref('pkg', 'm')`, `ref('m', v=2)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefCall {
    pub package: Option<String>,
    pub name: String,
    pub version: Option<String>,
}

/// Resolves `ref()` and `source()` to relations; the project reader implements it.
pub trait Resolver: Send + Sync {
    /// The relation a `ref()` names, or a message saying why not (unknown model, ...).
    fn resolve_ref(&self, call: &RefCall) -> Result<Relation, String>;
    /// The relation `source(source_name, table_name)` names.
    fn resolve_source(&self, source_name: &str, table_name: &str) -> Result<Relation, String>;
}

/// Everything node-specific a compile needs.
#[derive(Clone)]
pub struct CompileContext {
    /// The node's package: its macros are found first by bare name.
    pub package: String,
    pub this: Option<Relation>,
    /// dbt's `target` (name, schema, type, database, threads, ...).
    pub target: serde_json::Value,
    /// The node's `model` object, as dbt exposes it.
    pub model: serde_json::Value,
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Environment for `env_var()`; `None` reads the process environment.
    pub env_vars: Option<BTreeMap<String, String>>,
    pub resolver: Option<Arc<dyn Resolver>>,
    /// Receives the keyword arguments of every `config(...)` call, in call order; `config.get`
    /// reads back what was set here.
    pub config: Arc<Mutex<serde_json::Map<String, serde_json::Value>>>,
    pub is_incremental: bool,
    /// dbt's `execute`: true when compiling for a run (queries may be sent).
    pub execute: bool,
    /// dbt's `flags.WHICH`: `run`, `compile`, `build`, `test`.
    pub which: String,
    /// `run_started_at`, in seconds since the Unix epoch (UTC); `None` means now.
    pub run_started_at: Option<i64>,
    /// Further context names (`invocation_id`, `graph`, `selected_resources`, ...), as JSON.
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl CompileContext {
    /// A context for a node of `package` with no refs, vars or target.
    pub fn new(package: &str) -> CompileContext {
        CompileContext {
            package: package.to_string(),
            this: None,
            target: serde_json::json!({}),
            model: serde_json::json!({}),
            vars: BTreeMap::new(),
            env_vars: None,
            resolver: None,
            config: Arc::new(Mutex::new(serde_json::Map::new())),
            is_incremental: false,
            execute: true,
            which: "run".to_string(),
            run_started_at: None,
            extra: BTreeMap::new(),
        }
    }
}

impl std::fmt::Debug for CompileContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompileContext")
            .field("package", &self.package)
            .field("this", &self.this)
            .field("target", &self.target)
            .field("vars", &self.vars)
            .finish_non_exhaustive()
    }
}
