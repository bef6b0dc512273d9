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

/// Runs one snapshot of `sql` into `rel`.
pub fn snapshot(
    adapter: &WarehouseAdapter,
    rel: &Relation,
    sql: &str,
    config: &Map<String, Json>,
) -> Result<Response, AdapterError> {
    let keys = keys(config)?;
    let strategy = text(config, "strategy").unwrap_or("timestamp");
    let updated_expr = match strategy {
        "timestamp" => text(config, "updated_at")
            .ok_or_else(|| {
                AdapterError(
                    "the timestamp strategy needs updated_at in the snapshot's config".into(),
                )
            })?
            .to_string(),
        "check" => "cast(now() as timestamp)".to_string(),
        other => {
            return Err(AdapterError(format!(
                "unknown snapshot strategy '{other}' (use timestamp or check)"
            )));
        }
    };
    let key_concat = keys
        .iter()
        .map(|k| format!("coalesce(cast({k} as varchar), '')"))
        .collect::<Vec<_>>()
        .join(" || '|' || ");
    let staged = format!(
        "select *,\n    md5({key_concat} || '|' || coalesce(cast({updated_expr} as varchar), '')) as dbt_scd_id,\n    {updated_expr} as dbt_updated_at,\n    {updated_expr} as dbt_valid_from,\n    nullif({updated_expr}, {updated_expr}) as dbt_valid_to\nfrom (\n{sql}\n) snapshot_query"
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
    let columns: Vec<String> = adapter
        .get_columns_in_relation(rel)?
        .into_iter()
        .map(|c| c.name)
        .collect();
    let data_columns: Vec<&String> = columns.iter().filter(|c| !c.starts_with("dbt_")).collect();
    let join = keys
        .iter()
        .map(|k| format!("src.{k} = cur.{k}"))
        .collect::<Vec<_>>()
        .join(" and ");
    let changed = match strategy {
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
    let tmp = beside(rel, "__dbt_tmp");
    let first_key = &keys[0];
    let stage = format!(
        "create or replace table {tmp} as (\nwith src as (\n{staged}\n),\ncur as (select * from {target} where dbt_valid_to is null)\nselect 'insert' as dbt_change_type, null as dbt_cur_scd_id, src.* from src left join cur on {join} where cur.{first_key} is null or ({changed})\nunion all\nselect 'update' as dbt_change_type, cur.dbt_scd_id as dbt_cur_scd_id, src.* from src join cur on {join} where {changed}\n)",
        tmp = tmp.render()
    );
    let quoted: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
    let cols = quoted.join(", ");
    let apply = vec![
        format!(
            "update {target} set dbt_valid_to = s.dbt_valid_from from {tmp} s where s.dbt_change_type = 'update' and {target}.dbt_scd_id = s.dbt_cur_scd_id",
            tmp = tmp.render()
        ),
        format!(
            "insert into {target} ({cols}) select {cols} from {tmp} where dbt_change_type = 'insert'",
            tmp = tmp.render()
        ),
        format!("drop table if exists {}", tmp.render()),
    ];
    let mut apply = apply;
    let invalidate = config
        .get("invalidate_hard_deletes")
        .and_then(Json::as_bool)
        == Some(true)
        || text(config, "hard_deletes") == Some("invalidate");
    if invalidate {
        // Rows whose key left the source are closed at the snapshot time.
        let gone = keys
            .iter()
            .map(|k| format!("src.{k} = {target}.{k}"))
            .collect::<Vec<_>>()
            .join(" and ");
        apply.insert(
            0,
            format!(
                "update {target} set dbt_valid_to = cast(now() as timestamp) where dbt_valid_to is null and not exists (select 1 from (\n{sql}\n) src where {gone})"
            ),
        );
    }
    adapter.execute_all(std::slice::from_ref(&stage))?;
    adapter.execute_all(&apply)?;
    resp.run_sql.push(stage);
    resp.run_sql.extend(apply);
    Ok(resp)
}
