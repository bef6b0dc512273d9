//! Task instances of a run (list with `~` wildcards, get, patch state), their logs by try, and
//! their XComs.

use crate::ApiState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Body, Path, Query};
use crate::model::*;
use crate::page::page;
use axum::Json;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Map;
use utoipa::IntoParams;
use weir_core::{Dag, TaskState};
use weir_service::ClearRequest;
use weir_store::{RunRow, TiRow};

/// A stable UUID-shaped id for a task instance (Airflow's ids are UUIDs).
fn ti_uuid(id: i64) -> String {
    format!(
        "00000000-0000-4000-8000-{:012x}",
        id as u64 & 0xffff_ffff_ffff
    )
}

pub(crate) fn ti_response(dag: &Dag, run: &RunRow, ti: &TiRow) -> TaskInstanceResponse {
    let task = dag.task(&ti.task_id);
    TaskInstanceResponse {
        id: ti_uuid(ti.id),
        task_id: ti.task_id.clone(),
        dag_id: ti.dag_id.clone(),
        dag_run_id: ti.run_id.clone(),
        map_index: ti.map_index,
        logical_date: Some(iso(run.logical_date)),
        run_after: iso(run.data_interval_end.max(run.logical_date)),
        start_date: iso_opt(ti.start_date),
        end_date: iso_opt(ti.end_date),
        duration: match (ti.start_date, ti.end_date) {
            (Some(s), Some(e)) => Some((e - s) as f64 / 1e6),
            _ => None,
        },
        state: (ti.state != TaskState::None).then(|| ti.state.as_str().to_string()),
        try_number: ti.try_number,
        max_tries: ti.max_tries,
        task_display_name: ti.task_id.clone(),
        dag_display_name: ti.dag_id.clone(),
        hostname: ti.worker.clone(),
        unixname: None,
        pool: ti.pool.clone(),
        pool_slots: ti.pool_slots,
        queue: Some(ti.queue.clone()),
        priority_weight: Some(ti.priority_weight),
        operator: task.map(|t| t.task_type.clone()),
        operator_name: task.map(|t| t.task_type.clone()),
        queued_when: iso_opt(ti.queued_at),
        scheduled_when: None,
        pid: ti.pid,
        executor: Some("LocalExecutor".into()),
        executor_config: "{}".into(),
        // Why weir decided what it did (a branch's choice, a short circuit), as a note.
        note: ti.reason.clone(),
        rendered_map_index: (ti.map_index >= 0).then(|| ti.map_index.to_string()),
        rendered_fields: Map::new(),
        dag_version: None,
        // A waiting sensor's wait, in the shape of Airflow's TriggerResponse.
        trigger: ti
            .sensor
            .as_deref()
            .filter(|_| ti.state == TaskState::Deferred)
            .map(|sensor| {
                let record: serde_json::Value = serde_json::from_str(sensor).unwrap_or_default();
                let kind = record["wait"]["condition"]["kind"]
                    .as_str()
                    .unwrap_or("wait");
                serde_json::json!({
                    "id": ti.id,
                    "classpath": format!("weir.sensors.{kind}"),
                    "kwargs": sensor,
                    "created_date": iso_opt(ti.end_date).or_else(|| iso_opt(ti.start_date)),
                    "triggerer_id": null,
                })
            }),
        triggerer_job: None,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListTisParams {
    pub limit: Option<usize>,
    pub offset: Option<usize>,
    /// `task_id`, `-start_date`, `map_index`, ...
    #[serde(default)]
    pub order_by: Vec<String>,
    #[serde(default)]
    pub state: Vec<String>,
    #[serde(default)]
    pub task_id: Option<String>,
    #[serde(default)]
    pub pool: Vec<String>,
    #[serde(default)]
    pub queue: Vec<String>,
}

/// Task instances of a run; `~` as the DAG id or the run id means every one.
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances", tag = "TaskInstance",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ListTisParams),
    responses((status = 200, body = TaskInstanceCollectionResponse), (status = 404)))]
pub async fn list_task_instances(
    State(state): State<ApiState>,
    Path((dag_id, run_id)): Path<(String, String)>,
    Query(q): Query<ListTisParams>,
) -> ApiResult<Json<TaskInstanceCollectionResponse>> {
    let dag_rows = if dag_id == "~" {
        state.store().list_dags().await?
    } else {
        vec![state.dag(&dag_id).await?.0]
    };
    let mut out = Vec::new();
    for row in &dag_rows {
        let dag = state.parsed(row).await?;
        let runs = if run_id == "~" {
            state.store().list_runs(&row.dag_id, i64::MAX).await?
        } else {
            match state.store().get_run(&row.dag_id, &run_id).await? {
                Some(r) => vec![r],
                None if dag_id == "~" => continue,
                None => return Err(state.run(&row.dag_id, &run_id).await.unwrap_err()),
            }
        };
        for run in &runs {
            for ti in state.store().task_instances(run.id).await? {
                if !q.state.is_empty() && !q.state.iter().any(|s| s == ti.state.as_str()) {
                    continue;
                }
                if q.task_id.as_ref().is_some_and(|t| *t != ti.task_id)
                    || (!q.pool.is_empty() && !q.pool.contains(&ti.pool))
                    || (!q.queue.is_empty() && !q.queue.contains(&ti.queue))
                {
                    continue;
                }
                out.push(ti_response(&dag, run, &ti));
            }
        }
    }
    let (task_instances, total_entries) = page(
        out,
        q.limit,
        q.offset,
        &q.order_by,
        state.config().max_page_limit,
    )?;
    Ok(Json(TaskInstanceCollectionResponse {
        task_instances,
        total_entries,
    }))
}

impl ApiState {
    async fn ti(
        &self,
        dag_id: &str,
        run_id: &str,
        task_id: &str,
        map_index: i64,
    ) -> ApiResult<(std::sync::Arc<Dag>, RunRow, TiRow)> {
        let (_, dag) = self.dag(dag_id).await?;
        let run = self.run(dag_id, run_id).await?;
        let ti = self
            .store()
            .task_instances(run.id)
            .await?
            .into_iter()
            .find(|t| t.task_id == task_id && t.map_index == map_index)
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "The Task Instance with dag_id: `{dag_id}`, run_id: `{run_id}`, task_id: `{task_id}` and map_index: `{map_index}` was not found"
                ))
            })?;
        Ok((dag, run, ti))
    }
}

/// One task instance (unmapped: map index -1).
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}", tag = "TaskInstance",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, body = TaskInstanceResponse), (status = 404)))]
pub async fn get_task_instance(
    State(state): State<ApiState>,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
) -> ApiResult<Json<TaskInstanceResponse>> {
    let (dag, run, ti) = state.ti(&dag_id, &run_id, &task_id, -1).await?;
    Ok(Json(ti_response(&dag, &run, &ti)))
}

/// One item of a mapped task.
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}", tag = "TaskInstance",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ("task_id" = String, Path), ("map_index" = i64, Path)),
    responses((status = 200, body = TaskInstanceResponse), (status = 404)))]
pub async fn get_mapped_task_instance(
    State(state): State<ApiState>,
    Path((dag_id, run_id, task_id, map_index)): Path<(String, String, String, i64)>,
) -> ApiResult<Json<TaskInstanceResponse>> {
    let (dag, run, ti) = state.ti(&dag_id, &run_id, &task_id, map_index).await?;
    Ok(Json(ti_response(&dag, &run, &ti)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MapIndexParam {
    pub map_index: Option<i64>,
}

/// Mark a task instance `success` or `failed` (with its upstream or downstream when asked).
#[utoipa::path(patch, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}", tag = "TaskInstance",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ("task_id" = String, Path), MapIndexParam),
    request_body = PatchTaskInstanceBody,
    responses((status = 200, body = TaskInstanceCollectionResponse), (status = 400), (status = 404)))]
pub async fn patch_task_instance(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
    Query(q): Query<MapIndexParam>,
    Body(body): Body<PatchTaskInstanceBody>,
) -> ApiResult<Json<TaskInstanceCollectionResponse>> {
    let (dag, run, _) = state
        .ti(&dag_id, &run_id, &task_id, q.map_index.unwrap_or(-1))
        .await?;
    let to = match body.new_state.as_deref() {
        Some("success") => TaskState::Success,
        Some("failed") => TaskState::Failed,
        None => {
            return Err(ApiError::bad_request("Nothing to change: give new_state"));
        }
        Some(other) => {
            return Err(ApiError::validation(
                &["body", "new_state"],
                "enum",
                format!("Input should be 'success' or 'failed', not '{other}'"),
            ));
        }
    };
    let request = ClearRequest {
        task_regex: Some(format!("^{}$", regex_escape(&task_id))),
        run_ids: vec![run_id.clone()],
        downstream: body.include_downstream,
        upstream: body.include_upstream,
        ..ClearRequest::default()
    };
    let marked = state
        .services()
        .mark(&caller.actor(), &dag, &request, to)
        .await?;
    let fresh = state.store().task_instances(run.id).await?;
    let tis: Vec<TaskInstanceResponse> = fresh
        .iter()
        .filter(|t| marked.marked.iter().any(|m| m.id == t.id))
        .map(|t| ti_response(&dag, &run, t))
        .collect();
    let total_entries = tis.len() as i64;
    Ok(Json(TaskInstanceCollectionResponse {
        task_instances: tis,
        total_entries,
    }))
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

// `full_content` and `token` are accepted for Airflow's clients: weir always returns the whole log.
#[allow(dead_code)]
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogParams {
    /// Return the whole log (weir always does; accepted for Airflow's clients).
    pub full_content: Option<bool>,
    pub map_index: Option<i64>,
    pub token: Option<String>,
}

/// The log of one try of a task instance: JSON lines, or plain text with `Accept: text/plain`.
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}", tag = "TaskInstance",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ("task_id" = String, Path), ("try_number" = i64, Path), LogParams),
    responses((status = 200, body = TaskInstancesLogResponse), (status = 404)))]
pub async fn get_log(
    State(state): State<ApiState>,
    Path((dag_id, run_id, task_id, try_number)): Path<(String, String, String, i64)>,
    Query(q): Query<LogParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let map_index = q.map_index.unwrap_or(-1);
    let (_, _, ti) = state.ti(&dag_id, &run_id, &task_id, map_index).await?;
    if try_number < 1 || try_number > ti.try_number.max(1) {
        return Err(ApiError::not_found(format!(
            "TaskInstance {task_id} has no try {try_number} (it has {})",
            ti.try_number
        )));
    }
    let path = weir_core::log_path(
        &state.config().log_dir,
        &dag_id,
        &run_id,
        &task_id,
        map_index,
        try_number,
    );
    let text = match tokio::fs::read_to_string(&path).await {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read the log of try {try_number}: {e}"),
            ));
        }
    };
    let plain = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.starts_with("text/plain"));
    if plain {
        return Ok((
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            )],
            text,
        )
            .into_response());
    }
    Ok(Json(TaskInstancesLogResponse {
        content: text.lines().map(String::from).collect(),
        continuation_token: None,
    })
    .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListXcomParams {
    pub limit: Option<usize>,
    pub offset: Option<usize>,
    pub map_index: Option<i64>,
    pub xcom_key: Option<String>,
}

fn xcom_entry(
    run: &RunRow,
    ti: Option<&TiRow>,
    task_id: &str,
    map_index: i64,
    key: &str,
) -> XComResponse {
    XComResponse {
        key: key.to_string(),
        timestamp: iso(ti.and_then(|t| t.end_date).unwrap_or(run.queued_at)),
        logical_date: Some(iso(run.logical_date)),
        map_index,
        task_id: task_id.to_string(),
        dag_id: run.dag_id.clone(),
        run_id: run.run_id.clone(),
        dag_display_name: run.dag_id.clone(),
        task_display_name: task_id.to_string(),
        run_after: iso(run.data_interval_end.max(run.logical_date)),
    }
}

/// The XComs a task instance pushed (`~` as the task id: every task of the run).
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries", tag = "XCom",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ("task_id" = String, Path), ListXcomParams),
    responses((status = 200, body = XComCollectionResponse), (status = 404)))]
pub async fn list_xcoms(
    State(state): State<ApiState>,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
    Query(q): Query<ListXcomParams>,
) -> ApiResult<Json<XComCollectionResponse>> {
    state.dag(&dag_id).await?;
    let run = state.run(&dag_id, &run_id).await?;
    let tis = state.store().task_instances(run.id).await?;
    let entries: Vec<XComResponse> = state
        .store()
        .xcoms(run.id)
        .await?
        .into_iter()
        .filter(|(t, m, k, _)| {
            (task_id == "~" || *t == task_id)
                && q.map_index.is_none_or(|mi| mi == *m)
                && q.xcom_key.as_ref().is_none_or(|key| key == k)
        })
        .map(|(t, m, k, _)| {
            let ti = tis.iter().find(|x| x.task_id == t && x.map_index == m);
            xcom_entry(&run, ti, &t, m, &k)
        })
        .collect();
    let (xcom_entries, total_entries) = page(
        entries,
        q.limit,
        q.offset,
        &[],
        state.config().max_page_limit,
    )?;
    Ok(Json(XComCollectionResponse {
        xcom_entries,
        total_entries,
    }))
}

/// One XCom with its value.
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}", tag = "XCom",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ("task_id" = String, Path), ("xcom_key" = String, Path), MapIndexParam),
    responses((status = 200, body = XComResponseNative), (status = 404)))]
pub async fn get_xcom(
    State(state): State<ApiState>,
    Path((dag_id, run_id, task_id, key)): Path<(String, String, String, String)>,
    Query(q): Query<MapIndexParam>,
) -> ApiResult<Json<XComResponseNative>> {
    let map_index = q.map_index.unwrap_or(-1);
    let (_, run, ti) = state.ti(&dag_id, &run_id, &task_id, map_index).await?;
    let value = state
        .store()
        .xcoms(run.id)
        .await?
        .into_iter()
        .find(|(t, m, k, _)| *t == task_id && *m == map_index && *k == key)
        .map(|(_, _, _, v)| v)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "XCom entry with key: `{key}` not found for task `{task_id}` of run `{run_id}`"
            ))
        })?;
    Ok(Json(XComResponseNative {
        entry: xcom_entry(&run, Some(&ti), &task_id, map_index, &key),
        value,
    }))
}
