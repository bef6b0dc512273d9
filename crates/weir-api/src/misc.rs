//! Health, version, tokens, the OpenAPI document, import errors, DAG stats, the audit log and
//! backfills.

use crate::ApiState;
use crate::auth::{self, Caller};
use crate::error::{ApiError, ApiResult, Body, Path, Query};
use crate::model::*;
use crate::page::page;
use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa::IntoParams;
use weir_core::RunState;
use weir_service::Reprocess;
use weir_store::BackfillRow;

/// A scheduler that has not heartbeated for this long is unhealthy (Airflow's
/// `scheduler_health_check_threshold`).
const SCHEDULER_HEALTH_THRESHOLD_US: i64 = 30_000_000;

/// Whether the metadata database answers and the scheduler heartbeats. Needs no login.
#[utoipa::path(get, path = "/api/v2/monitor/health", tag = "Monitor",
    responses((status = 200, body = HealthInfoResponse)))]
pub async fn health(State(state): State<ApiState>) -> Json<HealthInfoResponse> {
    let db_ok = state.store().ping().await.is_ok();
    let beat = if db_ok {
        state
            .store()
            .latest_job_heartbeat("scheduler")
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    let healthy = |b: Option<i64>| {
        Some(
            match b {
                Some(b) if weir_core::now_micros() - b < SCHEDULER_HEALTH_THRESHOLD_US => "healthy",
                _ => "unhealthy",
            }
            .to_string(),
        )
    };
    Json(HealthInfoResponse {
        metadatabase: BaseInfoResponse {
            status: Some(if db_ok { "healthy" } else { "unhealthy" }.into()),
        },
        scheduler: SchedulerInfoResponse {
            status: healthy(beat),
            latest_scheduler_heartbeat: iso_opt(beat),
        },
        // The triggerer and the DAG processor run inside the scheduler's process.
        triggerer: TriggererInfoResponse {
            status: healthy(beat),
            latest_triggerer_heartbeat: iso_opt(beat),
        },
        dag_processor: Some(DagProcessorInfoResponse {
            status: healthy(beat),
            latest_dag_processor_heartbeat: iso_opt(beat),
        }),
    })
}

/// The server's version. Needs no login, as in Airflow.
#[utoipa::path(get, path = "/api/v2/version", tag = "Version",
    responses((status = 200, body = VersionInfo)))]
pub async fn version() -> Json<VersionInfo> {
    Json(VersionInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        git_version: None,
    })
}

/// Exchange a username and password (JSON or a form) for a bearer token.
#[utoipa::path(post, path = "/auth/token", tag = "Auth", request_body = LoginBody,
    responses((status = 201, body = LoginResponse), (status = 401), (status = 429)))]
pub async fn create_token(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<LoginResponse>)> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let login: LoginBody = if form {
        serde_html_form::from_bytes(&body)
            .map_err(|e| ApiError::validation(&["body"], "value_error", e.to_string()))?
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::validation(&["body"], "json_invalid", e.to_string()))?
    };
    let role = auth::login(&state, &login.username, &login.password).await?;
    let user = state
        .store()
        .get_user(&login.username)
        .await?
        .map(|u| u.username)
        .unwrap_or(login.username);
    Ok((
        StatusCode::CREATED,
        Json(LoginResponse {
            access_token: auth::issue_token(&state, &user, role)?,
        }),
    ))
}

/// Revoke the bearer token of this request.
#[utoipa::path(post, path = "/auth/logout", tag = "Auth", responses((status = 204)))]
pub async fn logout(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<StatusCode> {
    auth::revoke(&state, &caller.claims).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This API's OpenAPI document, generated from the handlers' types.
#[utoipa::path(get, path = "/api/v2/openapi.json", tag = "Monitor", responses((status = 200)))]
pub async fn openapi_json(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.inner.openapi.get().cloned().unwrap_or_default(),
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    pub limit: Option<usize>,
    pub offset: Option<usize>,
    #[serde(default)]
    pub order_by: Vec<String>,
}

/// Files that failed to parse.
#[utoipa::path(get, path = "/api/v2/importErrors", tag = "ImportError", params(ListParams),
    responses((status = 200, body = ImportErrorCollectionResponse)))]
pub async fn list_import_errors(
    State(state): State<ApiState>,
    Query(q): Query<ListParams>,
) -> ApiResult<Json<ImportErrorCollectionResponse>> {
    let all: Vec<ImportErrorResponse> = state
        .store()
        .import_errors()
        .await?
        .into_iter()
        .enumerate()
        .map(|(i, e)| ImportErrorResponse {
            import_error_id: i as i64 + 1,
            timestamp: iso(e.timestamp),
            filename: e.filename,
            bundle_name: Some("dags-folder".into()),
            stack_trace: e.message,
        })
        .collect();
    let (import_errors, total_entries) = page(
        all,
        q.limit,
        q.offset,
        &q.order_by,
        state.config().max_page_limit,
    )?;
    Ok(Json(ImportErrorCollectionResponse {
        import_errors,
        total_entries,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DagStatsParams {
    #[serde(default)]
    pub dag_ids: Vec<String>,
}

/// Runs per state of each DAG.
#[utoipa::path(get, path = "/api/v2/dagStats", tag = "DagStats", params(DagStatsParams),
    responses((status = 200, body = DagStatsCollectionResponse)))]
pub async fn dag_stats(
    State(state): State<ApiState>,
    Query(q): Query<DagStatsParams>,
) -> ApiResult<Json<DagStatsCollectionResponse>> {
    let mut counts: BTreeMap<String, BTreeMap<RunState, i64>> = BTreeMap::new();
    for dag in state.store().list_dags().await? {
        if q.dag_ids.is_empty() || q.dag_ids.contains(&dag.dag_id) {
            counts.entry(dag.dag_id).or_default();
        }
    }
    for s in RunState::ALL {
        for (dag, n) in state.store().run_counts(*s).await? {
            if let Some(m) = counts.get_mut(&dag) {
                m.insert(*s, n);
            }
        }
    }
    let dags: Vec<DagStatsResponse> = counts
        .into_iter()
        .map(|(dag_id, m)| DagStatsResponse {
            dag_display_name: dag_id.clone(),
            dag_id,
            stats: RunState::ALL
                .iter()
                .map(|s| DagStatsStateResponse {
                    state: s.as_str().into(),
                    count: m.get(s).copied().unwrap_or(0),
                })
                .collect(),
        })
        .collect();
    let total_entries = dags.len() as i64;
    Ok(Json(DagStatsCollectionResponse {
        dags,
        total_entries,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventLogParams {
    pub limit: Option<usize>,
    pub offset: Option<usize>,
    #[serde(default)]
    pub order_by: Vec<String>,
    pub dag_id: Option<String>,
    pub event: Option<String>,
    pub owner: Option<String>,
}

/// The audit log: who did what, when.
#[utoipa::path(get, path = "/api/v2/eventLogs", tag = "EventLog", params(EventLogParams),
    responses((status = 200, body = EventLogCollectionResponse)))]
pub async fn list_event_logs(
    State(state): State<ApiState>,
    Query(q): Query<EventLogParams>,
) -> ApiResult<Json<EventLogCollectionResponse>> {
    let all: Vec<EventLogResponse> = state
        .store()
        .event_log(i64::MAX)
        .await?
        .into_iter()
        .filter(|e| {
            q.dag_id
                .as_ref()
                .is_none_or(|d| e.dag_id.as_ref() == Some(d))
                && q.event.as_ref().is_none_or(|v| *v == e.event)
                && q.owner.as_ref().is_none_or(|o| *o == e.owner)
        })
        .map(|e| EventLogResponse {
            event_log_id: e.id,
            when: iso(e.dttm),
            dag_display_name: e.dag_id.clone(),
            dag_id: e.dag_id,
            task_display_name: e.task_id.clone(),
            task_id: e.task_id,
            run_id: e.run_id,
            map_index: None,
            try_number: None,
            event: e.event,
            logical_date: None,
            owner: Some(e.owner),
            extra: e.extra,
        })
        .collect();
    let (event_logs, total_entries) = page(
        all,
        q.limit,
        q.offset,
        &q.order_by,
        state.config().max_page_limit,
    )?;
    Ok(Json(EventLogCollectionResponse {
        event_logs,
        total_entries,
    }))
}

fn backfill_response(b: &BackfillRow, max_active_runs: i64) -> BackfillResponse {
    BackfillResponse {
        id: b.id,
        dag_id: b.dag_id.clone(),
        from_date: iso(b.from_date),
        to_date: iso(b.to_date),
        dag_run_conf: Some(b.dag_run_conf.clone()),
        is_paused: false,
        reprocess_behavior: b.reprocess_behavior.clone(),
        max_active_runs,
        created_at: iso(b.created_at),
        completed_at: iso_opt(b.completed_at),
        updated_at: iso(b.completed_at.unwrap_or(b.created_at)),
        dag_display_name: b.dag_id.clone(),
    }
}

/// The `max_active_runs` a backfill of `dag_id` runs within (1 when the DAG is gone).
async fn max_active_runs(state: &ApiState, dag_id: &str) -> ApiResult<i64> {
    Ok(match state.store().dag_row(dag_id).await? {
        Some(row) => i64::from(state.parsed(&row).await?.max_active_runs),
        None => 1,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BackfillParams {
    pub dag_id: Option<String>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
    #[serde(default)]
    pub order_by: Vec<String>,
}

/// List backfills.
#[utoipa::path(get, path = "/api/v2/backfills", tag = "Backfill", params(BackfillParams),
    responses((status = 200, body = BackfillCollectionResponse)))]
pub async fn list_backfills(
    State(state): State<ApiState>,
    Query(q): Query<BackfillParams>,
) -> ApiResult<Json<BackfillCollectionResponse>> {
    let mut all = Vec::new();
    for b in state.store().backfills(q.dag_id.as_deref()).await? {
        all.push(backfill_response(
            &b,
            max_active_runs(&state, &b.dag_id).await?,
        ));
    }
    let (backfills, total_entries) = page(
        all,
        q.limit,
        q.offset,
        &q.order_by,
        state.config().max_page_limit,
    )?;
    Ok(Json(BackfillCollectionResponse {
        backfills,
        total_entries,
    }))
}

/// Create a backfill: one run per interval of the DAG's schedule in `[from_date, to_date]`,
/// which the scheduler starts within the DAG's `max_active_runs`.
#[utoipa::path(post, path = "/api/v2/backfills", tag = "Backfill", request_body = BackfillPostBody,
    responses((status = 200, body = BackfillResponse), (status = 404), (status = 409), (status = 422)))]
pub async fn create_backfill(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Body(body): Body<BackfillPostBody>,
) -> ApiResult<Json<BackfillResponse>> {
    let (_, dag) = state.dag(&body.dag_id).await?;
    let from = crate::runs::instant("from_date", &body.from_date)?;
    let to = crate::runs::instant("to_date", &body.to_date)?;
    let reprocess = match body.reprocess_behavior.as_deref().unwrap_or("none") {
        "none" => Reprocess::None,
        "failed" => Reprocess::Failed,
        "completed" => Reprocess::Completed,
        other => {
            return Err(ApiError::validation(
                &["body", "reprocess_behavior"],
                "enum",
                format!("Input should be 'failed', 'completed' or 'none', not '{other}'"),
            ));
        }
    };
    let created = state
        .services()
        .create_backfill(
            &caller.actor(),
            &dag,
            from,
            to,
            reprocess,
            body.dag_run_conf.unwrap_or_default(),
        )
        .await?;
    Ok(Json(backfill_response(
        &created.record,
        body.max_active_runs
            .unwrap_or(i64::from(dag.max_active_runs)),
    )))
}

/// Get a backfill.
#[utoipa::path(get, path = "/api/v2/backfills/{backfill_id}", tag = "Backfill",
    params(("backfill_id" = i64, Path)),
    responses((status = 200, body = BackfillResponse), (status = 404)))]
pub async fn get_backfill(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<BackfillResponse>> {
    let b = state
        .store()
        .backfills(None)
        .await?
        .into_iter()
        .find(|b| b.id == id)
        .ok_or_else(|| ApiError::not_found(format!("Backfill with id {id} not found")))?;
    Ok(Json(backfill_response(
        &b,
        max_active_runs(&state, &b.dag_id).await?,
    )))
}

/// Prometheus metrics: the scheduler's loop duration, run and task durations, executor slots
/// (recorded by this process's scheduler and workers), and task instances by state and the
/// queue depth (read from the store at each scrape).
#[utoipa::path(get, path = "/metrics", tag = "Monitor",
    responses((status = 200, content_type = "text/plain"), (status = 404)))]
pub async fn metrics(State(state): State<ApiState>) -> ApiResult<axum::response::Response> {
    let Some(handle) = &state.inner.metrics else {
        return Err(ApiError::not_found(
            "metrics are not recorded by this process",
        ));
    };
    let mut queued = 0;
    for (s, n) in state.store().task_instance_state_counts().await? {
        if s == "queued" {
            queued = n;
        }
        metrics::gauge!("weir_task_instances", "state" => s).set(n as f64);
    }
    metrics::gauge!("weir_queue_depth").set(queued as f64);
    for s in RunState::ALL {
        let n: i64 = state
            .store()
            .run_counts(*s)
            .await?
            .iter()
            .map(|(_, n)| n)
            .sum();
        metrics::gauge!("weir_dag_runs", "state" => s.as_str()).set(n as f64);
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response())
}
