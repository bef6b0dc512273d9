//! `target/catalog.json` (dbt's catalog v1): every relation of the project's models, seeds,
//! snapshots and sources that exists in the warehouse, with its columns' types and positions
//! from the information schema.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value as Json, json};

use crate::project::{Project, ResourceType};
use crate::run::adapter::literal;
use crate::run::compile::materialized;
use crate::session::Session;

/// One relation the warehouse describes.
#[derive(Debug, Clone, Default)]
struct Table {
    database: String,
    schema: String,
    name: String,
    kind: String,
    columns: Vec<(String, i64, String)>,
}

fn key(database: &str, schema: &str, name: &str) -> (String, String, String) {
    (
        database.to_lowercase(),
        schema.to_lowercase(),
        name.to_lowercase(),
    )
}

fn text(v: Option<&Json>) -> String {
    match v {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Reads the information schema of the project's schemas.
fn warehouse_tables(session: &Session, schemas: &BTreeSet<String>) -> Result<Vec<Table>, String> {
    if schemas.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = schemas.iter().map(|s| literal(&s.to_lowercase())).collect();
    let sql = format!(
        "select c.table_catalog, c.table_schema, c.table_name, t.table_type, c.column_name, \
         c.ordinal_position, c.data_type \
         from information_schema.columns c \
         join information_schema.tables t on t.table_catalog = c.table_catalog \
         and t.table_schema = c.table_schema and t.table_name = c.table_name \
         where lower(c.table_schema) in ({}) \
         order by c.table_catalog, c.table_schema, c.table_name, c.ordinal_position",
        list.join(", ")
    );
    let rows = session.query(&sql)?;
    let mut tables: Vec<Table> = Vec::new();
    for row in &rows.rows {
        let (database, schema, name) = (text(row.first()), text(row.get(1)), text(row.get(2)));
        let is_same = tables
            .last()
            .is_some_and(|t| t.database == database && t.schema == schema && t.name == name);
        if !is_same {
            let kind = text(row.get(3)).to_uppercase();
            tables.push(Table {
                database,
                schema,
                name,
                kind: if kind.contains("VIEW") {
                    "VIEW".into()
                } else {
                    "BASE TABLE".into()
                },
                columns: Vec::new(),
            });
        }
        let index = row
            .get(5)
            .and_then(|v| {
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(0);
        if let Some(table) = tables.last_mut() {
            table
                .columns
                .push((text(row.get(4)), index, text(row.get(6))));
        }
    }
    Ok(tables)
}

fn entry(unique_id: &str, table: &Table) -> Json {
    let mut columns = Map::new();
    for (name, index, kind) in &table.columns {
        columns.insert(
            name.clone(),
            json!({"type": kind, "index": index, "name": name, "comment": null}),
        );
    }
    json!({
        "metadata": {
            "type": table.kind,
            "schema": table.schema,
            "name": table.name,
            "database": table.database,
            "comment": null,
            "owner": null,
        },
        "columns": columns,
        "stats": {
            "has_stats": {
                "id": "has_stats",
                "label": "Has Stats?",
                "value": false,
                "include": false,
                "description": "Indicates whether there are statistics for this table",
            }
        },
        "unique_id": unique_id,
    })
}

/// The catalog of `project` as the warehouse of `session` holds it.
pub fn catalog_json(project: &Project, session: &Session, generated_at: &str) -> Json {
    // The relation of every node that has one in the warehouse, by (database, schema, name).
    let mut wanted: HashMap<(String, String, String), (String, bool)> = HashMap::new();
    let mut schemas = BTreeSet::new();
    let default_db = session
        .target()
        .get("database")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    for node in project.nodes.values() {
        let is_source = node.resource_type == ResourceType::Source;
        let has_relation =
            is_source || (node.resource_type.is_refable() && materialized(node) != "ephemeral");
        if !has_relation {
            continue;
        }
        let Some(schema) = &node.schema else {
            continue;
        };
        let name = match &node.source {
            Some(s) => s.identifier.clone(),
            None => node.alias.clone().unwrap_or_else(|| node.name.clone()),
        };
        let database = node.database.clone().unwrap_or_else(|| default_db.clone());
        schemas.insert(schema.clone());
        wanted.insert(
            key(&database, schema, &name),
            (node.unique_id.clone(), is_source),
        );
    }
    let mut nodes = BTreeMap::new();
    let mut sources = BTreeMap::new();
    let mut errors = Vec::new();
    match warehouse_tables(session, &schemas) {
        Ok(tables) => {
            for table in &tables {
                let Some((id, is_source)) =
                    wanted.get(&key(&table.database, &table.schema, &table.name))
                else {
                    continue;
                };
                let target = if *is_source { &mut sources } else { &mut nodes };
                target.insert(id.clone(), entry(id, table));
            }
        }
        Err(e) => errors.push(Json::String(e)),
    }
    json!({
        "metadata": crate::run::artifacts::artifact_metadata("catalog/v1", generated_at),
        "nodes": nodes,
        "sources": sources,
        "errors": if errors.is_empty() { Json::Null } else { Json::Array(errors) },
    })
}
