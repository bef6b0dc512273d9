//! Unit tests as dbt runs them: the tested model is compiled with each `given` input replaced
//! by a fixture CTE (`__dbt__cte__<name>`), the `expect` rows are cast to the types of the
//! model's output, and one query returns both, tagged `actual`/`expected`; the test passes
//! when the two sets of rows are equal (in any order).
//!
//! Fixtures come as `format: dict` (the default; a row's missing columns are NULL, cast to
//! the input relation's column types), `csv` (inline or a `fixture:` file under
//! `<test-path>/fixtures/`) or `sql` (used as written; the only format for ephemeral inputs).

use std::path::Path;

use serde_json::{Map, Value as Json};

use super::adapter::{WarehouseAdapter, literal};
use super::compile::Compiler;
use crate::jinja::adapter::quote_identifier;
use crate::jinja::{Adapter, Relation};
use crate::project::{Node, Project, ResourceType, UniqueId};

/// How a unit test ended.
pub struct UnitOutcome {
    pub passed: bool,
    /// dbt's message on failure: `actual differs from expected:` and the diff.
    pub message: Option<String>,
    /// The query that was run (for `target/`).
    pub sql: String,
}

/// What a `given` or `expect` entry says.
struct Rows {
    format: String,
    /// dict rows, or csv text, or sql text.
    rows: Json,
    fixture: Option<String>,
}

fn rows_of(entry: &Json) -> Rows {
    Rows {
        format: entry
            .get("format")
            .and_then(Json::as_str)
            .unwrap_or("dict")
            .to_string(),
        rows: entry.get("rows").cloned().unwrap_or(Json::Null),
        fixture: entry
            .get("fixture")
            .and_then(Json::as_str)
            .map(str::to_string),
    }
}

/// `ref('a')`, `ref('pkg', 'a')`, `source('s', 't')` → the node it names.
fn input_node(compiler: &Compiler, input: &str, package: &str) -> Result<UniqueId, String> {
    let args = |inner: &str| -> Vec<String> {
        inner
            .split(',')
            .map(|a| a.trim().trim_matches(['\'', '"']).to_string())
            .filter(|a| !a.is_empty())
            .collect()
    };
    let text = input.trim();
    let call = |prefix: &str| {
        text.strip_prefix(prefix)
            .and_then(|r| r.trim_start().strip_prefix('('))
            .and_then(|r| r.trim_end().strip_suffix(')'))
    };
    let found = if let Some(inner) = call("ref") {
        match args(inner).as_slice() {
            [name] => compiler.find_ref(None, name, package),
            [pkg, name, ..] => compiler.find_ref(Some(pkg), name, package),
            _ => None,
        }
    } else if let Some(inner) = call("source") {
        match args(inner).as_slice() {
            [source, table] => compiler.find_source(source, table),
            _ => None,
        }
    } else {
        None
    };
    found.ok_or_else(|| {
        format!("the unit test input {input:?} names no model, seed, snapshot or source")
    })
}

/// A JSON value as a SQL literal (`True`/`False` for booleans, as dbt writes them).
fn value_sql(value: &Json) -> String {
    match value {
        Json::Null => "null".to_string(),
        Json::Bool(true) => "True".to_string(),
        Json::Bool(false) => "False".to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => literal(s),
        other => literal(&other.to_string()),
    }
}

fn fixture_file(project: &Project, name: &str, ext: &str) -> Result<String, String> {
    for dir in &project.settings.test_paths {
        let path = project
            .root
            .join(dir)
            .join("fixtures")
            .join(format!("{name}.{ext}"));
        if let Ok(text) = std::fs::read_to_string(&path) {
            return Ok(text);
        }
    }
    Err(format!(
        "no fixture file '{name}.{ext}' under the test paths' fixtures/ folders"
    ))
}

/// One fixture row: column → value.
type FixtureRow = Map<String, Json>;

/// The rows of a dict or csv entry as `column → value` maps, columns in first-seen order.
fn dict_rows(project: &Project, rows: &Rows) -> Result<(Vec<String>, Vec<FixtureRow>), String> {
    let mut columns: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let note = |k: &str, columns: &mut Vec<String>| {
        if !columns.iter().any(|c| c.eq_ignore_ascii_case(k)) {
            columns.push(k.to_string());
        }
    };
    match rows.format.as_str() {
        "dict" => {
            for row in rows.rows.as_array().into_iter().flatten() {
                let Json::Object(map) = row else {
                    return Err(format!("a dict fixture row is not a mapping: {row}"));
                };
                for k in map.keys() {
                    note(k, &mut columns);
                }
                out.push(map.clone());
            }
        }
        "csv" => {
            let text = match (&rows.fixture, rows.rows.as_str()) {
                (Some(name), _) => fixture_file(project, name, "csv")?,
                (None, Some(text)) => text.to_string(),
                (None, None) => String::new(),
            };
            let table = weir_warehouse::csv_rows(text.trim().as_bytes())
                .map_err(|e| format!("csv fixture: {e}"))?;
            for c in &table.columns {
                note(c.trim(), &mut columns);
            }
            for r in table.rows {
                let map: Map<String, Json> = table
                    .columns
                    .iter()
                    .map(|c| c.trim().to_string())
                    .zip(r)
                    .collect();
                out.push(map);
            }
        }
        other => {
            return Err(format!(
                "unknown fixture format '{other}' (use dict, csv or sql)"
            ));
        }
    }
    Ok((columns, out))
}

fn get_ci<'a>(row: &'a Map<String, Json>, column: &str) -> Option<&'a Json> {
    row.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(column))
        .map(|(_, v)| v)
}

/// `select cast(.. as type) as "c", ...` union all ..., over `columns` with their types
/// (`None`: an untyped literal).
fn rows_sql(
    columns: &[(String, Option<String>)],
    rows: &[Map<String, Json>],
    quote_char: char,
) -> String {
    let select = |row: Option<&Map<String, Json>>| {
        let cells: Vec<String> = columns
            .iter()
            .map(|(name, kind)| {
                let value = row
                    .and_then(|r| get_ci(r, name))
                    .map(value_sql)
                    .unwrap_or_else(|| "null".to_string());
                let value = match kind {
                    Some(t) => format!("cast({value} as {t})"),
                    None => value,
                };
                format!("{value} as {}", quote_identifier(name, quote_char))
            })
            .collect();
        format!("select {}", cells.join(", "))
    };
    if rows.is_empty() {
        return format!("{} limit 0", select(None));
    }
    rows.iter()
        .map(|r| select(Some(r)))
        .collect::<Vec<_>>()
        .join("\nunion all\n")
}

fn sql_rows(project: &Project, rows: &Rows) -> Result<String, String> {
    match (&rows.fixture, rows.rows.as_str()) {
        (Some(name), _) => fixture_file(project, name, "sql"),
        (None, Some(sql)) => Ok(sql.to_string()),
        (None, None) => Err("a sql fixture needs `rows:` with the SQL text".to_string()),
    }
}

/// The column names and types of a query's result.
fn query_columns(
    adapter: &WarehouseAdapter,
    sql: &str,
) -> Result<Vec<(String, Option<String>)>, String> {
    Ok(adapter
        .query_columns(sql)
        .map_err(|e| e.0)?
        .into_iter()
        .map(|(c, t)| (c, Some(t).filter(|t| !t.is_empty())))
        .collect())
}

/// Runs one unit test node.
pub fn run(
    project: &Project,
    compiler: &Compiler,
    adapter: &WarehouseAdapter,
    node: &Node,
) -> Result<UnitOutcome, String> {
    let details = node
        .unit_test
        .as_ref()
        .ok_or_else(|| "the unit test has no definition".to_string())?;
    let model_id = compiler
        .find_ref(None, &details.model, &node.package_name)
        .ok_or_else(|| format!("the unit test's model '{}' does not exist", details.model))?;
    let model = project
        .nodes
        .get(&model_id)
        .filter(|n| n.resource_type == ResourceType::Model)
        .ok_or_else(|| format!("'{}' is not a model", details.model))?;
    let quote_char = if adapter.dialect() == "duckdb" || adapter.dialect() == "postgres" {
        '"'
    } else {
        '`'
    };

    let mut fixtures: Vec<(UniqueId, String, String)> = Vec::new();
    let mut this_fixture = None;
    for entry in details.given.as_array().into_iter().flatten() {
        let input = entry.get("input").and_then(Json::as_str).unwrap_or("");
        let id = if input.trim() == "this" {
            // An incremental model's current table.
            model_id.clone()
        } else {
            input_node(compiler, input, &node.package_name)?
        };
        let input_node = project
            .nodes
            .get(&id)
            .ok_or_else(|| format!("the unit test input {input:?} is not enabled"))?;
        let rows = rows_of(entry);
        let sql = if rows.format == "sql" {
            sql_rows(project, &rows)?
        } else {
            if compiler
                .relations
                .ephemeral
                .get(&id)
                .copied()
                .unwrap_or(false)
            {
                return Err(format!(
                    "the unit test input {input:?} is an ephemeral model: give its rows with `format: sql`"
                ));
            }
            let (given_columns, given) = dict_rows(project, &rows)?;
            let relation: Option<&Relation> = compiler.relations.relation.get(&id);
            let columns: Vec<(String, Option<String>)> = match relation {
                Some(rel) => adapter
                    .get_columns_in_relation(rel)
                    .map_err(|e| e.0)?
                    .into_iter()
                    .map(|c| {
                        let t = c.rendered_type();
                        (c.name, Some(t))
                    })
                    .collect(),
                None => Vec::new(),
            };
            let columns = if columns.is_empty() {
                // The input is not built: its columns are the given ones, untyped.
                given_columns.into_iter().map(|c| (c, None)).collect()
            } else {
                columns
            };
            rows_sql(&columns, &given, quote_char)
        };
        if id == model_id {
            this_fixture = Some(sql);
            continue;
        }
        let name = input_node.name.clone();
        fixtures.push((id, name, sql));
    }
    let actual_sql = compiler
        .compile_with_fixtures(
            model,
            &fixtures,
            this_fixture.as_deref(),
            &details.overrides,
        )
        .map_err(|e| e.0)?;

    let expect = rows_of(&details.expect);
    let (expected_columns, expected_sql) = if expect.format == "sql" {
        let sql = sql_rows(project, &expect)?;
        let columns: Vec<String> = query_columns(adapter, &sql)?
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        (columns, sql)
    } else {
        let (columns, rows) = dict_rows(project, &expect)?;
        let types = query_columns(adapter, &actual_sql)?;
        let typed: Vec<(String, Option<String>)> = columns
            .iter()
            .map(|c| {
                let t = types
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(c))
                    .and_then(|(_, t)| t.clone());
                (c.clone(), t)
            })
            .collect();
        (columns, rows_sql(&typed, &rows, quote_char))
    };
    let cols: Vec<String> = expected_columns
        .iter()
        .map(|c| quote_identifier(c, quote_char))
        .collect();
    let tag = quote_identifier("actual_or_expected", quote_char);
    let sql = format!(
        "-- Build actual result given inputs\nwith dbt_internal_unit_test_actual as (\n  select\n    {cols}, 'actual' as {tag}\n  from (\n{actual_sql}\n  ) _dbt_internal_unit_test_actual\n),\n-- Build expected result\ndbt_internal_unit_test_expected as (\n  select\n    {cols}, 'expected' as {tag}\n  from (\n{expected_sql}\n  ) _dbt_internal_unit_test_expected\n)\n-- Union actual and expected results\nselect * from dbt_internal_unit_test_actual\nunion all\nselect * from dbt_internal_unit_test_expected",
        cols = cols.join(", ")
    );
    let result = adapter.query(&sql).map_err(|e| {
        format!(
            "An error occurred during execution of unit test '{}'. There may be an error in the unit test definition: check the data types.\n {}",
            node.name,
            e.0.trim()
        )
    })?;
    let width = expected_columns.len();
    let mut actual: Vec<Vec<Json>> = Vec::new();
    let mut expected: Vec<Vec<Json>> = Vec::new();
    for row in result.rows {
        let is_actual = row.get(width).and_then(Json::as_str) == Some("actual");
        let values: Vec<Json> = row.into_iter().take(width).collect();
        if is_actual {
            actual.push(values);
        } else {
            expected.push(values);
        }
    }
    let key = |r: &Vec<Json>| serde_json::to_string(r).unwrap_or_default();
    actual.sort_by_key(key);
    expected.sort_by_key(key);
    if actual == expected {
        return Ok(UnitOutcome {
            passed: true,
            message: None,
            sql,
        });
    }
    let diff = render_diff(&expected_columns, &expected, &actual);
    Ok(UnitOutcome {
        passed: false,
        message: Some(format!("\n\nactual differs from expected:\n\n{diff}\n")),
        sql,
    })
}

fn cell_text(v: &Json) -> String {
    match v {
        Json::Null => "NULL".to_string(),
        Json::String(s) => s.clone(),
        Json::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        other => other.to_string(),
    }
}

/// A diff in daff's shape: `@@` header, `→` for a changed row (`expected→actual` in the
/// changed cells), `+++` for a row only in actual, `---` for a row only in expected, and
/// unchanged rows with a blank tag.
fn render_diff(columns: &[String], expected: &[Vec<Json>], actual: &[Vec<Json>]) -> String {
    let mut lines: Vec<(String, Vec<String>)> = Vec::new();
    let mut remaining: Vec<&Vec<Json>> = expected.iter().collect();
    // Exact matches first, so that a changed row pairs only with a row left over.
    let mut exact: Vec<bool> = Vec::new();
    for row in actual {
        let found = remaining.iter().position(|e| *e == row);
        if let Some(i) = found {
            remaining.remove(i);
        }
        exact.push(found.is_some());
    }
    for (row, exact) in actual.iter().zip(exact) {
        if exact {
            lines.push((String::new(), row.iter().map(cell_text).collect()));
            continue;
        }
        // Paired with an expected row of the same first column: a changed row.
        if let Some(i) = remaining
            .iter()
            .position(|e| !e.is_empty() && e.first() == row.first())
        {
            let exp = remaining.remove(i);
            let cells = exp
                .iter()
                .zip(row.iter())
                .map(|(e, a)| {
                    if e == a {
                        cell_text(a)
                    } else {
                        format!("{}→{}", cell_text(e), cell_text(a))
                    }
                })
                .collect();
            lines.push(("→".to_string(), cells));
        } else {
            lines.push(("+++".to_string(), row.iter().map(cell_text).collect()));
        }
    }
    for row in remaining {
        lines.push(("---".to_string(), row.iter().map(cell_text).collect()));
    }
    let mut table: Vec<(String, Vec<String>)> = vec![("@@".to_string(), columns.to_vec())];
    table.extend(lines);
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            table
                .iter()
                .map(|(_, cells)| cells.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let tag_width = table
        .iter()
        .map(|(t, _)| t.chars().count())
        .max()
        .unwrap_or(0);
    table
        .iter()
        .map(|(tag, cells)| {
            let mut line = format!("{tag:<tag_width$}");
            for (i, c) in cells.iter().enumerate() {
                let w = widths.get(i).copied().unwrap_or(0);
                line.push_str(&format!(",{c:<w$}"));
            }
            line.trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where a unit test's SQL is written under `target/compiled/<package>/`: beside its YAML
/// file, in the tested model's folder, as dbt writes it.
pub fn compiled_rel_path(project: &Project, node: &Node) -> std::path::PathBuf {
    let model_dir = node
        .unit_test
        .as_ref()
        .and_then(|d| {
            project
                .nodes
                .values()
                .find(|n| n.resource_type == ResourceType::Model && n.name == d.model)
        })
        .and_then(|m| {
            Path::new(&m.original_file_path)
                .parent()
                .map(Path::to_path_buf)
        })
        .unwrap_or_default();
    Path::new(&node.package_name)
        .join(&node.original_file_path)
        .join(model_dir)
        .join(format!("{}.sql", node.name))
}
