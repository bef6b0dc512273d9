//! A task instance's page (`/dags/{dag_id}/runs/{run_id}/tasks/{task_id}?map_index=`): its
//! state, tries with their logs (the live part polls itself while the instance is
//! unfinished, so the log tails), its XComs, and clear / mark success / mark failed for ops.

use crate::dags::DagHeader;
use crate::page::{Ctx, Time, UiError, UiResult, duration, html, run_url, see_other, ti_url};
use crate::session::Session;
use askama::Template;
use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use std::sync::Arc;
use weir_api::ApiState;
use weir_api::auth::Caller;
use weir_core::{Dag, TaskState};
use weir_service::ClearRequest;
use weir_store::{RunRow, TiRow};

/// How much of a log the page shows: its end.
const LOG_TAIL: usize = 512 * 1024;

#[derive(Deserialize)]
pub struct TiQuery {
    map_index: Option<i64>,
    #[serde(rename = "try")]
    try_number: Option<i64>,
    /// The hash of what the browser shows (see `TiLive::seen`): unchanged answers 204.
    seen: Option<String>,
}

pub struct TryItem {
    pub number: i64,
    pub state: String,
    pub start: Time,
    pub duration: String,
    pub worker: String,
    pub url: String,
    pub selected: bool,
}

/// The part of the page that changes while the instance runs.
#[derive(Template)]
#[template(path = "task_live.html")]
pub struct TiLive {
    pub state: &'static str,
    pub try_number: i64,
    /// Tries it may have in all: Airflow's `max_tries` counts the retries.
    pub tries_allowed: i64,
    pub tries: Vec<TryItem>,
    pub shown_try: i64,
    pub log: String,
    pub log_cut: bool,
    /// What the instance pushed, `(key, JSON)`: cleared with it, pushed again by its next try.
    pub xcoms: Vec<(String, String)>,
    pub live: bool,
    pub poll_url: String,
    pub seen: String,
    /// Why the instance is in its state (skipped by a branch, what a sensor waits for).
    pub reason: String,
}

// A template: written into its page as rendered, its own fields escaped as it renders.
impl askama::filters::HtmlSafe for TiLive {}

#[derive(Template)]
#[template(path = "task.html")]
struct TiPage {
    ctx: Ctx,
    header: DagHeader,
    task_id: String,
    task_type: String,
    map_index: i64,
    run_id: String,
    run_url: String,
    url: String,
    live: TiLive,
    /// The items of a mapped task in this run (empty for an unmapped task).
    items: Vec<MapItem>,
}

pub struct MapItem {
    pub index: i64,
    pub state: &'static str,
    pub url: String,
    pub current: bool,
}

fn no_instance(dag_id: &str, run_id: &str, task_id: &str, map_index: i64) -> UiError {
    UiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "run '{run_id}' of '{dag_id}' has no task instance '{task_id}' (map index {map_index})"
        ),
    )
}

/// The DAG, the run and every instance of `task_id` in it (one, or a mapped task's items).
async fn find_all(
    state: &ApiState,
    dag_id: &str,
    run_id: &str,
    task_id: &str,
) -> UiResult<(weir_store::DagRow, Arc<Dag>, RunRow, Vec<TiRow>)> {
    let (row, dag) = state.dag(dag_id).await?;
    let run = state.run(dag_id, run_id).await?;
    let mut tis: Vec<TiRow> = state
        .store()
        .task_instances(run.id)
        .await?
        .into_iter()
        .filter(|t| t.task_id == task_id)
        .collect();
    tis.sort_by_key(|t| t.map_index);
    Ok((row, dag, run, tis))
}

async fn find(
    state: &ApiState,
    dag_id: &str,
    run_id: &str,
    task_id: &str,
    map_index: i64,
) -> UiResult<(weir_store::DagRow, Arc<Dag>, RunRow, TiRow)> {
    let (row, dag, run, tis) = find_all(state, dag_id, run_id, task_id).await?;
    let ti = tis
        .into_iter()
        .find(|t| t.map_index == map_index)
        .ok_or_else(|| no_instance(dag_id, run_id, task_id, map_index))?;
    Ok((row, dag, run, ti))
}

async fn live_part(
    state: &ApiState,
    run: &RunRow,
    ti: &TiRow,
    chosen: Option<i64>,
) -> UiResult<TiLive> {
    let base = ti_url(&run.dag_id, &run.run_id, &ti.task_id, -1);
    let with = |extra: &str| {
        let mut q = Vec::new();
        if ti.map_index >= 0 {
            q.push(format!("map_index={}", ti.map_index));
        }
        if !extra.is_empty() {
            q.push(extra.to_string());
        }
        if q.is_empty() {
            String::new()
        } else {
            format!("?{}", q.join("&"))
        }
    };
    let shown = chosen
        .unwrap_or(ti.try_number)
        .clamp(0, ti.try_number.max(0));
    let tries: Vec<TryItem> = state
        .store()
        .tries(run.id)
        .await?
        .into_iter()
        .filter(|t| t.ti_id == ti.id)
        .map(|t| TryItem {
            number: t.try_number,
            duration: duration(Some(t.start_date), t.end_date),
            start: Time::new(t.start_date),
            state: t.state,
            worker: t.worker,
            url: format!("{base}{}", with(&format!("try={}", t.try_number))),
            selected: t.try_number == shown,
        })
        .collect();
    let (log, log_cut) = if shown >= 1 {
        let path = weir_core::log_path(
            &state.config().log_dir,
            &run.dag_id,
            &run.run_id,
            &ti.task_id,
            ti.map_index,
            shown,
        );
        read_tail(&path).await
    } else {
        (String::new(), false)
    };
    let xcoms: Vec<(String, String)> = state
        .store()
        .xcoms(run.id)
        .await?
        .into_iter()
        .filter(|(t, m, _, _)| *t == ti.task_id && *m == ti.map_index)
        .map(|(_, _, k, v)| (k, serde_json::to_string_pretty(&v).unwrap_or_default()))
        .collect();
    // What the part shows, hashed: a poll that finds the same answers "no change", so the
    // log keeps its scroll position until it grows.
    let mut seen = blake3::Hasher::new();
    seen.update(ti.state.as_str().as_bytes());
    seen.update(&ti.try_number.to_le_bytes());
    for t in &tries {
        seen.update(t.state.as_bytes());
        seen.update(t.duration.as_bytes());
    }
    seen.update(log.as_bytes());
    seen.update(ti.reason.as_deref().unwrap_or_default().as_bytes());
    for (k, v) in &xcoms {
        seen.update(k.as_bytes());
        seen.update(v.as_bytes());
    }
    let seen = seen.finalize().to_hex()[..16].to_string();
    let poll_query = match chosen {
        Some(t) => format!("try={t}&seen={seen}"),
        None => format!("seen={seen}"),
    };
    Ok(TiLive {
        state: ti.state.as_str(),
        try_number: ti.try_number,
        tries_allowed: ti.max_tries + 1,
        tries,
        shown_try: shown,
        log,
        log_cut,
        xcoms,
        live: !ti.state.is_finished(),
        poll_url: format!("{base}/live{}", with(&poll_query)),
        seen,
        reason: ti.reason.clone().unwrap_or_default(),
    })
}

pub async fn page(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
    Query(q): Query<TiQuery>,
) -> UiResult {
    let (row, dag, run, tis) = find_all(&state, &dag_id, &run_id, &task_id).await?;
    // A mapped task's page without an index opens its first item.
    let map_index = q
        .map_index
        .or_else(|| tis.first().map(|t| t.map_index))
        .unwrap_or(-1);
    let items = tis
        .iter()
        .filter(|t| t.map_index >= 0)
        .map(|t| MapItem {
            index: t.map_index,
            state: t.state.as_str(),
            url: ti_url(&dag_id, &run_id, &task_id, t.map_index),
            current: t.map_index == map_index,
        })
        .collect();
    let ti = tis
        .into_iter()
        .find(|t| t.map_index == map_index)
        .ok_or_else(|| no_instance(&dag_id, &run_id, &task_id, map_index))?;
    let ctx = Ctx::new(&session).with_tz(&dag.timezone);
    let live = live_part(&state, &run, &ti, q.try_number).await?;
    html(&TiPage {
        header: DagHeader::new(&row, &dag, &ctx, "task"),
        ctx,
        task_type: dag
            .task(&task_id)
            .map(|t| t.task_type.clone())
            .unwrap_or_default(),
        url: ti_url(&dag_id, &run_id, &task_id, -1),
        run_url: run_url(&dag_id, &run_id),
        task_id,
        map_index,
        run_id,
        live,
        items,
    })
}

pub async fn live(
    State(state): State<ApiState>,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
    Query(q): Query<TiQuery>,
) -> UiResult {
    let (_, _, run, ti) = find(
        &state,
        &dag_id,
        &run_id,
        &task_id,
        q.map_index.unwrap_or(-1),
    )
    .await?;
    let live = live_part(&state, &run, &ti, q.try_number).await?;
    if q.seen.as_deref() == Some(live.seen.as_str()) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    html(&live)
}

/// The last [`LOG_TAIL`] bytes of a log (without reading what comes before), and whether
/// there was more; a log not written yet is empty.
async fn read_tail(path: &std::path::Path) -> (String, bool) {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let Ok(mut file) = tokio::fs::File::open(path).await else {
        return (String::new(), false);
    };
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(LOG_TAIL as u64);
    let mut bytes = Vec::new();
    if file.seek(std::io::SeekFrom::Start(start)).await.is_err()
        || file.read_to_end(&mut bytes).await.is_err()
    {
        return (String::new(), false);
    }
    (String::from_utf8_lossy(&bytes).into_owned(), start > 0)
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default = "unmapped")]
    map_index: i64,
    /// A checkbox: present ("on") when ticked.
    downstream: Option<String>,
    /// `success` or `failed`, for a mark.
    state: Option<String>,
}

fn unmapped() -> i64 {
    -1
}

fn request_for(task_id: &str, run_id: &str, downstream: bool) -> ClearRequest {
    ClearRequest {
        task_regex: Some(format!("^{}$", regex::escape(task_id))),
        run_ids: vec![run_id.to_string()],
        downstream,
        ..ClearRequest::default()
    }
}

/// Clears the task instance (and, when ticked, what is downstream of it) to run again.
pub async fn clear(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
    Form(form): Form<ActionForm>,
) -> UiResult {
    let (_, dag, _, _) = find(&state, &dag_id, &run_id, &task_id, form.map_index).await?;
    let request = request_for(&task_id, &run_id, form.downstream.is_some());
    state
        .services()
        .clear(&caller.actor(), &dag, &request)
        .await?;
    Ok(see_other(&ti_url(
        &dag_id,
        &run_id,
        &task_id,
        form.map_index,
    )))
}

/// Marks the task instance success or failed.
pub async fn mark(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
    Form(form): Form<ActionForm>,
) -> UiResult {
    let to = match form.state.as_deref() {
        Some("success") => TaskState::Success,
        Some("failed") => TaskState::Failed,
        other => {
            return Err(UiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "a task instance is marked 'success' or 'failed', not '{}'",
                    other.unwrap_or("")
                ),
            ));
        }
    };
    let (_, dag, _, _) = find(&state, &dag_id, &run_id, &task_id, form.map_index).await?;
    let request = request_for(&task_id, &run_id, form.downstream.is_some());
    state
        .services()
        .mark(&caller.actor(), &dag, &request, to)
        .await?;
    Ok(see_other(&ti_url(
        &dag_id,
        &run_id,
        &task_id,
        form.map_index,
    )))
}
