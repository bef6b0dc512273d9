//! The materializations, as dbt-duckdb runs them, written as SQL statements weir sends itself:
//! view and table are built beside the target (`<name>__dbt_tmp`) and swapped in, in one
//! transaction, so a model that fails leaves the previous relation in place.

use serde_json::{Map, Value as Json};

use super::adapter::WarehouseAdapter;
use crate::jinja::{AdapterError, Relation};

/// The relation next to `rel` named `<identifier><suffix>`.
pub fn beside(rel: &Relation, suffix: &str) -> Relation {
    let mut other = rel.clone();
    other.identifier = Some(format!(
        "{}{suffix}",
        rel.identifier.clone().unwrap_or_default()
    ));
    other
}

fn ident(rel: &Relation) -> String {
    rel.identifier.clone().unwrap_or_default()
}

fn drop_sql(rel: &Relation, kind: &str) -> String {
    let kind = if kind == "view" { "view" } else { "table" };
    format!("drop {kind} if exists {} cascade", rel.render())
}

/// What a materialization reports (dbt's `adapter_response`).
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub message: String,
    pub rows_affected: Option<i64>,
    /// The SQL that was run (for `target/run/`).
    pub run_sql: Vec<String>,
}

pub fn existing_kind(
    adapter: &WarehouseAdapter,
    rel: &Relation,
) -> Result<Option<String>, AdapterError> {
    adapter.relation_kind(
        rel.database.as_deref(),
        rel.schema_or_default(),
        &ident(rel),
    )
}

fn run(
    adapter: &WarehouseAdapter,
    statements: Vec<String>,
    resp: &mut Response,
) -> Result<(), AdapterError> {
    adapter.execute_all(&statements)?;
    resp.run_sql.extend(statements);
    Ok(())
}

/// Builds `sql` as `kind` (`view` or `table`) beside `rel`, then swaps it in.
pub fn build_and_swap(
    adapter: &WarehouseAdapter,
    rel: &Relation,
    sql: &str,
    kind: &str,
) -> Result<Response, AdapterError> {
    let mut resp = Response {
        message: "OK".to_string(),
        ..Default::default()
    };
    let tmp = beside(rel, "__dbt_tmp");
    let create = vec![format!("create {kind} {} as (\n{sql}\n)", tmp.render())];
    build_beside(adapter, rel, &tmp, create, kind, &mut resp)?;
    Ok(resp)
}

/// Builds a table with the columns (types, constraints) of an enforced contract beside
/// `rel`, fills it from `sql`, then swaps it in.
pub fn build_contract_table(
    adapter: &WarehouseAdapter,
    rel: &Relation,
    sql: &str,
    columns: &[super::contract::ContractColumn],
) -> Result<Response, AdapterError> {
    let mut resp = Response {
        message: "OK".to_string(),
        ..Default::default()
    };
    let tmp = beside(rel, "__dbt_tmp");
    let q = |name: &str| crate::jinja::adapter::quote_identifier(name, rel.quote_char);
    let defs: Vec<String> = columns
        .iter()
        .map(|c| {
            let mut def = format!("{} {}", q(&c.name), c.data_type);
            for constraint in &c.constraints {
                def.push(' ');
                def.push_str(constraint);
            }
            def
        })
        .collect();
    let names: Vec<String> = columns.iter().map(|c| q(&c.name)).collect();
    let names = names.join(", ");
    let create = vec![
        format!(
            "create table {} (\n    {}\n)",
            tmp.render(),
            defs.join(",\n    ")
        ),
        format!(
            "insert into {} ({names})\nselect {names} from (\n{sql}\n) as model_subq",
            tmp.render()
        ),
    ];
    build_beside(adapter, rel, &tmp, create, "table", &mut resp)?;
    Ok(resp)
}

/// Runs `create` (which builds `tmp`) after dropping a stale `tmp`, then swaps `tmp` in
/// for `rel`, all in one transaction as dbt's view and table materializations do: a model
/// that fails leaves the previous relation in place, and the warehouse commits once.
fn build_beside(
    adapter: &WarehouseAdapter,
    rel: &Relation,
    tmp: &Relation,
    create: Vec<String>,
    kind: &str,
    resp: &mut Response,
) -> Result<(), AdapterError> {
    let mut statements = Vec::new();
    if let Some(k) = existing_kind(adapter, tmp)? {
        statements.push(drop_sql(tmp, &k));
    }
    statements.extend(create);
    if let Some(k) = existing_kind(adapter, rel)? {
        statements.push(drop_sql(rel, &k));
    }
    statements.push(format!(
        "alter {kind} {} rename to {}",
        tmp.render(),
        crate::jinja::adapter::quote_identifier(&ident(rel), rel.quote_char)
    ));
    adapter.execute_known(&statements, &[(tmp, None), (rel, Some(kind))])?;
    resp.run_sql.extend(statements);
    Ok(())
}

fn unique_keys(config: &Map<String, Json>) -> Vec<String> {
    match config.get("unique_key") {
        Some(Json::String(k)) => vec![k.clone()],
        Some(Json::Array(ks)) => ks
            .iter()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// dbt's incremental materialization: a full build when the target is missing or on
/// `--full-refresh` (with the columns of an enforced contract when given), else the new rows are staged in `<name>__dbt_tmp` and applied with the
/// configured strategy (`append`, `delete+insert`, `merge`).
pub fn incremental(
    adapter: &WarehouseAdapter,
    rel: &Relation,
    sql: &str,
    config: &Map<String, Json>,
    full_refresh: bool,
    contract: Option<&[super::contract::ContractColumn]>,
) -> Result<Response, AdapterError> {
    let existing = existing_kind(adapter, rel)?;
    if full_refresh || existing.as_deref() != Some("table") {
        return match contract {
            Some(columns) => build_contract_table(adapter, rel, sql, columns),
            None => build_and_swap(adapter, rel, sql, "table"),
        };
    }
    let mut resp = Response {
        message: "OK".to_string(),
        ..Default::default()
    };
    let tmp = beside(rel, "__dbt_tmp");
    let mut stage = Vec::new();
    if let Some(k) = existing_kind(adapter, &tmp)? {
        stage.push(drop_sql(&tmp, &k));
    }
    stage.push(format!("create table {} as (\n{sql}\n)", tmp.render()));
    run(adapter, stage, &mut resp)?;
    let columns = match sync_schema(adapter, rel, &tmp, config, &mut resp) {
        Ok(columns) => columns,
        Err(e) => {
            // The staged rows go, as dbt leaves no `__dbt_tmp` relation behind.
            let _ = adapter.execute_all(&[drop_sql(&tmp, "table")]);
            return Err(e);
        }
    };
    let cols = columns.join(", ");
    let keys = unique_keys(config);
    let strategy = config
        .get("incremental_strategy")
        .and_then(Json::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| {
            if keys.is_empty() {
                "append".to_string()
            } else {
                "delete+insert".to_string()
            }
        });
    let target = rel.render();
    let source = tmp.render();
    let mut apply = Vec::new();
    match strategy.as_str() {
        "append" => {}
        "delete+insert" | "merge" if !keys.is_empty() => {
            // merge on unique keys leaves the same rows as deleting the matches and
            // inserting every staged row.
            if keys.len() == 1 {
                apply.push(format!(
                    "delete from {target} where ({key}) in (select ({key}) from {source})",
                    key = keys[0]
                ));
            } else {
                let on: Vec<String> = keys
                    .iter()
                    .map(|k| format!("{target}.{k} = DBT_INCREMENTAL_SOURCE.{k}"))
                    .collect();
                apply.push(format!(
                    "delete from {target} using {source} as DBT_INCREMENTAL_SOURCE where {}",
                    on.join(" and ")
                ));
            }
        }
        "delete+insert" | "merge" => {
            return Err(AdapterError(format!(
                "incremental strategy '{strategy}' needs a unique_key (set unique_key in the model's config)"
            )));
        }
        other => {
            return Err(AdapterError(format!(
                "unknown incremental strategy '{other}' (use append, delete+insert or merge)"
            )));
        }
    }
    apply.push(format!(
        "insert into {target} ({cols}) select {cols} from {source}"
    ));
    apply.push(drop_sql(&tmp, "table"));
    run(adapter, apply, &mut resp)?;
    Ok(resp)
}

/// dbt's `on_schema_change`: `ignore` (default), `fail`, `append_new_columns`,
/// `sync_all_columns`; returns the quoted columns to insert.
fn sync_schema(
    adapter: &WarehouseAdapter,
    rel: &Relation,
    tmp: &Relation,
    config: &Map<String, Json>,
    resp: &mut Response,
) -> Result<Vec<String>, AdapterError> {
    use crate::jinja::Adapter;
    let target = adapter.get_columns_in_relation(rel)?;
    let staged = adapter.get_columns_in_relation(tmp)?;
    let has = |cols: &[crate::jinja::Column], name: &str| {
        cols.iter().any(|c| c.name.eq_ignore_ascii_case(name))
    };
    let added: Vec<&crate::jinja::Column> =
        staged.iter().filter(|c| !has(&target, &c.name)).collect();
    let removed: Vec<&crate::jinja::Column> =
        target.iter().filter(|c| !has(&staged, &c.name)).collect();
    let mode = config
        .get("on_schema_change")
        .and_then(Json::as_str)
        .unwrap_or("ignore");
    let q = |name: &str| crate::jinja::adapter::quote_identifier(name, rel.quote_char);
    let changed = !added.is_empty() || !removed.is_empty();
    let mut keep: Vec<String> = target
        .iter()
        .filter(|c| has(&staged, &c.name))
        .map(|c| q(&c.name))
        .collect();
    match mode {
        // dbt inserts the target's columns: a column the model no longer selects fails.
        "ignore" => keep = target.iter().map(|c| q(&c.name)).collect(),
        "fail" if changed => {
            return Err(AdapterError(format!(
                "the source and target schemas of this incremental model are out of sync (new columns: [{}], removed columns: [{}]); on_schema_change is 'fail'\nhint: run with --full-refresh, or set on_schema_change to append_new_columns or sync_all_columns",
                added
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                removed
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        "fail" => {}
        "append_new_columns" | "sync_all_columns" => {
            let mut alter = Vec::new();
            for c in &added {
                alter.push(format!(
                    "alter table {} add column {} {}",
                    rel.render(),
                    q(&c.name),
                    c.rendered_type()
                ));
                keep.push(q(&c.name));
            }
            if mode == "sync_all_columns" {
                for c in &removed {
                    alter.push(format!(
                        "alter table {} drop column {}",
                        rel.render(),
                        q(&c.name)
                    ));
                }
            }
            if !alter.is_empty() {
                run(adapter, alter, resp)?;
            }
        }
        other => {
            return Err(AdapterError(format!(
                "unknown on_schema_change '{other}' (use ignore, fail, append_new_columns or sync_all_columns)"
            )));
        }
    }
    Ok(keep)
}
