//! One warehouse connection and a compiler, for the commands that query the warehouse outside
//! the graph runner: `show`, `docs generate`, `source freshness`.

use std::io::Write as _;
use std::sync::Arc;

use serde_json::Value as Json;
use weir_warehouse::{Rows, Warehouse};

use crate::jinja::Adapter;
use crate::project::{Node, Project};
use crate::run::adapter::WarehouseAdapter;
use crate::run::compile::{CompiledNode, Compiler, Relations};
use crate::run::{RunError, apply_naming, connection, target_json};

/// A compiler bound to one open connection of the project's profile target.
pub struct Session {
    pub compiler: Compiler,
    pub adapter: Arc<WarehouseAdapter>,
    pub target_name: String,
    pub threads: usize,
    // Drives the connection's calls; dropped last.
    _runtime: tokio::runtime::Runtime,
}

impl Session {
    /// Opens the target of `project`'s profile and builds its macros; `which` is what
    /// `flags.WHICH` says in Jinja (`show`, `generate`, `freshness`).
    pub fn open(project: &mut Project, which: &str) -> Result<Session, RunError> {
        let profile = project.profile.clone().ok_or(RunError::NoProfile)?;
        let warehouse_error = |message: String| RunError::Warehouse {
            target: profile.target_name.clone(),
            message,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| warehouse_error(e.to_string()))?;
        let conn = connection(project)?;
        let warehouse = runtime
            .block_on(Warehouse::open(&conn, &project.root))
            .map_err(|e| warehouse_error(e.to_string()))?;
        let adapter = Arc::new(WarehouseAdapter::new(warehouse, runtime.handle().clone()));
        let engine = crate::run::engine(project, adapter.clone())?;
        let threads = (profile.threads as usize).max(1);
        let target = target_json(project, threads);
        apply_naming(project, &engine, &target)?;
        let relations = Arc::new(Relations::new(project, adapter.quote_char()));
        let compiler = Compiler::new(engine, project, relations, target, which, false);
        Ok(Session {
            compiler,
            adapter,
            target_name: profile.target_name,
            threads,
            _runtime: runtime,
        })
    }

    /// Compiles one node (ephemeral refs injected as CTEs).
    pub fn compile(&self, node: &Node) -> Result<CompiledNode, String> {
        self.compiler.compile(node, false).map_err(|e| e.0)
    }

    pub fn query(&self, sql: &str) -> Result<Rows, String> {
        self.adapter.query(sql).map_err(|e| e.0)
    }

    pub fn dialect(&self) -> &str {
        self.adapter.dialect()
    }

    /// The `target` as Jinja sees it (`target.database`, `target.schema`).
    pub fn target(&self) -> &Json {
        &self.compiler.target
    }
}

/// dbt's `Found 5 models, 3 seeds, ...` line.
pub fn found_line(project: &Project) -> String {
    use crate::project::ResourceType;
    format!(
        "Found {} models, {} seeds, {} snapshots, {} data tests, {} sources, {} macros",
        project.nodes_of(ResourceType::Model).count(),
        project.nodes_of(ResourceType::Seed).count(),
        project.nodes_of(ResourceType::Snapshot).count(),
        project.nodes_of(ResourceType::Test).count(),
        project.nodes_of(ResourceType::Source).count(),
        project.macros.len(),
    )
}

/// Where these commands print: dbt's time-prefixed log lines, and output printed as it is
/// (a preview table, JSON).
pub struct Console {
    out: std::sync::Mutex<Box<dyn std::io::Write + Send>>,
}

impl Console {
    /// dbt's opening lines: what the project holds, then how many threads on which target.
    pub fn header(&self, project: &Project, threads: usize, target_name: &str) {
        self.line(&found_line(project));
        self.line("");
        self.line(&format!(
            "Concurrency: {threads} threads (target='{target_name}')"
        ));
        self.line("");
    }

    pub fn new(out: Box<dyn std::io::Write + Send>) -> Console {
        Console {
            out: std::sync::Mutex::new(out),
        }
    }

    /// One log line (or several) with dbt's `HH:MM:SS  ` prefix.
    pub fn line(&self, text: &str) {
        let stamp = jiff::Zoned::now().strftime("%H:%M:%S").to_string();
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if text.is_empty() {
            let _ = writeln!(out, "{stamp}");
        }
        for line in text.lines() {
            let _ = writeln!(out, "{stamp}  {line}");
        }
        let _ = out.flush();
    }

    /// `1 of 2 START freshness of raw.events .... [RUN]`.
    pub fn progress(&self, index: usize, total: usize, message: &str, status: &str) {
        self.line(&crate::run::output::progress_line(
            index, total, message, status,
        ));
    }

    /// Text as it is, ending in a newline.
    pub fn raw(&self, text: &str) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = write!(out, "{text}");
        if !text.ends_with('\n') {
            let _ = writeln!(out);
        }
        let _ = out.flush();
    }
}
