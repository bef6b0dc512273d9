//! `/dags/{dag_id}/dagRuns`: trigger, list (`~` for every DAG), get, patch state, clear.

use crate::ApiState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Body, Path, Query};
use crate::model::*;
use crate::page::page;
use axum::Json;
use axum::extract::{Extension, State};
use serde::Deserialize;
use utoipa::IntoParams;
use weir_core::{Dag, RunState, RunType, TaskState};
use weir_service::ClearRequest;
use weir_store::{DagRow, RunRow};

/// Parses an instant from a request; a 422 naming the field when it is not one.
pub(crate) fn instant(field: &str, text: &str) -> ApiResult<jiff::Timestamp> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    // A date or a civil datetime without offset means UTC, as Airflow reads it.
    if let Ok(dt) = text.parse::<jiff::civil::DateTime>()
        && let Ok(z) = dt.to_zoned(jiff::tz::TimeZone::UTC)
    {
        return Ok(z.timestamp());
    }
    if let Ok(d) = text.parse::<jiff::civil::Date>()
        && let Ok(z) = d.to_zoned(jiff::tz::TimeZone::UTC)
    {
        return Ok(z.timestamp());
    }
    Err(ApiError::validation(
        &["body", field],
        "datetime_from_date_parsing",
        format!("Input should be a valid datetime, not '{text}'"),
    ))
}

fn run_type(t: RunType) -> &'static str {
    match t {
        RunType::Scheduled => "scheduled",
        RunType::Manual => "manual",
        RunType::Backfill => "backfill",
        RunType::AssetTriggered => "asset_triggered",
    }
}

pub(crate) fn version(row: &DagRow) -> DagVersionResponse {
    let hash = blake3::hash(row.hash.as_bytes());
    let b = hash.as_bytes();
    DagVersionResponse {
        id: format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_be_bytes([b[4], b[5]]),
            u16::from_be_bytes([b[6], b[7]]) & 0xfff,
            u16::from_be_bytes([b[8], b[9]]) & 0xfff,
            u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
        ),
        version_number: 1,
        dag_id: row.dag_id.clone(),
        bundle_name: Some("dags-folder".into()),
        bundle_version: None,
        created_at: iso(row.last_parsed),
        dag_display_name: row.dag_id.clone(),
        bundle_url: None,
    }
}

pub(crate) fn run_response(row: &DagRow, run: &RunRow) -> DagRunResponse {
    DagRunResponse {
        dag_run_id: run.run_id.clone(),
        dag_id: run.dag_id.clone(),
        logical_date: Some(iso(run.logical_date)),
        queued_at: Some(iso(run.queued_at)),
        start_date: iso_opt(run.start_date),
        end_date: iso_opt(run.end_date),
        duration: match (run.start_date, run.end_date) {
            (Some(s), Some(e)) => Some((e - s) as f64 / 1e6),
            _ => None,
        },
        data_interval_start: Some(iso(run.data_interval_start)),
        data_interval_end: Some(iso(run.data_interval_end)),
        run_after: iso(match run.run_type {
            RunType::Manual => run.logical_date,
            _ => run.data_interval_end,
        }),
        last_scheduling_decision: None,
        run_type: run_type(run.run_type).into(),
        state: run.state.as_str().into(),
        triggered_by: Some(
            match run.run_type {
                RunType::Scheduled => "timetable",
                RunType::Backfill => "backfill",
                RunType::Manual => "rest_api",
                RunType::AssetTriggered => "asset",
            }
            .into(),
        ),
        triggering_user_name: None,
        conf: Some(run.conf.clone()),
        note: None,
        dag_versions: vec![version(row)],
        bundle_version: None,
        dag_display_name: run.dag_id.clone(),
        partition_date: None,
        partition_key: None,
    }
}

impl ApiState {
    /// The run `run_id` of `dag_id`, or a 404.
    pub async fn run(&self, dag_id: &str, run_id: &str) -> ApiResult<RunRow> {
        self.store().get_run(dag_id, run_id).await?.ok_or_else(|| {
            ApiError::not_found(format!(
                "The DagRun with dag_id: `{dag_id}` and run_id: `{run_id}` was not found"
            ))
        })
    }
}

/// Trigger a run with a conf. `logical_date` missing or `null` means now.
#[utoipa::path(post, path = "/api/v2/dags/{dag_id}/dagRuns", tag = "DagRun",
    params(("dag_id" = String, Path)), request_body = TriggerDagRunPostBody,
    responses((status = 200, body = DagRunResponse), (status = 404), (status = 409), (status = 422)))]
pub async fn trigger_run(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(dag_id): Path<String>,
    Body(body): Body<TriggerDagRunPostBody>,
) -> ApiResult<Json<DagRunResponse>> {
    let (row, dag) = state.dag(&dag_id).await?;
    let at = body
        .logical_date
        .as_deref()
        .map(|t| instant("logical_date", t))
        .transpose()?;
    let run = state
        .services()
        .trigger(
            &caller.actor(),
            &dag,
            at,
            body.conf.unwrap_or_default(),
            body.dag_run_id,
        )
        .await?;
    Ok(Json(run_response(&row, &run)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListRunsParams {
    pub limit: Option<usize>,
    pub offset: Option<usize>,
    /// `logical_date`, `-start_date`, `dag_run_id`, ...
    #[serde(default)]
    pub order_by: Vec<String>,
    #[serde(default)]
    pub state: Vec<String>,
    #[serde(default)]
    pub run_type: Vec<String>,
    pub logical_date_gte: Option<String>,
    pub logical_date_lte: Option<String>,
    pub start_date_gte: Option<String>,
    pub start_date_lte: Option<String>,
    pub end_date_gte: Option<String>,
    pub end_date_lte: Option<String>,
}

/// List runs of a DAG; `~` as the DAG id lists every DAG's.
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns", tag = "DagRun",
    params(("dag_id" = String, Path), ListRunsParams),
    responses((status = 200, body = DagRunCollectionResponse), (status = 404)))]
pub async fn list_runs(
    State(state): State<ApiState>,
    Path(dag_id): Path<String>,
    Query(q): Query<ListRunsParams>,
) -> ApiResult<Json<DagRunCollectionResponse>> {
    let rows: Vec<DagRow> = if dag_id == "~" {
        state.store().list_dags().await?
    } else {
        vec![state.dag(&dag_id).await?.0]
    };
    let bound = |name: &str, v: &Option<String>| -> ApiResult<Option<i64>> {
        v.as_deref()
            .map(|t| instant(name, t).map(weir_core::micros))
            .transpose()
    };
    let ld = (
        bound("logical_date_gte", &q.logical_date_gte)?,
        bound("logical_date_lte", &q.logical_date_lte)?,
    );
    let sd = (
        bound("start_date_gte", &q.start_date_gte)?,
        bound("start_date_lte", &q.start_date_lte)?,
    );
    let ed = (
        bound("end_date_gte", &q.end_date_gte)?,
        bound("end_date_lte", &q.end_date_lte)?,
    );
    let within = |v: Option<i64>, (lo, hi): (Option<i64>, Option<i64>)| {
        (lo.is_none() && hi.is_none())
            || v.is_some_and(|v| lo.is_none_or(|l| v >= l) && hi.is_none_or(|h| v <= h))
    };
    let mut out = Vec::new();
    for row in &rows {
        for run in state.store().list_runs(&row.dag_id, i64::MAX).await? {
            if !q.state.is_empty() && !q.state.iter().any(|s| s == run.state.as_str()) {
                continue;
            }
            if !q.run_type.is_empty() && !q.run_type.iter().any(|s| s == run_type(run.run_type)) {
                continue;
            }
            if !within(Some(run.logical_date), ld)
                || !within(run.start_date, sd)
                || !within(run.end_date, ed)
            {
                continue;
            }
            out.push(run_response(row, &run));
        }
    }
    let (dag_runs, total_entries) = page(
        out,
        q.limit,
        q.offset,
        &crate::page::or_default(&q.order_by, "logical_date"),
        state.config().max_page_limit,
    )?;
    Ok(Json(DagRunCollectionResponse {
        dag_runs,
        total_entries,
    }))
}

/// Get a run.
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}", tag = "DagRun",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path)),
    responses((status = 200, body = DagRunResponse), (status = 404)))]
pub async fn get_run(
    State(state): State<ApiState>,
    Path((dag_id, run_id)): Path<(String, String)>,
) -> ApiResult<Json<DagRunResponse>> {
    let (row, _) = state.dag(&dag_id).await?;
    let run = state.run(&dag_id, &run_id).await?;
    Ok(Json(run_response(&row, &run)))
}

fn whole_run(run: &RunRow) -> ClearRequest {
    ClearRequest {
        run_ids: vec![run.run_id.clone()],
        ..ClearRequest::default()
    }
}

/// Set a run's state: `success` or `failed` marks its task instances so (and resumes what
/// failed downstream, as `weir tasks mark`); `queued` clears it to run again.
#[utoipa::path(patch, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}", tag = "DagRun",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path)), request_body = DagRunPatchBody,
    responses((status = 200, body = DagRunResponse), (status = 400), (status = 404)))]
pub async fn patch_run(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((dag_id, run_id)): Path<(String, String)>,
    Body(body): Body<DagRunPatchBody>,
) -> ApiResult<Json<DagRunResponse>> {
    let (row, dag) = state.dag(&dag_id).await?;
    let run = state.run(&dag_id, &run_id).await?;
    match body.state.as_deref() {
        None => {}
        Some("success") => {
            mark_run(&state, &caller, &dag, &run, TaskState::Success).await?;
        }
        Some("failed") => {
            mark_run(&state, &caller, &dag, &run, TaskState::Failed).await?;
        }
        Some("queued") => {
            state
                .services()
                .reset_run(&caller.actor(), &dag, &run)
                .await?;
        }
        Some(other) => {
            return Err(ApiError::validation(
                &["body", "state"],
                "enum",
                format!("Input should be 'queued', 'success' or 'failed', not '{other}'"),
            ));
        }
    }
    let run = state.run(&dag_id, &run_id).await?;
    Ok(Json(run_response(&row, &run)))
}

/// Marks the unfinished task instances of a run, and the run follows from them.
async fn mark_run(
    state: &ApiState,
    caller: &Caller,
    dag: &Dag,
    run: &RunRow,
    to: TaskState,
) -> ApiResult<()> {
    if run.state == RunState::Queued {
        state
            .store()
            .set_run_state(run.id, RunState::Queued, RunState::Running)
            .await?;
    }
    state
        .services()
        .mark(&caller.actor(), dag, &whole_run(run), to)
        .await?;
    Ok(())
}

/// Clear a run's task instances so that they run again. With `dry_run` (the default, as in
/// Airflow) nothing changes and the instances that would be cleared are returned.
#[utoipa::path(post, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/clear", tag = "DagRun",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path)), request_body = DagRunClearBody,
    responses((status = 200, body = ClearRunResponse), (status = 404)))]
pub async fn clear_run(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((dag_id, run_id)): Path<(String, String)>,
    Body(body): Body<DagRunClearBody>,
) -> ApiResult<Json<ClearRunResponse>> {
    let (row, dag) = state.dag(&dag_id).await?;
    let run = state.run(&dag_id, &run_id).await?;
    let request = ClearRequest {
        only_failed: body.only_failed.unwrap_or(false),
        ..whole_run(&run)
    };
    if body.dry_run.unwrap_or(true) {
        let tis: Vec<TaskInstanceResponse> = state
            .store()
            .task_instances(run.id)
            .await?
            .iter()
            .filter(|t| {
                !request.only_failed
                    || matches!(t.state, TaskState::Failed | TaskState::UpstreamFailed)
            })
            .map(|t| crate::tis::ti_response(&dag, &run, t))
            .collect();
        let total_entries = tis.len() as i64;
        return Ok(Json(ClearRunResponse::DryRun(
            TaskInstanceCollectionResponse {
                task_instances: tis,
                total_entries,
            },
        )));
    }
    state
        .services()
        .clear(&caller.actor(), &dag, &request)
        .await?;
    let run = state.run(&dag_id, &run_id).await?;
    Ok(Json(ClearRunResponse::Run(Box::new(run_response(
        &row, &run,
    )))))
}
