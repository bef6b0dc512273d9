//! Snapshots (type-2 slowly changing dimensions) as dbt does them: `timestamp` and `check`
//! strategies, with `dbt_scd_id`, `dbt_updated_at`, `dbt_valid_from` and `dbt_valid_to`.

use serde_json::{Map, Value as Json};

use super::adapter::WarehouseAdapter;
use super::materialize::{Response, beside, existing_kind};
use crate::jinja::{Adapter, AdapterError, Relation};

fn keys(config: &Map<String, Json>) -> Result<Vec<String>, AdapterError> {
    match config.get("unique_key") {
        Some(Json::String(k)) => Ok(vec![k.clone()]),
        Some(Json::Array(ks)) => Ok(ks
            .iter()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect()),
        _ => Err(AdapterError(
            "snapshot has no unique_key (set unique_key in its config)".to_string(),
        )),
    }
}

fn text<'a>(config: &'a Map<String, Json>, key: &str) -> Option<&'a str> {
    config.get(key).and_then(Json::as_str)
}

/// The snapshot's one point in time, as a literal: every wall-clock time one snapshot run
/// writes (check-strategy versions, closed and deletion rows) is the same instant, as in dbt.
fn snapshot_time(adapter: &WarehouseAdapter) -> Result<String, AdapterError> {
    let rows = adapter.query("select cast(cast(now() as timestamp) as varchar)")?;
    let now = rows
        .rows
        .first()
        .and_then(|r| r.first())
        .and_then(Json::as_str)
        .ok_or_else(|| AdapterError("the warehouse did not say what time it is".into()))?
        .to_string();
    Ok(format!(
        "cast({} as timestamp)",
        super::adapter::literal(&now)
    ))
}

/// Runs one snapshot of `sql` into `rel`.
pub fn snapshot(
    adapter: &WarehouseAdapter,
    rel: &Relation,
    sql: &str,
    config: &Map<String, Json>,
) -> Result<Response, AdapterError> {
    let keys = keys(config)?;
    let strategy = text(config, "strategy").unwrap_or("timestamp");
    let now = snapshot_time(adapter)?;
    let updated_expr = match strategy {
        "timestamp" => text(config, "updated_at")
            .ok_or_else(|| {
                AdapterError(
                    "the timestamp strategy needs updated_at in the snapshot's config".into(),
                )
            })?
            .to_string(),
        "check" => now.clone(),
        other => {
            return Err(AdapterError(format!(
                "unknown snapshot strategy '{other}' (use timestamp or check)"
            )));
        }
    };
    let hard_deletes = text(config, "hard_deletes").unwrap_or("ignore");
    let new_record = hard_deletes == "new_record";
    let invalidate = new_record
        || hard_deletes == "invalidate"
        || config
            .get("invalidate_hard_deletes")
            .and_then(Json::as_bool)
            == Some(true);
    let key_concat = keys
        .iter()
        .map(|k| format!("coalesce(cast({k} as varchar), '')"))
        .collect::<Vec<_>>()
        .join(" || '|' || ");
    // With `hard_deletes: new_record` every row says whether it records a deletion.
    let is_deleted = if new_record {
        ",\n    'False' as dbt_is_deleted"
    } else {
        ""
    };
    let staged = format!(
        "select *,\n    md5({key_concat} || '|' || coalesce(cast({updated_expr} as varchar), '')) as dbt_scd_id,\n    {updated_expr} as dbt_updated_at,\n    {updated_expr} as dbt_valid_from,\n    nullif({updated_expr}, {updated_expr}) as dbt_valid_to{is_deleted}\nfrom (\n{sql}\n) snapshot_query"
    );
    let target = rel.render();
    let mut resp = Response {
        message: "OK".to_string(),
        ..Default::default()
    };
    if existing_kind(adapter, rel)?.is_none() {
        let stmt = format!("create table {target} as (\n{staged}\n)");
        adapter.execute_all(std::slice::from_ref(&stmt))?;
        resp.run_sql.push(stmt);
        return Ok(resp);
    }
    let target_columns = adapter.get_columns_in_relation(rel)?;
    let has_deleted_flag = target_columns
        .iter()
        .any(|c| c.name.eq_ignore_ascii_case("dbt_is_deleted"));
    if new_record && !has_deleted_flag {
        return Err(AdapterError(
            "this snapshot's table has no dbt_is_deleted column, which hard_deletes: new_record needs\nhint: rebuild the snapshot (drop its table) or set hard_deletes to invalidate".into(),
        ));
    }
    let data_columns: Vec<&str> = target_columns
        .iter()
        .map(|c| c.name.as_str())
        .filter(|c| !c.starts_with("dbt_"))
        .collect();
    let join = keys
        .iter()
        .map(|k| format!("src.{k} = cur.{k}"))
        .collect::<Vec<_>>()
        .join(" and ");
    let mut changed = match strategy {
        "timestamp" => "cur.dbt_valid_from < src.dbt_updated_at".to_string(),
        _ => {
            let check: Vec<String> = match config.get("check_cols") {
                Some(Json::Array(cols)) => cols
                    .iter()
                    .filter_map(|c| c.as_str().map(str::to_string))
                    .collect(),
                _ => data_columns.iter().map(|c| format!("\"{c}\"")).collect(),
            };
            let same: Vec<String> = check
                .iter()
                .map(|c| format!("src.{c} is not distinct from cur.{c}"))
                .collect();
            format!("not ({})", same.join(" and "))
        }
    };
    if new_record {
        // A key that comes back after its deletion was recorded is a new version.
        changed = format!("({changed}) or cur.dbt_is_deleted = 'True'");
    }
    let tmp = beside(rel, "__dbt_tmp");
    let first_key = &keys[0];
    let stage = format!(
        "create or replace table {tmp} as (\nwith src as (\n{staged}\n),\ncur as (select * from {target} where dbt_valid_to is null)\nselect 'insert' as dbt_change_type, null as dbt_cur_scd_id, src.* from src left join cur on {join} where cur.{first_key} is null or ({changed})\nunion all\nselect 'update' as dbt_change_type, cur.dbt_scd_id as dbt_cur_scd_id, src.* from src join cur on {join} where {changed}\n)",
        tmp = tmp.render()
    );
    adapter.execute_all(std::slice::from_ref(&stage))?;
    resp.run_sql.push(stage);

    let mut apply = Vec::new();
    // Columns the source gained are added to the snapshot, as dbt does.
    let mut columns: Vec<String> = target_columns.iter().map(|c| c.name.clone()).collect();
    for c in adapter.get_columns_in_relation(&tmp)? {
        let internal = matches!(c.name.as_str(), "dbt_change_type" | "dbt_cur_scd_id");
        if !internal && !columns.iter().any(|t| t.eq_ignore_ascii_case(&c.name)) {
            apply.push(format!(
                "alter table {target} add column \"{}\" {}",
                c.name,
                c.rendered_type()
            ));
            columns.push(c.name.clone());
        }
    }
    let quoted: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
    let cols = quoted.join(", ");
    apply.push(format!(
        "update {target} set dbt_valid_to = s.dbt_valid_from from {tmp} s where s.dbt_change_type = 'update' and {target}.dbt_scd_id = s.dbt_cur_scd_id",
        tmp = tmp.render()
    ));
    if invalidate {
        let gone = keys
            .iter()
            .map(|k| format!("src.{k} = {target}.{k}"))
            .collect::<Vec<_>>()
            .join(" and ");
        let vanished = format!(
            "dbt_valid_to is null and not exists (select 1 from (\n{sql}\n) src where {gone})"
        );
        let not_recorded = if new_record {
            " and dbt_is_deleted <> 'True'"
        } else {
            ""
        };
        if new_record {
            // A deletion is a new current row, a copy of the last version marked deleted.
            let copied: Vec<String> = columns
                .iter()
                .map(|c| match c.as_str() {
                    "dbt_scd_id" => format!(
                        "md5(coalesce(dbt_scd_id, '') || '|' || cast({now} as varchar)) as dbt_scd_id"
                    ),
                    "dbt_updated_at" => format!("{now} as dbt_updated_at"),
                    "dbt_valid_from" => format!("{now} as dbt_valid_from"),
                    "dbt_valid_to" => "dbt_valid_to".to_string(),
                    "dbt_is_deleted" => "'True' as dbt_is_deleted".to_string(),
                    other => format!("\"{other}\""),
                })
                .collect();
            apply.push(format!(
                "insert into {target} ({cols}) select {} from {target} where {vanished}{not_recorded}",
                copied.join(", ")
            ));
        }
        // The last version of a vanished key is closed at the snapshot time (the deletion
        // rows just written are not).
        apply.push(format!(
            "update {target} set dbt_valid_to = {now} where {vanished}{not_recorded}"
        ));
    }
    apply.push(format!(
        "insert into {target} ({cols}) select {cols} from {tmp} where dbt_change_type = 'insert'",
        tmp = tmp.render()
    ));
    apply.push(format!("drop table if exists {}", tmp.render()));
    adapter.execute_all(&apply)?;
    resp.run_sql.extend(apply);
    Ok(resp)
}
