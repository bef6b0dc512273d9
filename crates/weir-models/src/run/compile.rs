//! Compiling one node: render with the engine, collect what `config()`, `ref()` and `source()`
//! did, inject ephemeral models as `__dbt__cte__<name>` CTEs, write `target/compiled/`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value as Json};

use crate::jinja::{CompileContext, Engine, RefCall, Relation, Resolver};
use crate::project::{Node, Project, ResourceType, UniqueId};

/// The relations every node resolves to, fixed before the run starts.
pub struct Relations {
    /// Refable nodes by (package, name) and by name.
    by_name: HashMap<String, Vec<UniqueId>>,
    /// Sources by (source, table).
    sources: HashMap<(String, String), UniqueId>,
    pub relation: HashMap<UniqueId, Relation>,
    pub ephemeral: HashMap<UniqueId, bool>,
    pub package: HashMap<UniqueId, String>,
}

impl Relations {
    pub fn new(project: &Project, quote_char: char) -> Relations {
        let mut by_name: HashMap<String, Vec<UniqueId>> = HashMap::new();
        let mut sources = HashMap::new();
        let mut relation = HashMap::new();
        let mut ephemeral = HashMap::new();
        let mut package = HashMap::new();
        for node in project.nodes.values() {
            package.insert(node.unique_id.clone(), node.package_name.clone());
            match node.resource_type {
                ResourceType::Source => {
                    if let Some(details) = &node.source {
                        sources.insert(
                            (details.source_name.clone(), node.name.clone()),
                            node.unique_id.clone(),
                        );
                        let mut rel = Relation::new(
                            node.database.as_deref(),
                            node.schema.as_deref(),
                            &details.identifier,
                        );
                        rel.quote_char = quote_char;
                        relation.insert(node.unique_id.clone(), rel);
                    }
                }
                t if t.is_refable() => {
                    by_name
                        .entry(node.name.clone())
                        .or_default()
                        .push(node.unique_id.clone());
                    let is_ephemeral = materialized(node) == "ephemeral";
                    ephemeral.insert(node.unique_id.clone(), is_ephemeral);
                    relation.insert(node.unique_id.clone(), node_relation(node, quote_char));
                }
                _ => {
                    relation.insert(node.unique_id.clone(), node_relation(node, quote_char));
                }
            }
        }
        Relations {
            by_name,
            sources,
            relation,
            ephemeral,
            package,
        }
    }

    fn find_ref(&self, call: &RefCall, from_package: &str) -> Option<&UniqueId> {
        let ids = self.by_name.get(&call.name)?;
        match &call.package {
            Some(pkg) => ids
                .iter()
                .find(|id| self.package.get(*id).map(String::as_str) == Some(pkg.as_str())),
            None => ids
                .iter()
                .find(|id| self.package.get(*id).map(String::as_str) == Some(from_package))
                .or_else(|| ids.first()),
        }
    }
}

/// A node's relation: `"database"."schema"."alias"`, or the CTE name of an ephemeral model.
pub fn node_relation(node: &Node, quote_char: char) -> Relation {
    if materialized(node) == "ephemeral" {
        let mut rel = Relation::new(None, None, &format!("__dbt__cte__{}", node.name));
        rel.include = [false, false, true];
        rel.quote = [false, false, false];
        rel.kind = Some("cte".to_string());
        return rel;
    }
    let alias = node.alias.clone().unwrap_or_else(|| node.name.clone());
    let mut rel = Relation::new(node.database.as_deref(), node.schema.as_deref(), &alias);
    rel.quote_char = quote_char;
    rel
}

pub fn materialized(node: &Node) -> String {
    match node.resource_type {
        ResourceType::Seed => "seed".to_string(),
        ResourceType::Snapshot => "snapshot".to_string(),
        ResourceType::Test => "test".to_string(),
        _ => node
            .config
            .get("materialized")
            .and_then(Json::as_str)
            .unwrap_or("view")
            .to_string(),
    }
}

/// Records the refs and sources one render resolved.
pub struct RecordingResolver {
    relations: Arc<Relations>,
    package: String,
    pub depends_on: Mutex<Vec<UniqueId>>,
    /// `--empty`: refs and sources render as `limit 0` subqueries (with an alias where the
    /// warehouse needs one).
    pub empty: bool,
    pub empty_alias: bool,
}

impl RecordingResolver {
    pub fn new(relations: Arc<Relations>, package: &str) -> RecordingResolver {
        RecordingResolver {
            relations,
            package: package.to_string(),
            depends_on: Mutex::new(Vec::new()),
            empty: false,
            empty_alias: false,
        }
    }

    /// The relation a ref or source renders as: itself, or with `--empty` dbt's
    /// `render_limited()` subquery.
    fn limited(&self, rel: &Relation) -> Relation {
        if !self.empty || rel.kind.as_deref() == Some("cte") {
            return rel.clone();
        }
        let name = rel.identifier.clone().unwrap_or_default();
        let alias = if self.empty_alias {
            format!(" _dbt_limit_subq_{name}")
        } else {
            String::new()
        };
        let mut limited = Relation::new(
            None,
            None,
            &format!(
                "(select * from {} where false limit 0){alias}",
                rel.render()
            ),
        );
        limited.include = [false, false, true];
        limited.quote = [false, false, false];
        limited
    }

    fn record(&self, id: &UniqueId) {
        let mut deps = self.depends_on.lock().unwrap_or_else(|e| e.into_inner());
        if !deps.contains(id) {
            deps.push(id.clone());
        }
    }
}

impl Resolver for RecordingResolver {
    fn resolve_ref(&self, call: &RefCall) -> Result<Relation, String> {
        let Some(id) = self.relations.find_ref(call, &self.package) else {
            return Err(format!(
                "ref('{}') names no model, seed or snapshot of this project",
                call.name
            ));
        };
        self.record(id);
        Ok(self.limited(&self.relations.relation[id]))
    }

    fn resolve_source(&self, source_name: &str, table_name: &str) -> Result<Relation, String> {
        let key = (source_name.to_string(), table_name.to_string());
        let Some(id) = self.relations.sources.get(&key) else {
            return Err(format!(
                "source('{source_name}', '{table_name}') names no source of this project"
            ));
        };
        self.record(id);
        Ok(self.limited(&self.relations.relation[id]))
    }
}

/// A CTE relation named `__dbt__cte__<name>` (what ephemeral models and unit test fixtures
/// render as).
pub fn cte_relation(name: &str) -> Relation {
    let mut rel = Relation::new(None, None, &format!("__dbt__cte__{name}"));
    rel.include = [false, false, true];
    rel.quote = [false, false, false];
    rel.kind = Some("cte".to_string());
    rel
}

/// Resolves the inputs a unit test gives to their fixture CTEs, everything else as usual.
struct FixtureResolver {
    inner: RecordingResolver,
    /// Input id → the name in its CTE's name `__dbt__cte__<name>`.
    fixtures: HashMap<UniqueId, String>,
}

impl FixtureResolver {
    fn swap(&self, id: Option<UniqueId>, rel: Relation) -> Relation {
        match id.and_then(|id| self.fixtures.get(&id)) {
            Some(name) => cte_relation(name),
            None => rel,
        }
    }
}

impl Resolver for FixtureResolver {
    fn resolve_ref(&self, call: &RefCall) -> Result<Relation, String> {
        let rel = self.inner.resolve_ref(call)?;
        let id = self
            .inner
            .relations
            .find_ref(call, &self.inner.package)
            .cloned();
        Ok(self.swap(id, rel))
    }

    fn resolve_source(&self, source_name: &str, table_name: &str) -> Result<Relation, String> {
        let rel = self.inner.resolve_source(source_name, table_name)?;
        let id = self
            .inner
            .relations
            .sources
            .get(&(source_name.to_string(), table_name.to_string()))
            .cloned();
        Ok(self.swap(id, rel))
    }
}

/// What compiling one node produced.
#[derive(Debug, Clone, Default)]
pub struct CompiledNode {
    /// The SQL with ephemeral CTEs injected.
    pub sql: String,
    /// What the in-file `config()` calls set.
    pub config_layer: Map<String, Json>,
    /// The node's config with that layer applied.
    pub config: Map<String, Json>,
    pub depends_on: Vec<UniqueId>,
    /// `(id, sql)` of the injected ephemeral models, in injection order.
    pub extra_ctes: Vec<(UniqueId, String)>,
}

/// Everything compiles need, shared by every worker.
pub struct Compiler {
    pub engine: Engine,
    pub relations: Arc<Relations>,
    pub nodes: BTreeMap<UniqueId, Node>,
    pub target: Json,
    pub vars: HashMap<String, Map<String, Json>>,
    pub which: String,
    pub run_started_at: i64,
    pub invocation_id: String,
    pub full_refresh: bool,
    /// `--empty`: refs and sources read no rows.
    pub empty: bool,
    /// Compiled ephemeral models (without their own CTEs injected), by id.
    ephemeral_cache: Mutex<HashMap<UniqueId, CompiledNode>>,
}

/// A compile failure, worded as the renderer said it.
#[derive(Debug, Clone)]
pub struct CompileFailure(pub String);

impl Compiler {
    pub fn new(
        engine: Engine,
        project: &Project,
        relations: Arc<Relations>,
        target: Json,
        which: &str,
        full_refresh: bool,
    ) -> Compiler {
        let vars = project
            .packages
            .keys()
            .map(|p| (p.clone(), project.vars_for(p)))
            .collect();
        let now = jiff::Timestamp::now();
        Compiler {
            engine,
            relations,
            nodes: project.nodes.clone(),
            target,
            vars,
            which: which.to_string(),
            run_started_at: now.as_second(),
            invocation_id: format!("{:032x}", now.as_nanosecond()),
            full_refresh,
            empty: false,
            ephemeral_cache: Mutex::new(HashMap::new()),
        }
    }

    /// The context one node renders with.
    pub fn context(
        &self,
        node: &Node,
        is_incremental: bool,
    ) -> (CompileContext, Arc<RecordingResolver>) {
        let mut resolver = RecordingResolver::new(self.relations.clone(), &node.package_name);
        resolver.empty = self.empty;
        // dbt-duckdb's relations need no subquery alias; PostgreSQL's do.
        resolver.empty_alias = self.target.get("type").and_then(Json::as_str) != Some("duckdb");
        let resolver = Arc::new(resolver);
        let mut ctx = CompileContext::new(&node.package_name);
        ctx.this = self.relations.relation.get(&node.unique_id).cloned();
        ctx.target = self.target.clone();
        ctx.model = crate::project::state::node_json(node);
        ctx.vars = self
            .vars
            .get(&node.package_name)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        ctx.resolver = Some(resolver.clone());
        ctx.config = Arc::new(Mutex::new(node.config.clone()));
        ctx.is_incremental = is_incremental;
        ctx.execute = true;
        ctx.which = self.which.clone();
        ctx.run_started_at = Some(self.run_started_at);
        ctx.extra.insert(
            "invocation_id".into(),
            Json::String(self.invocation_id.clone()),
        );
        (ctx, resolver)
    }

    /// Renders arbitrary SQL (a hook) in a node's context.
    pub fn render_in(&self, node: &Node, name: &str, sql: &str) -> Result<String, CompileFailure> {
        let (ctx, _) = self.context(node, false);
        self.engine
            .compile(name, sql, ctx)
            .map(|c| c.sql)
            .map_err(|e| CompileFailure(e.to_string()))
    }

    /// Compiles `node`, injecting the ephemeral models it refs.
    pub fn compile(
        &self,
        node: &Node,
        is_incremental: bool,
    ) -> Result<CompiledNode, CompileFailure> {
        let mut compiled = self.render(node, is_incremental)?;
        let mut ctes = Vec::new();
        self.collect_ctes(&compiled.depends_on, &mut ctes, 0)?;
        compiled.sql = inject_ctes(&compiled.sql, &ctes, &self.relations);
        compiled.extra_ctes = ctes;
        Ok(compiled)
    }

    /// The node id `ref(name)` / `ref(package, name)` resolves to from `package`.
    pub fn find_ref(&self, package: Option<&str>, name: &str, from: &str) -> Option<UniqueId> {
        let call = RefCall {
            package: package.map(str::to_string),
            name: name.to_string(),
            version: None,
        };
        self.relations.find_ref(&call, from).cloned()
    }

    /// The source node `source(source_name, table_name)` names.
    pub fn find_source(&self, source_name: &str, table_name: &str) -> Option<UniqueId> {
        self.relations
            .sources
            .get(&(source_name.to_string(), table_name.to_string()))
            .cloned()
    }

    /// Compiles `model` for a unit test: each input in `fixtures` (id, name, fixture SQL) is
    /// a CTE `__dbt__cte__<name>` in place of its relation, as dbt does, and so is `this` when
    /// `this_fixture` is given; other ephemeral models are injected as usual. `overrides` is
    /// the unit test's `overrides:` (`vars`, `env_vars`, `macros: {is_incremental: ..}`).
    pub fn compile_with_fixtures(
        &self,
        model: &Node,
        fixtures: &[(UniqueId, String, String)],
        this_fixture: Option<&str>,
        overrides: &Json,
    ) -> Result<String, CompileFailure> {
        let (mut ctx, _) = self.context(model, false);
        if let Some(Json::Object(vars)) = overrides.get("vars") {
            ctx.vars
                .extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if let Some(Json::Object(env)) = overrides.get("env_vars") {
            let mut all: BTreeMap<String, String> = std::env::vars().collect();
            for (k, v) in env {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                all.insert(k.clone(), text);
            }
            ctx.env_vars = Some(all);
        }
        if let Some(flag) = overrides
            .get("macros")
            .and_then(|m| m.get("is_incremental"))
            .and_then(Json::as_bool)
        {
            ctx.is_incremental = flag;
        }
        let this_name = format!("{}_this", model.name);
        if this_fixture.is_some() {
            ctx.this = Some(cte_relation(&this_name));
        }
        let resolver = Arc::new(FixtureResolver {
            inner: RecordingResolver::new(self.relations.clone(), &model.package_name),
            fixtures: fixtures
                .iter()
                .map(|(id, name, _)| (id.clone(), name.clone()))
                .collect(),
        });
        ctx.resolver = Some(resolver.clone());
        ctx.execute = true;
        let out = self
            .engine
            .compile(&model.original_file_path, &model.raw_code, ctx)
            .map_err(|e| CompileFailure(e.to_string()))?;
        let deps = resolver
            .inner
            .depends_on
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut ctes: Vec<(String, String)> = Vec::new();
        if let Some(sql) = this_fixture {
            ctes.push((format!("__dbt__cte__{this_name}"), sql.to_string()));
        }
        for dep in &deps {
            if let Some((_, name, sql)) = fixtures.iter().find(|(id, _, _)| id == dep) {
                ctes.push((format!("__dbt__cte__{name}"), sql.clone()));
            } else if self.relations.ephemeral.get(dep).copied().unwrap_or(false) {
                let mut found = Vec::new();
                self.collect_ctes(std::slice::from_ref(dep), &mut found, 0)?;
                for (id, body) in found {
                    let name = self
                        .relations
                        .relation
                        .get(&id)
                        .and_then(|r| r.identifier.clone())
                        .unwrap_or_default();
                    if !ctes.iter().any(|(n, _)| *n == name) {
                        ctes.push((name, body));
                    }
                }
            }
        }
        Ok(inject_named_ctes(&out.sql, &ctes))
    }

    fn render(&self, node: &Node, is_incremental: bool) -> Result<CompiledNode, CompileFailure> {
        let (mut ctx, resolver) = self.context(node, is_incremental);
        if node.resource_type == ResourceType::Test
            && let Some(meta) = &node.test_metadata
        {
            let kwargs = self.test_kwargs(node, &meta.kwargs)?;
            ctx.extra
                .insert("_dbt_generic_test_kwargs".into(), Json::Object(kwargs));
        }
        let seeded = ctx.config.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let config = ctx.config.clone();
        let name = node.original_file_path.clone();
        let out = self
            .engine
            .compile(&name, &node.raw_code, ctx)
            .map_err(|e| CompileFailure(e.to_string()))?;
        let after = config.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let layer: Map<String, Json> = after
            .into_iter()
            .filter(|(k, v)| seeded.get(k) != Some(v))
            .collect();
        // `config` was seeded with the node's config, so what changed is what the render set;
        // the seed already holds the static (literal) part of the in-file config.
        let mut effective = node.config.clone();
        let mut file_layer = node.static_config.clone();
        for (k, v) in &layer {
            effective.insert(k.clone(), v.clone());
            file_layer.insert(k.clone(), v.clone());
        }
        let depends_on = resolver
            .depends_on
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Ok(CompiledNode {
            sql: out.sql,
            config_layer: file_layer,
            config: effective,
            depends_on,
            extra_ctes: Vec::new(),
        })
    }

    /// dbt renders each string argument of a generic test (`ref('x')` becomes a relation).
    fn test_kwargs(
        &self,
        node: &Node,
        kwargs: &BTreeMap<String, Json>,
    ) -> Result<Map<String, Json>, CompileFailure> {
        let func = regex::Regex::new(r"^\s*(env_var|ref|var|source|doc)\s*\(.+\)\s*$")
            .map_err(|e| CompileFailure(e.to_string()))?;
        let mut out = Map::new();
        for (key, value) in kwargs {
            let rendered = match value {
                Json::String(text) if key != "column_name" => {
                    let template = if func.is_match(text) {
                        format!("{{{{ {text} }}}}")
                    } else {
                        text.clone()
                    };
                    let (ctx, _) = self.context(node, false);
                    let sql = self
                        .engine
                        .compile(&node.original_file_path, &template, ctx)
                        .map_err(|e| CompileFailure(e.to_string()))?
                        .sql;
                    Json::String(sql)
                }
                other => other.clone(),
            };
            out.insert(key.clone(), rendered);
        }
        Ok(out)
    }

    fn collect_ctes(
        &self,
        deps: &[UniqueId],
        out: &mut Vec<(UniqueId, String)>,
        depth: usize,
    ) -> Result<(), CompileFailure> {
        if depth > 50 {
            return Err(CompileFailure(
                "ephemeral models ref each other in a loop".to_string(),
            ));
        }
        for dep in deps {
            if !self.relations.ephemeral.get(dep).copied().unwrap_or(false)
                || out.iter().any(|(id, _)| id == dep)
            {
                continue;
            }
            let Some(node) = self.nodes.get(dep) else {
                continue;
            };
            let cached = self
                .ephemeral_cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(dep)
                .cloned();
            let compiled = match cached {
                Some(c) => c,
                None => {
                    let c = self.render(node, false)?;
                    self.ephemeral_cache
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(dep.clone(), c.clone());
                    c
                }
            };
            self.collect_ctes(&compiled.depends_on, out, depth + 1)?;
            if !out.iter().any(|(id, _)| id == dep) {
                out.push((dep.clone(), compiled.sql));
            }
        }
        Ok(())
    }
}

/// dbt's injection: `with __dbt__cte__a as (...), <the node's own with-list or select>`.
pub fn inject_ctes(sql: &str, ctes: &[(UniqueId, String)], relations: &Relations) -> String {
    let named: Vec<(String, String)> = ctes
        .iter()
        .map(|(id, body)| {
            let name = relations
                .relation
                .get(id)
                .and_then(|r| r.identifier.clone())
                .unwrap_or_default();
            (name, body.clone())
        })
        .collect();
    inject_named_ctes(sql, &named)
}

/// Injects `(cte name, body)` pairs in front of `sql`.
pub fn inject_named_ctes(sql: &str, ctes: &[(String, String)]) -> String {
    if ctes.is_empty() {
        return sql.to_string();
    }
    let parts: Vec<String> = ctes
        .iter()
        .map(|(name, body)| format!("{name} as (\n{body}\n)"))
        .collect();
    let joined = parts.join(", ");
    let trimmed = sql.trim_start();
    let lead = &sql[..sql.len() - trimmed.len()];
    let starts_with_with = trimmed.len() >= 4
        && trimmed[..4].eq_ignore_ascii_case("with")
        && trimmed[4..].starts_with(|c: char| c.is_whitespace());
    if starts_with_with {
        format!("{lead}with {joined}, {}", &trimmed[4..].trim_start())
    } else {
        format!("{lead}with {joined}\n{trimmed}")
    }
}
