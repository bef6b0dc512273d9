//! The [`Adapter`] over a `weir_warehouse::Warehouse`: the Jinja layer calls it from compile
//! threads, so every warehouse call is driven to completion on the runner's own tokio runtime
//! (never on the caller's async runtime).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use minijinja::Value;
use weir_warehouse::{Dialect, Warehouse};

use crate::jinja::{Adapter, AdapterError, Column, Relation, Table};

/// One warehouse connection and the runtime its calls run on.
pub struct WarehouseAdapter {
    warehouse: Warehouse,
    runtime: tokio::runtime::Handle,
    dialect: &'static str,
    /// Shared by the connections of one command (`sharing_relations_with`).
    relations: Arc<Mutex<Relations>>,
}

/// The relations of each schema looked at, as dbt's relation cache keeps them: listed once
/// per schema, then kept up to date by the materializations, which know what they built.
/// Any other statement (a hook, `run_query`, a seed, a snapshot) forgets them all.
#[derive(Default)]
struct Relations {
    /// `(database, schema)` → relation name → `table` or `view`.
    schemas: HashMap<(Option<String>, String), HashMap<String, String>>,
    /// Bumped by every change, so a listing that raced with one is not kept.
    generation: u64,
}

/// The kind dbt names a relation of `information_schema.tables`' `table_type`.
fn kind_of(table_type: &str) -> String {
    if table_type.to_uppercase().contains("VIEW") {
        "view".to_string()
    } else {
        "table".to_string()
    }
}

impl WarehouseAdapter {
    pub fn new(warehouse: Warehouse, runtime: tokio::runtime::Handle) -> WarehouseAdapter {
        let dialect = match warehouse.dialect() {
            Dialect::DuckDb => "duckdb",
            Dialect::Postgres => "postgres",
            Dialect::Sqlite => "sqlite",
        };
        WarehouseAdapter {
            warehouse,
            runtime,
            dialect,
            relations: Arc::default(),
        }
    }

    /// This connection with the relation cache of `other`, another connection of the same
    /// command: what one thread builds, the others see.
    pub fn sharing_relations_with(mut self, other: &WarehouseAdapter) -> WarehouseAdapter {
        self.relations = other.relations.clone();
        self
    }

    /// Runs statements in one transaction. What they change is unknown: the relations listed
    /// so far are forgotten.
    pub fn execute_all(&self, statements: &[String]) -> Result<(), AdapterError> {
        let done = self.run_statements(statements);
        self.forget_relations();
        done
    }

    /// Runs statements in one transaction that leave each of `effects`' relations as given
    /// (`Some(kind)`: it exists as that kind; `None`: it is gone) and touch no other, and
    /// notes that in the relations listed so far.
    pub fn execute_known(
        &self,
        statements: &[String],
        effects: &[(&Relation, Option<&str>)],
    ) -> Result<(), AdapterError> {
        let done = self.run_statements(statements);
        // PostgreSQL's `drop … cascade` also drops the views that read the relation.
        let cascades =
            self.dialect == "postgres" && statements.iter().any(|s| s.starts_with("drop"));
        if done.is_err() || cascades {
            self.forget_relations();
            return done;
        }
        let mut relations = self.relations.lock().unwrap_or_else(|e| e.into_inner());
        relations.generation += 1;
        for (rel, kind) in effects {
            let key = (rel.database.clone(), rel.schema_or_default().to_string());
            let (Some(listed), Some(name)) = (relations.schemas.get_mut(&key), &rel.identifier)
            else {
                continue;
            };
            match kind {
                Some(kind) => listed.insert(name.clone(), kind.to_string()),
                None => listed.remove(name),
            };
        }
        done
    }

    fn run_statements(&self, statements: &[String]) -> Result<(), AdapterError> {
        self.runtime
            .block_on(self.warehouse.execute_all(statements))
            .map_err(|e| AdapterError(e.to_string()))
    }

    fn forget_relations(&self) {
        let mut relations = self.relations.lock().unwrap_or_else(|e| e.into_inner());
        relations.schemas.clear();
        relations.generation += 1;
    }

    /// Runs a query and returns its rows as JSON.
    pub fn query(&self, sql: &str) -> Result<weir_warehouse::Rows, AdapterError> {
        self.runtime
            .block_on(self.warehouse.query(sql))
            .map_err(|e| AdapterError(e.to_string()))
    }

    /// The names and types of the columns `sql` returns (as the warehouse names the types:
    /// DuckDB's `describe`, PostgreSQL's `pg_typeof`), without fetching its rows.
    pub fn query_columns(&self, sql: &str) -> Result<Vec<(String, String)>, AdapterError> {
        if self.dialect == "duckdb" {
            let rows = self.query(&format!(
                "describe select * from (\n{sql}\n) weir_query_columns"
            ))?;
            return Ok(rows
                .rows
                .iter()
                .map(|r| {
                    let text =
                        |i: usize| r.get(i).and_then(|v| v.as_str()).unwrap_or("").to_string();
                    (text(0), text(1))
                })
                .collect());
        }
        // One row whatever the query returns (NULLs when it returns none): its column names,
        // then the type of each.
        let from = format!(
            "from (select 1 as weir_one) weir_one left join (\n{sql}\n) weir_query_columns on true limit 1"
        );
        let probe = self.query(&format!("select weir_query_columns.* {from}"))?;
        if probe.columns.is_empty() {
            return Ok(Vec::new());
        }
        let typed: Vec<String> = probe
            .columns
            .iter()
            .map(|c| {
                format!(
                    "pg_typeof(weir_query_columns.{})::text",
                    crate::jinja::adapter::quote_identifier(c, '"')
                )
            })
            .collect();
        let types = self.query(&format!("select {} {from}", typed.join(", ")))?;
        let row = types.rows.first().cloned().unwrap_or_default();
        Ok(probe
            .columns
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let t = row
                    .get(i)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string();
                (c, t)
            })
            .collect())
    }

    /// The relation's kind (`table`/`view`) when it exists, from one listing of its schema.
    pub fn relation_kind(
        &self,
        database: Option<&str>,
        schema: &str,
        identifier: &str,
    ) -> Result<Option<String>, AdapterError> {
        let key = (database.map(str::to_string), schema.to_string());
        let generation = {
            let relations = self.relations.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(listed) = relations.schemas.get(&key) {
                return Ok(listed.get(identifier).cloned());
            }
            relations.generation
        };
        let mut sql = format!(
            "select table_name, table_type from information_schema.tables where table_schema = {}",
            literal(schema)
        );
        if let (Some(db), "duckdb") = (database, self.dialect) {
            sql.push_str(&format!(" and table_catalog = {}", literal(db)));
        }
        let rows = self.query(&sql)?;
        let listed: HashMap<String, String> = rows
            .rows
            .iter()
            .filter_map(|r| {
                let name = r.first()?.as_str()?.to_string();
                let kind = kind_of(r.get(1).and_then(|v| v.as_str()).unwrap_or(""));
                Some((name, kind))
            })
            .collect();
        let found = listed.get(identifier).cloned();
        let mut relations = self.relations.lock().unwrap_or_else(|e| e.into_inner());
        if relations.generation == generation {
            relations.schemas.insert(key, listed);
        }
        Ok(found)
    }
}

/// A SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn json_to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::from(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => Value::from(s.clone()),
        other => Value::from(minijinja::value::Serde(other)),
    }
}

impl Adapter for WarehouseAdapter {
    fn dialect(&self) -> &str {
        self.dialect
    }

    fn execute(&self, sql: &str, fetch: bool) -> Result<Table, AdapterError> {
        if fetch {
            // SQL from a macro (`run_query`) may create or drop relations too.
            let rows = self.query(sql);
            self.forget_relations();
            let rows = rows?;
            Ok(Table {
                column_names: rows.columns.clone(),
                rows: rows
                    .rows
                    .iter()
                    .map(|r| r.iter().map(json_to_value).collect())
                    .collect(),
            })
        } else {
            self.execute_all(&[sql.to_string()])?;
            Ok(Table::default())
        }
    }

    fn get_columns_in_relation(&self, relation: &Relation) -> Result<Vec<Column>, AdapterError> {
        let (Some(schema), Some(name)) = (&relation.schema, &relation.identifier) else {
            return Ok(Vec::new());
        };
        let mut sql = format!(
            "select column_name, data_type, character_maximum_length, numeric_precision, numeric_scale \
             from information_schema.columns where table_schema = {} and table_name = {}",
            literal(schema),
            literal(name)
        );
        if let (Some(db), "duckdb") = (&relation.database, self.dialect) {
            sql.push_str(&format!(" and table_catalog = {}", literal(db)));
        }
        sql.push_str(" order by ordinal_position");
        let rows = self.query(&sql)?;
        Ok(rows
            .rows
            .iter()
            .map(|r| {
                let text = |i: usize| r.get(i).and_then(|v| v.as_str()).unwrap_or("").to_string();
                let int = |i: usize| r.get(i).and_then(|v| v.as_i64());
                let mut column = Column::new(&text(0), &text(1));
                column.char_size = int(2);
                column.numeric_precision = int(3);
                column.numeric_scale = int(4);
                column
            })
            .collect())
    }

    fn get_relation(
        &self,
        database: Option<&str>,
        schema: &str,
        identifier: &str,
    ) -> Result<Option<Relation>, AdapterError> {
        Ok(self
            .relation_kind(database, schema, identifier)?
            .map(|kind| {
                let mut rel = Relation::new(database, Some(schema), identifier);
                rel.kind = Some(kind);
                rel
            }))
    }
}

/// Shared so that compile threads and the runner use the same connection.
pub type SharedAdapter = Arc<WarehouseAdapter>;
