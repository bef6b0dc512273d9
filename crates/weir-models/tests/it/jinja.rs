//! dbt Jinja tests: the value model, the literal pass, the macro runtime, and dbt_utils.

mod dbt_utils;
mod rewrite;
mod runtime;
mod values;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use weir_models::jinja::{
    Adapter, AdapterError, Column, CompileContext, Engine, MacroPackage, RefCall, Relation,
    Resolver, Table,
};

/// A warehouse that knows some relations' columns and answers queries by substring.
#[derive(Default)]
pub struct FakeWarehouse {
    pub dialect: String,
    pub columns: HashMap<String, Vec<Column>>,
    pub answers: Vec<(String, Table)>,
    pub executed: Mutex<Vec<String>>,
}

impl FakeWarehouse {
    pub fn new(dialect: &str) -> FakeWarehouse {
        FakeWarehouse {
            dialect: dialect.to_string(),
            ..FakeWarehouse::default()
        }
    }

    pub fn with_columns(mut self, table: &str, columns: &[(&str, &str)]) -> FakeWarehouse {
        self.columns.insert(
            table.to_string(),
            columns.iter().map(|(n, t)| Column::new(n, t)).collect(),
        );
        self
    }

    pub fn answering(mut self, sql_contains: &str, table: Table) -> FakeWarehouse {
        self.answers.push((sql_contains.to_string(), table));
        self
    }
}

impl Adapter for FakeWarehouse {
    fn dialect(&self) -> &str {
        &self.dialect
    }

    fn execute(&self, sql: &str, _fetch: bool) -> Result<Table, AdapterError> {
        self.executed.lock().unwrap().push(sql.to_string());
        for (needle, table) in &self.answers {
            if sql.contains(needle.as_str()) {
                return Ok(table.clone());
            }
        }
        Err(AdapterError(format!(
            "fake warehouse has no answer for: {}",
            sql.trim()
        )))
    }

    fn get_columns_in_relation(&self, relation: &Relation) -> Result<Vec<Column>, AdapterError> {
        let name = relation.identifier.clone().unwrap_or_default();
        Ok(self.columns.get(&name).cloned().unwrap_or_default())
    }

    fn get_relation(
        &self,
        database: Option<&str>,
        schema: &str,
        identifier: &str,
    ) -> Result<Option<Relation>, AdapterError> {
        Ok(self
            .columns
            .contains_key(identifier)
            .then(|| Relation::new(database, Some(schema), identifier)))
    }
}

/// Resolves every ref to `"main"."<name>"` and every source to `"raw"."<source>_<table>"`.
pub struct FakeResolver;

impl Resolver for FakeResolver {
    fn resolve_ref(&self, call: &RefCall) -> Result<Relation, String> {
        if call.name == "missing" {
            return Err(format!("model '{}' was not found", call.name));
        }
        Ok(Relation::new(None, Some("main"), &call.name))
    }

    fn resolve_source(&self, source: &str, table: &str) -> Result<Relation, String> {
        Ok(Relation::new(
            None,
            Some("raw"),
            &format!("{source}_{table}"),
        ))
    }
}

pub fn context() -> CompileContext {
    let mut ctx = CompileContext::new("my_project");
    ctx.resolver = Some(Arc::new(FakeResolver));
    ctx.target = serde_json::json!({"name": "dev", "schema": "analytics", "database": "db", "type": "duckdb"});
    ctx.this = Some(Relation::new(Some("db"), Some("analytics"), "this_model"));
    ctx
}

pub fn engine_with(warehouse: FakeWarehouse, root_macros: &[(&str, &str)]) -> Engine {
    let mut root = MacroPackage::new("my_project");
    for (path, src) in root_macros {
        root = root.with_file(path, src);
    }
    Engine::builder("my_project", Arc::new(warehouse))
        .package(root)
        .build()
        .expect("engine builds")
}

/// Renders `src` as a model of the root project on DuckDB; panics with the error text.
pub fn render(src: &str) -> String {
    render_with(&engine_with(FakeWarehouse::new("duckdb"), &[]), src)
}

pub fn render_with(engine: &Engine, src: &str) -> String {
    match engine.compile("models/m.sql", src, context()) {
        Ok(c) => c.sql,
        Err(e) => panic!("compile failed: {e}"),
    }
}

pub fn render_err(engine: &Engine, src: &str) -> String {
    match engine.compile("models/m.sql", src, context()) {
        Ok(c) => panic!("expected an error, got {:?}", c.sql),
        Err(e) => e.to_string(),
    }
}

/// Collapses runs of whitespace, for comparing SQL.
pub fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
