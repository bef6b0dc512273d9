//! Running a project against a warehouse: `compile`, `run`, `test`, `seed`, `snapshot` and
//! `build` over the selected nodes, in graph order on `threads` workers, as dbt-core does.
//!
//! - `adapter`: the Jinja [`crate::jinja::Adapter`] over `weir_warehouse::Warehouse`.
//! - `compile`: rendering a node, ephemeral CTE injection, `target/compiled/`.
//! - `materialize`: view, table, incremental, seed, snapshot as SQL statements.
//! - `output`: dbt's console lines; `artifacts`: `run_results.json` and `manifest.json`.
//!
//! Entry point: [`execute`].

pub mod adapter;
pub(crate) mod artifacts;
pub mod compile;
mod contract;
pub mod materialize;
pub mod output;
pub mod seed;
mod snapshot;
pub mod unit_test;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use serde_json::{Value as Json, json};
use weir_core::connection::Connection;
use weir_warehouse::Warehouse;

use crate::jinja::{Adapter, AdapterError, Engine, MacroPackage, Relation, Table};
use crate::project::{Node, Project, ResourceType, Selection, UniqueId, select};
use adapter::WarehouseAdapter;
use compile::{CompiledNode, Compiler, Relations, materialized};
use output::Printer;

/// Which dbt command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Compile,
    Run,
    Test,
    Seed,
    Snapshot,
    Build,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Compile => "compile",
            Command::Run => "run",
            Command::Test => "test",
            Command::Seed => "seed",
            Command::Snapshot => "snapshot",
            Command::Build => "build",
        }
    }

    fn resource_types(self) -> Vec<ResourceType> {
        match self {
            Command::Run => vec![ResourceType::Model],
            Command::Test => vec![ResourceType::Test, ResourceType::UnitTest],
            Command::Seed => vec![ResourceType::Seed],
            Command::Snapshot => vec![ResourceType::Snapshot],
            Command::Compile => vec![
                ResourceType::Model,
                ResourceType::Seed,
                ResourceType::Snapshot,
                ResourceType::Test,
            ],
            Command::Build => vec![
                ResourceType::Model,
                ResourceType::Seed,
                ResourceType::Snapshot,
                ResourceType::Test,
                ResourceType::UnitTest,
            ],
        }
    }
}

/// What the CLI asks for.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub command: Command,
    pub selection: Selection,
    pub full_refresh: bool,
    pub threads: Option<usize>,
    pub fail_fast: bool,
    /// `--empty`: refs and sources read no rows (`limit 0` subqueries), as dbt's flag.
    pub empty: bool,
}

/// A run that could not start (no profile, no warehouse, broken macros).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no profile: this command needs a target to run against (check profiles.yml)")]
    NoProfile,
    #[error(
        "target '{target}' has type '{kind}', which weir models cannot run against yet (use duckdb or postgres)"
    )]
    UnsupportedAdapter { target: String, kind: String },
    #[error("cannot open the warehouse of target '{target}': {message}")]
    Warehouse { target: String, message: String },
    #[error("{0}")]
    Macros(String),
    #[error("{0}")]
    Selection(String),
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
}

/// How one node ended, in run_results' words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Error,
    Skipped,
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Error => "error",
            Status::Skipped => "skipped",
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }

    /// Whether what depends on a node with this status is skipped.
    fn blocks(self) -> bool {
        matches!(self, Status::Error | Status::Fail | Status::Skipped)
    }
}

/// One node's result.
#[derive(Debug, Clone)]
pub struct NodeResult {
    pub unique_id: UniqueId,
    pub status: Status,
    pub message: Option<String>,
    pub failures: Option<i64>,
    pub execution_time: f64,
    pub thread_id: String,
    pub started_at: String,
    pub compiled_at: String,
    pub completed_at: String,
    pub compiled: Option<CompiledNode>,
    pub relation_name: Option<String>,
    pub adapter_response: Json,
}

/// The outcome of a command.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub results: Vec<NodeResult>,
    pub elapsed: f64,
}

impl RunReport {
    /// dbt exits 1 when any node errored or a test failed.
    pub fn success(&self) -> bool {
        !self
            .results
            .iter()
            .any(|r| matches!(r.status, Status::Error | Status::Fail))
    }
}

pub(crate) fn now_iso() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// The weir connection a profile target describes.
pub(crate) fn connection(project: &Project) -> Result<Connection, RunError> {
    let profile = project.profile.as_ref().ok_or(RunError::NoProfile)?;
    let out = &profile.output;
    let text = |k: &str| out.get(k).and_then(Json::as_str).map(str::to_string);
    let mut conn: Connection = serde_json::from_value(json!({
        "conn_id": profile.profile_name,
        "conn_type": profile.adapter_type,
    }))
    .map_err(|e| RunError::Warehouse {
        target: profile.target_name.clone(),
        message: e.to_string(),
    })?;
    match profile.adapter_type.as_str() {
        "duckdb" => conn.host = Some(text("path").unwrap_or_else(|| ":memory:".into())),
        "postgres" => {
            conn.host = text("host");
            conn.port = out.get("port").and_then(Json::as_u64).map(|p| p as u16);
            conn.login = text("user");
            conn.password = text("password").or_else(|| text("pass"));
            conn.schema = text("dbname").or_else(|| text("database"));
        }
        other => {
            return Err(RunError::UnsupportedAdapter {
                target: profile.target_name.clone(),
                kind: other.to_string(),
            });
        }
    }
    Ok(conn)
}

pub(crate) fn target_json(project: &Project, threads: usize) -> Json {
    let Some(profile) = &project.profile else {
        return json!({});
    };
    let mut target = serde_json::Map::new();
    for (k, v) in &profile.output {
        if k != "password" && k != "pass" {
            target.insert(k.clone(), v.clone());
        }
    }
    target.insert("name".into(), json!(profile.target_name));
    target.insert("target_name".into(), json!(profile.target_name));
    target.insert("profile_name".into(), json!(profile.profile_name));
    target.insert("type".into(), json!(profile.adapter_type));
    target.insert("schema".into(), json!(profile.schema()));
    target.insert("database".into(), json!(profile.database()));
    target.insert("threads".into(), json!(threads));
    Json::Object(target)
}

/// The Jinja engine of `project` over `adapter`: weir's own macros, every package's, and the
/// project's `dispatch:` search orders.
pub(crate) fn engine(project: &Project, adapter: Arc<dyn Adapter>) -> Result<Engine, RunError> {
    let mut builder = Engine::builder(project.root_package(), adapter).package(
        MacroPackage::new(crate::jinja::INTERNAL_PACKAGE)
            .with_file("weir://run/macros.sql", include_str!("macros.sql")),
    );
    for mp in macro_packages(project)? {
        builder = builder.package(mp);
    }
    for d in &project.settings.dispatch {
        let order: Vec<&str> = d.search_order.iter().map(String::as_str).collect();
        builder = builder.dispatch(&d.macro_namespace, &order);
    }
    builder.build().map_err(|e| RunError::Macros(e.to_string()))
}

/// Every package's macro files, for the engine.
pub(crate) fn macro_packages(project: &Project) -> Result<Vec<MacroPackage>, RunError> {
    let mut files: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in project.macros.values() {
        files
            .entry(m.package_name.clone())
            .or_default()
            .insert(m.original_file_path.clone());
    }
    let mut out = Vec::new();
    for (package, paths) in files {
        let Some(pkg) = project.packages.get(&package) else {
            continue;
        };
        let mut mp = MacroPackage::new(&package);
        for path in paths {
            let text = std::fs::read_to_string(pkg.root.join(&path)).map_err(|e| {
                RunError::Macros(format!(
                    "cannot read macro file {}: {e}",
                    pkg.root.join(&path).display()
                ))
            })?;
            let shown = if pkg.is_root {
                path.clone()
            } else {
                format!("{package}://{path}")
            };
            mp = mp.with_file(&shown, &text);
        }
        out.push(mp);
    }
    Ok(out)
}

/// Routes every adapter call to the connection of the worker thread making it.
struct PooledAdapter {
    connections: Vec<Arc<WarehouseAdapter>>,
    dialect: String,
}

thread_local! {
    static SLOT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl PooledAdapter {
    fn current(&self) -> &Arc<WarehouseAdapter> {
        let slot = SLOT.with(|s| s.get());
        &self.connections[slot.min(self.connections.len() - 1)]
    }
}

impl Adapter for PooledAdapter {
    fn dialect(&self) -> &str {
        &self.dialect
    }
    fn execute(&self, sql: &str, fetch: bool) -> Result<Table, AdapterError> {
        self.current().execute(sql, fetch)
    }
    fn get_columns_in_relation(
        &self,
        relation: &Relation,
    ) -> Result<Vec<crate::jinja::Column>, AdapterError> {
        self.current().get_columns_in_relation(relation)
    }
    fn get_relation(
        &self,
        database: Option<&str>,
        schema: &str,
        identifier: &str,
    ) -> Result<Option<Relation>, AdapterError> {
        self.current().get_relation(database, schema, identifier)
    }
}

/// The nodes a command runs, in dbt's order, and what each waits for.
struct Plan {
    order: Vec<UniqueId>,
    deps: HashMap<UniqueId, BTreeSet<UniqueId>>,
}

fn plan(project: &Project, selected: &BTreeSet<UniqueId>, command: Command) -> Plan {
    let runnable = |id: &UniqueId| {
        project.nodes.get(id).is_some_and(|n| {
            matches!(
                n.resource_type,
                ResourceType::Model
                    | ResourceType::Seed
                    | ResourceType::Snapshot
                    | ResourceType::Test
                    | ResourceType::UnitTest
            ) && materialized(n) != "ephemeral"
        })
    };
    let order: Vec<UniqueId> = project
        .graph
        .topological_order()
        .into_iter()
        .filter(|id| selected.contains(id) && runnable(id))
        .collect();
    let in_plan: HashSet<&UniqueId> = order.iter().collect();
    let mut deps: HashMap<UniqueId, BTreeSet<UniqueId>> = HashMap::new();
    for id in &order {
        // Through ephemeral (unrun) parents to the run ones. A unit test needs what its
        // model needs (the inputs' columns), not the model itself.
        let mut found = BTreeSet::new();
        let tested = unit_test_model(project, id);
        let mut stack: Vec<UniqueId> = project
            .graph
            .parents
            .get(tested.as_ref().unwrap_or(id))
            .map(|p| p.iter().cloned().collect())
            .unwrap_or_default();
        let mut seen = HashSet::new();
        while let Some(p) = stack.pop() {
            if !seen.insert(p.clone()) {
                continue;
            }
            if in_plan.contains(&p) {
                found.insert(p);
            } else if project.nodes.get(&p).is_some_and(|n| {
                n.resource_type == ResourceType::Model && materialized(n) == "ephemeral"
            }) && let Some(pp) = project.graph.parents.get(&p)
            {
                stack.extend(pp.iter().cloned());
            }
        }
        deps.insert(id.clone(), found);
    }
    if command == Command::Build {
        // A model is built after its unit tests pass.
        for id in &order {
            if let Some(model) = unit_test_model(project, id)
                && in_plan.contains(&model)
            {
                deps.entry(model).or_default().insert(id.clone());
            }
        }
        // A test runs right after its node; what is built from that node waits for it.
        let tests: Vec<UniqueId> = order
            .iter()
            .filter(|id| project.nodes[*id].resource_type == ResourceType::Test)
            .cloned()
            .collect();
        for test in tests {
            let parents = deps.get(&test).cloned().unwrap_or_default();
            let mut upstream: HashSet<UniqueId> = parents.iter().cloned().collect();
            upstream.extend(project.graph.ancestors(&parents, None));
            for p in &parents {
                for child in order.iter() {
                    if child == &test
                        || project.nodes[child].resource_type == ResourceType::Test
                        || upstream.contains(child)
                        || !deps.get(child).is_some_and(|d| d.contains(p))
                    {
                        continue;
                    }
                    deps.entry(child.clone()).or_default().insert(test.clone());
                }
            }
        }
    }
    Plan { order, deps }
}

/// The model a unit test tests.
fn unit_test_model(project: &Project, id: &UniqueId) -> Option<UniqueId> {
    let node = project.nodes.get(id)?;
    if node.resource_type != ResourceType::UnitTest {
        return None;
    }
    project
        .graph
        .parents
        .get(id)?
        .iter()
        .find(|p| {
            project
                .nodes
                .get(*p)
                .is_some_and(|n| n.resource_type == ResourceType::Model)
        })
        .cloned()
}

/// What one worker needs.
struct Shared<'a> {
    compiler: Compiler,
    adapter: Arc<PooledAdapter>,
    printer: &'a Printer,
    project: &'a Project,
    target_dir: PathBuf,
    total: usize,
    counter: Mutex<usize>,
    command: Command,
    full_refresh: bool,
    schemas: Mutex<HashSet<String>>,
}

/// Runs `options.command` over `project`, printing dbt's lines to `out`; writes
/// `target/run_results.json` and `target/manifest.json`.
pub fn execute(
    project: &mut Project,
    options: &RunOptions,
    out: Box<dyn std::io::Write + Send>,
) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let printer = Printer::new(out);
    let profile = project.profile.clone().ok_or(RunError::NoProfile)?;
    let threads = options.threads.unwrap_or(profile.threads as usize).max(1);
    let mut selection = options.selection.clone();
    selection.resource_types = Some(options.command.resource_types());
    let selected = select(project, &selection).map_err(|e| RunError::Selection(e.to_string()))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| RunError::Warehouse {
            target: profile.target_name.clone(),
            message: e.to_string(),
        })?;
    let conn = connection(project)?;
    let mut connections: Vec<Arc<WarehouseAdapter>> = Vec::new();
    for _ in 0..threads {
        let warehouse = runtime
            .block_on(Warehouse::open(&conn, &project.root))
            .map_err(|e| RunError::Warehouse {
                target: profile.target_name.clone(),
                message: e.to_string(),
            })?;
        let mut adapter = WarehouseAdapter::new(warehouse, runtime.handle().clone());
        if let Some(first) = connections.first() {
            adapter = adapter.sharing_relations_with(first.as_ref());
        }
        connections.push(Arc::new(adapter));
    }
    let pooled = Arc::new(PooledAdapter {
        dialect: connections[0].dialect().to_string(),
        connections,
    });

    let engine = engine(project, pooled.clone())?;

    let target = target_json(project, threads);
    apply_naming(project, &engine, &target)?;
    let quote = pooled.current().quote_char();
    let relations = Arc::new(Relations::new(project, quote));
    let mut compiler = Compiler::new(
        engine,
        project,
        relations,
        target,
        options.command.as_str(),
        options.full_refresh,
    );
    compiler.empty = options.empty;
    let plan = plan(project, &selected, options.command);
    let target_dir = project.root.join(&project.settings.target_path);

    let shared = Shared {
        compiler,
        adapter: pooled,
        printer: &printer,
        project,
        target_dir: target_dir.clone(),
        total: plan.order.len(),
        counter: Mutex::new(0),
        command: options.command,
        full_refresh: options.full_refresh,
        schemas: Mutex::new(HashSet::new()),
    };

    printer.line(&crate::session::found_line(project));
    if plan.order.is_empty() {
        printer.line("Nothing to do. Try checking your model configs and model specification args");
    }
    printer.line("");
    printer.line(&format!(
        "Concurrency: {threads} threads (target='{}')",
        profile.target_name
    ));
    printer.line("");
    let runs_hooks = options.command != Command::Compile;
    let mut results = Vec::new();
    if runs_hooks && !project.settings.on_run_start.is_empty() {
        results.extend(run_hooks(
            &shared,
            &project.settings.on_run_start,
            "on-run-start",
        ));
        printer.line("");
    }
    // As in dbt, the nodes run even when an on-run-start hook failed.
    results.extend(schedule(&shared, &plan, threads, options.fail_fast));
    if runs_hooks {
        if !project.settings.on_run_end.is_empty() {
            printer.line("");
        }
        results.extend(run_hooks(
            &shared,
            &project.settings.on_run_end,
            "on-run-end",
        ));
    }
    drop(shared);
    let elapsed = started.elapsed().as_secs_f64();
    let report = RunReport { results, elapsed };

    // The rendered configs and dependencies go back into the project for the manifest.
    for r in &report.results {
        if let Some(c) = &r.compiled {
            let _ = project.apply_file_config(&r.unique_id, &c.config_layer);
            if project.nodes.contains_key(&r.unique_id) && !c.depends_on.is_empty() {
                let _ = project.set_dependencies(&r.unique_id, c.depends_on.clone());
            }
        }
    }
    summary(&printer, project, &report, options.command);
    artifacts::write(project, &report, options, &target_dir)?;
    Ok(report)
}

/// Applies an overriding `generate_schema_name`/`generate_alias_name` of the root project
/// (the built-in ones are what the project reader computed already).
pub(crate) fn apply_naming(
    project: &mut Project,
    engine: &Engine,
    target: &Json,
) -> Result<(), RunError> {
    let root = project.root_package().to_string();
    let schema_override = engine.has_macro(&root, "generate_schema_name");
    let alias_override = engine.has_macro(&root, "generate_alias_name");
    if !schema_override && !alias_override {
        return Ok(());
    }
    let target_schema = target
        .get("schema")
        .and_then(Json::as_str)
        .unwrap_or("main");
    let ids: Vec<UniqueId> = project.nodes.keys().cloned().collect();
    for id in ids {
        let node = &project.nodes[&id];
        if matches!(
            node.resource_type,
            ResourceType::Source | ResourceType::Exposure | ResourceType::UnitTest
        ) {
            continue;
        }
        let mut ctx = crate::jinja::CompileContext::new(&node.package_name);
        ctx.target = target.clone();
        let node_value = minijinja::Value::from(minijinja::value::Serde(
            crate::project::state::node_json(node),
        ));
        let mut schema = node.schema.clone();
        if schema_override && node.resource_type != ResourceType::Test {
            let custom = node
                .config
                .get("schema")
                .and_then(Json::as_str)
                .map(minijinja::Value::from)
                .unwrap_or(minijinja::Value::from(()));
            let v = engine
                .call_macro(
                    "generate_schema_name",
                    &[custom, node_value.clone()],
                    ctx.clone(),
                )
                .map_err(|e| RunError::Macros(format!("generate_schema_name for '{id}': {e}")))?;
            schema = Some(v.to_string().trim().to_string());
        }
        let mut alias = node.alias.clone();
        if alias_override && node.resource_type != ResourceType::Test {
            let custom = node
                .config
                .get("alias")
                .and_then(Json::as_str)
                .map(minijinja::Value::from)
                .unwrap_or(minijinja::Value::from(()));
            let v = engine
                .call_macro("generate_alias_name", &[custom, node_value], ctx)
                .map_err(|e| RunError::Macros(format!("generate_alias_name for '{id}': {e}")))?;
            alias = Some(v.to_string().trim().to_string());
        }
        let _ = target_schema;
        if let Some(node) = project.nodes.get_mut(&id) {
            node.schema = schema;
            node.alias = alias;
        }
    }
    Ok(())
}

/// Where a project hook's SQL is written under `target/compiled/`, as dbt writes it.
fn hook_compiled_path(package: &str, what: &str, index: usize) -> PathBuf {
    Path::new(package)
        .join("./dbt_project.yml")
        .join("hooks")
        .join(format!("{package}-{what}-{index}.sql"))
}

/// The unique id dbt gives a project hook: `operation.shop.shop-on-run-start-0`.
pub fn hook_unique_id(package: &str, what: &str, index: usize) -> UniqueId {
    format!("operation.{package}.{package}-{what}-{index}")
}

/// Runs the project's `on-run-start` or `on-run-end` statements in order; each is a result,
/// as in dbt (`operation.<project>.<project>-<what>-<i>`). After a failing one the rest are
/// skipped. The rendered SQL goes to `target/compiled/<project>/./dbt_project.yml/hooks/`.
fn run_hooks(shared: &Shared, hooks: &[String], what: &str) -> Vec<NodeResult> {
    let package = shared.project.root_package();
    let mut ctx = crate::jinja::CompileContext::new(package);
    ctx.target = shared.compiler.target.clone();
    ctx.vars = shared.project.vars_for(package).into_iter().collect();
    ctx.which = shared.command.as_str().to_string();
    let mut results = Vec::new();
    let mut failed = false;
    for (i, hook) in hooks.iter().enumerate() {
        let id = hook_unique_id(package, what, i);
        let name = format!("{package}.{what}.{i}");
        if failed {
            shared.printer.progress(
                i + 1,
                hooks.len(),
                &format!("SKIP hook: {name}"),
                "SKIP in 0.00s",
            );
            results.push(skipped(
                &id,
                Some(format!("skipped because an earlier {what} hook failed")),
            ));
            continue;
        }
        let started_at = now_iso();
        let started = Instant::now();
        shared
            .printer
            .progress(i + 1, hooks.len(), &format!("START hook: {name}"), "RUN");
        let outcome = shared
            .compiler
            .engine
            .compile(&format!("{what}.{i}"), hook, ctx.clone())
            .map_err(|e| format!("{name} failed, error:\n {e}"))
            .and_then(|compiled| {
                write_file(
                    &shared.target_dir.join("compiled"),
                    &hook_compiled_path(package, what, i),
                    &compiled.sql,
                );
                if compiled.sql.trim().is_empty() {
                    return Ok(compiled.sql);
                }
                shared
                    .adapter
                    .current()
                    .execute_all(std::slice::from_ref(&compiled.sql))
                    .map(|_| compiled.sql)
                    .map_err(|e| format!("{name} failed, error:\n {}", e.0.trim()))
            });
        let took = elapsed_label(started);
        let mut result = skipped(&id, None);
        result.started_at = started_at.clone();
        result.compiled_at = started_at;
        result.thread_id = "main".into();
        match outcome {
            Ok(sql) => {
                result.status = Status::Success;
                result.message = Some("OK".into());
                result.compiled = Some(CompiledNode {
                    sql,
                    ..Default::default()
                });
                result.adapter_response = json!({"_message": "OK", "code": "OK"});
                shared.printer.progress(
                    i + 1,
                    hooks.len(),
                    &format!("OK hook: {name}"),
                    &format!("OK in {took}"),
                );
            }
            Err(message) => {
                failed = true;
                result.status = Status::Error;
                result.message = Some(message);
                shared.printer.progress(
                    i + 1,
                    hooks.len(),
                    &format!("ERROR hook: {name}"),
                    &format!("ERROR in {took}"),
                );
            }
        }
        result.execution_time = started.elapsed().as_secs_f64();
        result.completed_at = now_iso();
        results.push(result);
    }
    results
}

fn skipped(id: &UniqueId, message: Option<String>) -> NodeResult {
    let now = now_iso();
    NodeResult {
        unique_id: id.clone(),
        status: Status::Skipped,
        message,
        failures: None,
        execution_time: 0.0,
        thread_id: "main".into(),
        started_at: now.clone(),
        compiled_at: now.clone(),
        completed_at: now,
        compiled: None,
        relation_name: None,
        adapter_response: json!({}),
    }
}

fn schedule(shared: &Shared, plan: &Plan, threads: usize, fail_fast: bool) -> Vec<NodeResult> {
    let position: HashMap<&UniqueId, usize> = plan
        .order
        .iter()
        .enumerate()
        .map(|(i, id)| (id, i))
        .collect();
    let mut waiting: HashMap<UniqueId, usize> = plan
        .order
        .iter()
        .map(|id| (id.clone(), plan.deps.get(id).map_or(0, |d| d.len())))
        .collect();
    let mut dependents: HashMap<UniqueId, Vec<UniqueId>> = HashMap::new();
    for (id, deps) in &plan.deps {
        for d in deps {
            dependents.entry(d.clone()).or_default().push(id.clone());
        }
    }
    let mut ready: Vec<UniqueId> = plan
        .order
        .iter()
        .filter(|id| waiting[*id] == 0)
        .cloned()
        .collect();
    let mut results: HashMap<UniqueId, NodeResult> = HashMap::new();
    let mut blocked: HashMap<UniqueId, String> = HashMap::new();
    let mut stopping = false;

    std::thread::scope(|scope| {
        let (job_tx, job_rx) = mpsc::channel::<UniqueId>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, done_rx) = mpsc::channel::<NodeResult>();
        for slot in 0..threads {
            let job_rx = job_rx.clone();
            let done_tx = done_tx.clone();
            std::thread::Builder::new()
                .name(format!("Thread-{} (worker)", slot + 1))
                .stack_size(16 * 1024 * 1024)
                .spawn_scoped(scope, move || {
                    SLOT.with(|s| s.set(slot));
                    loop {
                        let next = job_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok(id) = next else { break };
                        let result = run_node(shared, &id, slot);
                        if done_tx.send(result).is_err() {
                            break;
                        }
                    }
                })
                .expect("spawn worker thread");
        }
        drop(done_tx);
        let mut running = 0usize;
        let mut finished = 0usize;
        let mut queue: VecDeque<UniqueId> = VecDeque::new();
        loop {
            ready.sort_by_key(|id| position[id]);
            queue.extend(ready.drain(..));
            while let Some(id) = queue.pop_front() {
                if let Some(reason) = blocked
                    .get(&id)
                    .cloned()
                    .or_else(|| stopping.then(|| "skipped because of --fail-fast".to_string()))
                {
                    let r = skip_node(shared, &id, reason);
                    finished += 1;
                    release(
                        &id,
                        r.status,
                        &dependents,
                        &mut waiting,
                        &mut ready,
                        &mut blocked,
                        shared,
                    );
                    results.insert(id.clone(), r);
                    continue;
                }
                running += 1;
                if job_tx.send(id).is_err() {
                    running -= 1;
                }
            }
            if finished == plan.order.len() {
                break;
            }
            if !ready.is_empty() {
                continue;
            }
            if running == 0 {
                break;
            }
            let Ok(r) = done_rx.recv() else { break };
            running -= 1;
            finished += 1;
            if fail_fast && matches!(r.status, Status::Error | Status::Fail) {
                stopping = true;
            }
            release(
                &r.unique_id,
                r.status,
                &dependents,
                &mut waiting,
                &mut ready,
                &mut blocked,
                shared,
            );
            results.insert(r.unique_id.clone(), r);
        }
        drop(job_tx);
    });
    plan.order
        .iter()
        .filter_map(|id| results.remove(id))
        .collect()
}

fn release(
    id: &UniqueId,
    status: Status,
    dependents: &HashMap<UniqueId, Vec<UniqueId>>,
    waiting: &mut HashMap<UniqueId, usize>,
    ready: &mut Vec<UniqueId>,
    blocked: &mut HashMap<UniqueId, String>,
    shared: &Shared,
) {
    for child in dependents.get(id).into_iter().flatten() {
        if status.blocks() && !blocked.contains_key(child) {
            let name = shared
                .project
                .nodes
                .get(id)
                .map(|n| n.name.clone())
                .unwrap_or_default();
            blocked.insert(
                child.clone(),
                format!("skipped because '{name}' did not succeed"),
            );
        }
        if let Some(w) = waiting.get_mut(child) {
            *w -= 1;
            if *w == 0 {
                ready.push(child.clone());
            }
        }
    }
}

fn next_index(shared: &Shared) -> usize {
    let mut c = shared.counter.lock().unwrap_or_else(|e| e.into_inner());
    *c += 1;
    *c
}

/// A test's name as the console shows it (`customer_orders::tiers` for a unit test).
fn test_name(node: &Node) -> String {
    match &node.unit_test {
        Some(details) => format!("{}::{}", details.model, node.name),
        None => node.name.clone(),
    }
}

/// `sql view model main.stg_customers`, `seed file main.raw_orders`, `test not_null_x`.
fn describe(node: &Node, materialization: &str) -> String {
    let rel = format!(
        "{}.{}",
        node.schema.clone().unwrap_or_default(),
        node.alias.clone().unwrap_or_else(|| node.name.clone())
    );
    match node.resource_type {
        ResourceType::Seed => format!("seed file {rel}"),
        ResourceType::Snapshot => format!("snapshot {rel}"),
        ResourceType::Test => format!("test {}", node.name),
        ResourceType::UnitTest => format!("unit_test {}", test_name(node)),
        _ => format!("sql {materialization} model {rel}"),
    }
}

fn skip_node(shared: &Shared, id: &UniqueId, reason: String) -> NodeResult {
    let node = &shared.project.nodes[id];
    let index = next_index(shared);
    let what = match node.resource_type {
        ResourceType::Test => format!("test {}", node.name),
        ResourceType::UnitTest => format!("unit_test {}", test_name(node)),
        _ => format!(
            "relation {}.{}",
            node.schema.clone().unwrap_or_default(),
            node.alias.clone().unwrap_or_else(|| node.name.clone())
        ),
    };
    shared
        .printer
        .progress(index, shared.total, &format!("SKIP {what}"), "SKIP");
    skipped(id, Some(reason))
}

fn elapsed_label(started: Instant) -> String {
    format!("{:.2}s", started.elapsed().as_secs_f64())
}

/// The file a node's SQL is written to under `target/compiled/<package>/` (generic tests
/// go beside their YAML file, as dbt writes them).
fn compiled_rel_path(node: &Node) -> PathBuf {
    let mut p = PathBuf::from(&node.package_name).join(&node.original_file_path);
    if node.resource_type == ResourceType::Test && node.test_metadata.is_some() {
        // dbt: `<yml path>/<test file name>`, without the YAML file's folders again.
        let file = Path::new(&node.path)
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(&node.path));
        p = p.join(file);
    }
    p
}

fn write_file(dir: &Path, rel: &Path, text: &str) {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::write(path, text);
}

fn run_node(shared: &Shared, id: &UniqueId, slot: usize) -> NodeResult {
    let node = &shared.project.nodes[id];
    let started_at = now_iso();
    let started = Instant::now();
    let materialization = materialized(node);
    let index = next_index(shared);
    let description = describe(node, &materialization);
    if shared.command != Command::Compile {
        shared
            .printer
            .progress(index, shared.total, &format!("START {description}"), "RUN");
    }
    let adapter = shared.adapter.current().clone();
    let relation = shared.compiler.relations.relation.get(id).cloned();
    let mut result = NodeResult {
        unique_id: id.clone(),
        status: Status::Success,
        message: None,
        failures: None,
        execution_time: 0.0,
        thread_id: format!("Thread-{} (worker)", slot + 1),
        started_at: started_at.clone(),
        compiled_at: started_at.clone(),
        completed_at: started_at,
        compiled: None,
        relation_name: relation
            .as_ref()
            .filter(|_| node.resource_type != ResourceType::Test)
            .map(Relation::render),
        adapter_response: json!({}),
    };
    let rel_path = compiled_rel_path(node);
    let shown_run_path = Path::new(&shared.project.settings.target_path)
        .join("run")
        .join(&rel_path);

    if node.resource_type == ResourceType::UnitTest {
        let rel_path = unit_test::compiled_rel_path(shared.project, node);
        match unit_test::run(shared.project, &shared.compiler, &adapter, node) {
            Ok(outcome) => {
                for dir in ["compiled", "run"] {
                    write_file(&shared.target_dir.join(dir), &rel_path, &outcome.sql);
                }
                result.status = if outcome.passed {
                    Status::Pass
                } else {
                    Status::Fail
                };
                result.failures = Some(if outcome.passed { 0 } else { 1 });
                result.message = outcome.message;
                result.compiled = Some(CompiledNode {
                    sql: outcome.sql,
                    ..Default::default()
                });
            }
            Err(e) => {
                result.status = Status::Error;
                result.message = Some(format!(
                    "Error in unit_test {} ({})\n  {e}",
                    node.name, node.original_file_path
                ));
            }
        }
        result.compiled_at = now_iso();
        return finish(shared, node, index, &description, result, started);
    }

    // Compile.
    let is_incremental = materialization == "incremental"
        && !shared.full_refresh
        && relation.as_ref().is_some_and(|r| {
            materialize::existing_kind(&adapter, r)
                .ok()
                .flatten()
                .as_deref()
                == Some("table")
        });
    let compiled = if node.resource_type == ResourceType::Seed {
        Ok(CompiledNode {
            config: node.config.clone(),
            ..Default::default()
        })
    } else {
        shared.compiler.compile(node, is_incremental)
    };
    result.compiled_at = now_iso();
    let compiled = match compiled {
        Ok(c) => c,
        Err(e) => {
            let kind = node.resource_type.as_str();
            result.status = Status::Error;
            result.message = Some(format!(
                "Compilation Error in {kind} {} ({})\n  {}",
                node.name, node.original_file_path, e.0
            ));
            return finish(shared, node, index, &description, result, started);
        }
    };
    if node.resource_type != ResourceType::Seed {
        write_file(
            &shared.target_dir.join("compiled"),
            &rel_path,
            &compiled.sql,
        );
    }
    let config = compiled.config.clone();
    // Seeds are loaded, not compiled (dbt's manifest has no compiled fields for them).
    if node.resource_type != ResourceType::Seed {
        result.compiled = Some(compiled.clone());
    }
    if shared.command == Command::Compile {
        result.execution_time = started.elapsed().as_secs_f64();
        result.completed_at = now_iso();
        return result;
    }

    let db_error = |e: String| {
        format!(
            "Database Error in {} {} ({})\n  {}\n  compiled code at {}",
            node.resource_type.as_str(),
            node.name,
            node.original_file_path,
            e.trim().replace('\n', "\n  "),
            shown_run_path.display()
        )
    };

    let outcome: Result<(), String> = (|| {
        if node.resource_type == ResourceType::Test {
            return run_test(shared, node, &adapter, &compiled, &mut result, &rel_path);
        }
        let Some(rel) = relation.clone() else {
            return Err("the node has no relation".to_string());
        };
        ensure_schema(shared, &adapter, &rel).map_err(|e| db_error(e.0))?;
        run_config_hooks(shared, node, &adapter, &config, "pre-hook").map_err(db_error)?;
        let response = match (node.resource_type, materialization.as_str()) {
            (ResourceType::Seed, _) => {
                let csv = shared.project.packages.get(&node.package_name).map_or_else(
                    || shared.project.root.join(&node.original_file_path),
                    |p| p.root.join(&node.original_file_path),
                );
                seed::seed(&adapter, &rel, &csv, &config, shared.full_refresh)
            }
            (ResourceType::Snapshot, _) => {
                snapshot::snapshot(&adapter, &rel, &compiled.sql, &config)
            }
            (_, "view" | "table") if contract::enforced(&config) => {
                let columns = contract_columns(&adapter, node, &compiled.sql)?;
                if materialization == "view" {
                    materialize::build_and_swap(&adapter, &rel, &compiled.sql, "view")
                } else {
                    materialize::build_contract_table(&adapter, &rel, &compiled.sql, &columns)
                }
            }
            (_, "view") => materialize::build_and_swap(&adapter, &rel, &compiled.sql, "view"),
            (_, "table") => materialize::build_and_swap(&adapter, &rel, &compiled.sql, "table"),
            (_, "incremental") => {
                let columns = if contract::enforced(&config) {
                    Some(contract_columns(&adapter, node, &compiled.sql)?)
                } else {
                    None
                };
                materialize::incremental(
                    &adapter,
                    &rel,
                    &compiled.sql,
                    &config,
                    shared.full_refresh,
                    columns.as_deref(),
                )
            }
            (_, other) => Err(AdapterError(format!(
                "materialization '{other}' is not supported (use view, table, incremental or ephemeral)"
            ))),
        };
        let response = response.map_err(|e| {
            write_file(&shared.target_dir.join("run"), &rel_path, &compiled.sql);
            db_error(e.0)
        })?;
        write_file(
            &shared.target_dir.join("run"),
            &rel_path,
            &response.run_sql.join(";\n\n"),
        );
        run_config_hooks(shared, node, &adapter, &config, "post-hook").map_err(db_error)?;
        result.message = Some(response.message.clone());
        result.adapter_response = json!({
            "_message": response.message,
            "code": response.message.split(' ').next().unwrap_or("OK"),
            "rows_affected": response.rows_affected.unwrap_or(-1),
        });
        Ok(())
    })();
    if let Err(message) = outcome {
        result.status = Status::Error;
        result.message = Some(message);
    }
    finish(shared, node, index, &description, result, started)
}

/// The columns of a model's enforced contract, or dbt's compilation error when the SQL does
/// not match it.
fn contract_columns(
    adapter: &WarehouseAdapter,
    node: &Node,
    sql: &str,
) -> Result<Vec<contract::ContractColumn>, String> {
    contract::check(adapter, node, sql).map_err(|e| {
        format!(
            "Compilation Error in model {} ({})\n  {}",
            node.name,
            node.original_file_path,
            e.replace('\n', "\n  ")
        )
    })
}

fn finish(
    shared: &Shared,
    node: &Node,
    index: usize,
    description: &str,
    mut result: NodeResult,
    started: Instant,
) -> NodeResult {
    result.execution_time = started.elapsed().as_secs_f64();
    result.completed_at = now_iso();
    let took = elapsed_label(started);
    let is_test = matches!(
        node.resource_type,
        ResourceType::Test | ResourceType::UnitTest
    );
    let name = test_name(node);
    let (line, status) = match (node.resource_type, result.status) {
        (_, Status::Pass) if is_test => (format!("PASS {name}"), format!("PASS in {took}")),
        (_, Status::Warn) if is_test => {
            let n = result.failures.unwrap_or(0);
            (format!("WARN {n} {name}"), format!("WARN {n} in {took}"))
        }
        (_, Status::Fail) if is_test => {
            let n = result.failures.unwrap_or(0);
            (format!("FAIL {n} {name}"), format!("FAIL {n} in {took}"))
        }
        (_, _) if is_test => (format!("ERROR {name}"), format!("ERROR in {took}")),
        (ResourceType::Seed, Status::Success) => (
            format!("OK loaded {description}"),
            format!("{} in {took}", result.message.clone().unwrap_or_default()),
        ),
        (_, Status::Success) => {
            let verb = if node.resource_type == ResourceType::Snapshot {
                "snapshotted"
            } else {
                "created"
            };
            (
                format!("OK {verb} {description}"),
                format!(
                    "{} in {took}",
                    result.message.clone().unwrap_or("OK".into())
                ),
            )
        }
        _ => {
            let verb = if node.resource_type == ResourceType::Seed {
                "loading"
            } else {
                "creating"
            };
            (
                format!("ERROR {verb} {description}"),
                format!("ERROR in {took}"),
            )
        }
    };
    shared.printer.progress(index, shared.total, &line, &status);
    result
}

fn ensure_schema(
    shared: &Shared,
    adapter: &WarehouseAdapter,
    rel: &Relation,
) -> Result<(), AdapterError> {
    let Some(schema) = &rel.schema else {
        return Ok(());
    };
    let mut schema_rel = rel.clone();
    schema_rel.identifier = None;
    if shared.adapter.dialect() != "duckdb" {
        // PostgreSQL's CREATE SCHEMA takes no database part.
        schema_rel.database = None;
    }
    let key = schema_rel.render();
    // Held while creating: two workers creating one schema conflict in DuckDB's catalog.
    let mut done = shared.schemas.lock().unwrap_or_else(|e| e.into_inner());
    if done.contains(&key) {
        return Ok(());
    }
    let _ = schema;
    adapter.execute_all(&[format!("create schema if not exists {key}")])?;
    done.insert(key);
    Ok(())
}

fn hook_sqls(config: &serde_json::Map<String, Json>, key: &str) -> Vec<String> {
    let alt = key.replace('-', "_");
    let mut out = Vec::new();
    for k in [key, alt.as_str()] {
        match config.get(k) {
            Some(Json::String(s)) => out.push(s.clone()),
            Some(Json::Array(items)) => {
                for item in items {
                    match item {
                        Json::String(s) => out.push(s.clone()),
                        Json::Object(o) => {
                            if let Some(Json::String(s)) = o.get("sql") {
                                out.push(s.clone());
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn run_config_hooks(
    shared: &Shared,
    node: &Node,
    adapter: &WarehouseAdapter,
    config: &serde_json::Map<String, Json>,
    key: &str,
) -> Result<(), String> {
    for (i, hook) in hook_sqls(config, key).iter().enumerate() {
        let sql = shared
            .compiler
            .render_in(
                node,
                &format!("{} ({key} {i})", node.original_file_path),
                hook,
            )
            .map_err(|e| e.0)?;
        if !sql.trim().is_empty() {
            adapter.execute_all(&[sql]).map_err(|e| e.0)?;
        }
    }
    Ok(())
}

fn run_test(
    shared: &Shared,
    node: &Node,
    adapter: &WarehouseAdapter,
    compiled: &CompiledNode,
    result: &mut NodeResult,
    rel_path: &Path,
) -> Result<(), String> {
    let config = &compiled.config;
    let text = |k: &str, default: &str| {
        config
            .get(k)
            .and_then(Json::as_str)
            .unwrap_or(default)
            .to_string()
    };
    let severity = text("severity", "ERROR").to_uppercase();
    // How failures are counted (dbt_utils' equal_rowcount sums a difference column).
    let fail_calc = text("fail_calc", "count(*)");
    let warn_if = text("warn_if", "!= 0");
    let error_if = text("error_if", "!= 0");
    let limit = config
        .get("limit")
        .and_then(Json::as_i64)
        .map(|l| format!("\n    limit {l}"))
        .unwrap_or_default();
    let store = config
        .get("store_failures")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let mut main_sql = compiled.sql.clone();
    if store {
        let schema = format!(
            "{}_{}",
            shared
                .compiler
                .target
                .get("schema")
                .and_then(Json::as_str)
                .unwrap_or("main"),
            text("schema", "dbt_test__audit")
        );
        let database = shared
            .compiler
            .target
            .get("database")
            .and_then(Json::as_str);
        let alias = node.alias.clone().unwrap_or_else(|| node.name.clone());
        let rel = Relation::new(database, Some(&schema), &alias);
        ensure_schema(shared, adapter, &rel).map_err(|e| e.0)?;
        materialize::build_and_swap(adapter, &rel, &compiled.sql, "table").map_err(|e| e.0)?;
        main_sql = format!("select * from {}", rel.render());
        result.relation_name = Some(rel.render());
    }
    let sql = format!(
        "select\n    {fail_calc} as failures,\n    {fail_calc} {warn_if} as should_warn,\n    {fail_calc} {error_if} as should_error\nfrom (\n{main_sql}{limit}\n) dbt_internal_test"
    );
    write_file(&shared.target_dir.join("run"), rel_path, &sql);
    let rows = adapter.query(&sql).map_err(|e| {
        format!(
            "Database Error in test {} ({})\n  {}\n  compiled code at {}",
            node.name,
            node.original_file_path,
            e.0.trim(),
            Path::new(&shared.project.settings.target_path)
                .join("run")
                .join(rel_path)
                .display()
        )
    })?;
    let row = rows.rows.first().cloned().unwrap_or_default();
    // A sum may come back as a wide integer or decimal.
    let failures = match row.first() {
        Some(Json::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Some(Json::String(s)) => s.parse::<f64>().ok().map(|f| f as i64),
        _ => None,
    }
    .unwrap_or(0);
    let truthy = |v: Option<&Json>| match v {
        Some(Json::Bool(b)) => *b,
        Some(Json::Number(n)) => n.as_i64() != Some(0),
        _ => false,
    };
    let should_warn = truthy(row.get(1));
    let should_error = truthy(row.get(2));
    result.failures = Some(failures);
    result.status = if severity == "ERROR" && should_error {
        Status::Fail
    } else if should_warn {
        Status::Warn
    } else {
        Status::Pass
    };
    result.message = match result.status {
        Status::Pass => None,
        _ => Some(format!(
            "Got {failures} result{}, configured to {} if {}",
            if failures == 1 { "" } else { "s" },
            if result.status == Status::Fail {
                "fail"
            } else {
                "warn"
            },
            if result.status == Status::Fail {
                &error_if
            } else {
                &warn_if
            }
        )),
    };
    result.adapter_response = json!({});
    Ok(())
}

fn summary(printer: &Printer, project: &Project, report: &RunReport, command: Command) {
    if command == Command::Compile {
        printer.line(&format!("Compiled {} nodes", report.results.len()));
        return;
    }
    // dbt's order: project hooks first, then the kinds sorted by dbt's own key
    // (`seed`, `table model`, `test`, `unit_test`, `view model`, ...).
    let mut kinds: Vec<(String, usize)> = Vec::new();
    let hooks = report
        .results
        .iter()
        .filter(|r| r.unique_id.starts_with("operation."))
        .count();
    if hooks > 0 {
        kinds.push(("project hook".to_string(), hooks));
    }
    let mut by_key: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for r in &report.results {
        let Some(node) = project
            .nodes
            .get(&r.unique_id)
            .or_else(|| project.disabled.get(&r.unique_id))
        else {
            continue;
        };
        let (key, label) = match node.resource_type {
            ResourceType::Model => {
                let m = format!("{} model", materialized(node));
                (m.clone(), m)
            }
            ResourceType::Test => ("test".to_string(), "data test".to_string()),
            ResourceType::UnitTest => ("unit_test".to_string(), "unit test".to_string()),
            other => (other.as_str().to_string(), other.as_str().to_string()),
        };
        by_key.entry(key).or_insert((label, 0)).1 += 1;
    }
    kinds.extend(by_key.into_values());
    let parts: Vec<String> = kinds
        .iter()
        .map(|(k, n)| format!("{n} {k}{}", if *n == 1 { "" } else { "s" }))
        .collect();
    printer.line("");
    let whole = report.elapsed as u64;
    printer.line(&format!(
        "Finished running {} in {} hours {} minutes and {:.2} seconds ({:.2}s).",
        parts.join(", "),
        whole / 3600,
        (whole % 3600) / 60,
        report.elapsed - (whole - whole % 60) as f64,
        report.elapsed
    ));
    let count = |s: Status| report.results.iter().filter(|r| r.status == s).count();
    let pass = count(Status::Success) + count(Status::Pass);
    let warn = count(Status::Warn);
    let error = count(Status::Error) + count(Status::Fail);
    let skip = count(Status::Skipped);
    printer.line("");
    if error == 0 && warn == 0 {
        printer.line("Completed successfully");
    } else if error == 0 {
        printer.line(&format!(
            "Completed with {warn} warning{}:",
            if warn == 1 { "" } else { "s" }
        ));
    } else {
        printer.line(&format!(
            "Completed with {error} error{}, 0 partial successes, and {warn} warning{}:",
            if error == 1 { "" } else { "s" },
            if warn == 1 { "" } else { "s" }
        ));
    }
    for r in &report.results {
        if matches!(r.status, Status::Error | Status::Fail | Status::Warn) {
            printer.line("");
            let Some(node) = project.nodes.get(&r.unique_id) else {
                // A project hook: `operation.<project>.<project>-<what>-<i>`.
                let (package, hook) = r
                    .unique_id
                    .strip_prefix("operation.")
                    .and_then(|rest| rest.split_once('.'))
                    .unwrap_or(("", &r.unique_id));
                printer.line(&format!("Failure in operation {hook} (./dbt_project.yml)"));
                printer.line(&format!("  {}", r.message.as_deref().unwrap_or_default()));
                printer.line("");
                let (what, index) = hook.rsplit_once('-').unwrap_or((hook, "0"));
                let what = what.strip_prefix(&format!("{package}-")).unwrap_or(what);
                let path = Path::new(&project.settings.target_path)
                    .join("compiled")
                    .join(hook_compiled_path(
                        package,
                        what,
                        index.parse().unwrap_or(0),
                    ));
                printer.line(&format!("  compiled code at {}", path.display()));
                continue;
            };
            let compiled_at = Path::new(&project.settings.target_path)
                .join("compiled")
                .join(if node.resource_type == ResourceType::UnitTest {
                    unit_test::compiled_rel_path(project, node)
                } else {
                    compiled_rel_path(node)
                });
            let message = r.message.clone().unwrap_or_default();
            match r.status {
                Status::Fail | Status::Warn => {
                    let head = if r.status == Status::Fail {
                        "Failure"
                    } else {
                        "Warning"
                    };
                    let kind = if node.resource_type == ResourceType::UnitTest {
                        "unit_test"
                    } else {
                        "test"
                    };
                    printer.line(&format!(
                        "{head} in {kind} {} ({})",
                        node.name, node.original_file_path
                    ));
                    // dbt indents a failure's message, not a warning's.
                    if r.status == Status::Fail {
                        printer.line(&format!("  {message}"));
                    } else {
                        printer.line(&message);
                    }
                    printer.line("");
                    printer.line(&format!("  compiled code at {}", compiled_at.display()));
                    if let Some(stored) = &r.relation_name {
                        // store_failures: where the failing rows are.
                        let query = format!("select * from {stored}");
                        let border = "-".repeat(query.chars().count());
                        printer.line("");
                        printer.line(&format!(
                            "  See test failures:\n  {border}\n  {query}\n  {border}"
                        ));
                    }
                }
                _ => printer.line(&message),
            }
        }
    }
    printer.line("");
    printer.line(&format!(
        "Done. PASS={pass} WARN={warn} ERROR={error} SKIP={skip} NO-OP=0 TOTAL={}",
        report.results.len()
    ));
}
