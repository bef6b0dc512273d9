//! Model contracts (`contract: {enforced: true}`) as dbt enforces them: before a table is
//! built, the columns the SQL returns must match the YAML columns by name, number and
//! `data_type` (both sides typed by the warehouse, as dbt compares them), else the model fails
//! with dbt's table of mismatches; then the table is created with the contract's column types
//! and constraints and filled from the SQL.

use serde_json::{Map, Value as Json};

use super::adapter::WarehouseAdapter;
use crate::jinja::adapter::quote_identifier;
use crate::project::Node;

/// Whether the node's config enforces its contract.
pub fn enforced(config: &Map<String, Json>) -> bool {
    config
        .get("contract")
        .and_then(|c| c.get("enforced"))
        .and_then(Json::as_bool)
        == Some(true)
}

/// One column of the table a contract creates.
pub struct ContractColumn {
    pub name: String,
    pub data_type: String,
    /// Column constraints as DDL (`not null`, `unique`, `primary key`, `check (...)`).
    pub constraints: Vec<String>,
}

fn constraint_sql(constraint: &Json) -> Option<String> {
    let kind = constraint.get("type").and_then(Json::as_str)?;
    match kind {
        "not_null" => Some("not null".to_string()),
        "unique" => Some("unique".to_string()),
        "primary_key" => Some("primary key".to_string()),
        "check" => constraint
            .get("expression")
            .and_then(Json::as_str)
            .map(|e| format!("check ({e})")),
        _ => None,
    }
}

fn table(rows: &[[String; 4]]) -> String {
    let header = [
        "column_name",
        "definition_type",
        "contract_type",
        "mismatch_reason",
    ];
    let widths: Vec<usize> = (0..4)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: [&str; 4]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!(" {c:<w$} "))
            .collect();
        format!("|{}|", parts.join("|"))
    };
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    let mut out = vec![line(header), line([&rule[0], &rule[1], &rule[2], &rule[3]])];
    for r in rows {
        out.push(line([&r[0], &r[1], &r[2], &r[3]]));
    }
    out.join("\n")
}

/// The name dbt-postgres compares a column type by: the type family its driver (psycopg2)
/// reads it as, so `text` and `varchar` are the same `STRING`.
fn driver_type(pg_type: &str) -> &str {
    let base = pg_type.split('(').next().unwrap_or(pg_type).trim();
    match base {
        "text" | "character varying" | "character" | "name" | "\"char\"" => "STRING",
        "smallint" | "integer" => "INTEGER",
        "bigint" => "LONGINTEGER",
        "real" | "double precision" => "FLOAT",
        "numeric" => "DECIMAL",
        "boolean" => "BOOLEAN",
        "date" => "DATE",
        "time without time zone" | "time with time zone" => "TIME",
        "timestamp without time zone" => "DATETIME",
        "timestamp with time zone" => "DATETIMETZ",
        "interval" => "INTERVAL",
        _ => pg_type,
    }
}

/// Checks the model's SQL against its contract; returns the columns to create the table with
/// (in the SQL's order), or dbt's contract error.
pub fn check(
    adapter: &WarehouseAdapter,
    node: &Node,
    sql: &str,
) -> Result<Vec<ContractColumn>, String> {
    let declared: Vec<&crate::project::node::Column> = node
        .columns
        .values()
        .filter(|c| c.data_type.is_some())
        .collect();
    if declared.is_empty() {
        return Err(
            "This model has an enforced contract, and its 'columns' specification is missing"
                .to_string(),
        );
    }
    let postgres = crate::jinja::Adapter::dialect(adapter) == "postgres";
    let typed = |sql: &str| -> Result<Vec<(String, String)>, String> {
        let columns = adapter.query_columns(sql).map_err(|e| e.0)?;
        Ok(columns
            .into_iter()
            .map(|(n, t)| {
                let t = if postgres {
                    driver_type(&t).to_string()
                } else {
                    t
                };
                (n, t)
            })
            .collect())
    };
    let from_sql = typed(sql)?;
    let empty_schema: Vec<String> = declared
        .iter()
        .map(|c| {
            format!(
                "cast(null as {}) as {}",
                c.data_type.as_deref().unwrap_or("varchar"),
                quote_identifier(&c.name, '"')
            )
        })
        .collect();
    let from_yaml = typed(&format!("select {}", empty_schema.join(", ")))?;
    let find = |cols: &[(String, String)], name: &str| {
        cols.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, t)| t.clone())
    };
    let mut mismatches: Vec<[String; 4]> = Vec::new();
    for (name, contract_type) in &from_yaml {
        match find(&from_sql, name) {
            None => mismatches.push([
                name.clone(),
                String::new(),
                contract_type.clone(),
                "missing in definition".to_string(),
            ]),
            Some(t) if !t.eq_ignore_ascii_case(contract_type) => mismatches.push([
                name.clone(),
                t,
                contract_type.clone(),
                "data type mismatch".to_string(),
            ]),
            Some(_) => {}
        }
    }
    for (name, t) in &from_sql {
        if find(&from_yaml, name).is_none() {
            mismatches.push([
                name.clone(),
                t.clone(),
                String::new(),
                "missing in contract".to_string(),
            ]);
        }
    }
    if !mismatches.is_empty() {
        return Err(format!(
            "This model has an enforced contract that failed.\nPlease ensure the name, data_type, and number of columns in your contract match the columns in your model's definition.\n\n{}",
            table(&mismatches)
        ));
    }
    Ok(from_sql
        .iter()
        .filter_map(|(name, _)| {
            let c = declared
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(name))?;
            Some(ContractColumn {
                name: c.name.clone(),
                data_type: c.data_type.clone().unwrap_or_default(),
                constraints: c.constraints.iter().filter_map(constraint_sql).collect(),
            })
        })
        .collect())
}
