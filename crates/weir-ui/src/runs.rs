//! A run's page (`/dags/{dag_id}/runs/{run_id}`): its state, dates, conf and task instances,
//! and "clear the run" for ops.

use crate::dags::DagHeader;
use crate::page::{Ctx, Time, UiResult, duration, html, run_url, see_other, ti_url};
use crate::session::Session;
use askama::Template;
use axum::extract::{Extension, Path, State};
use weir_api::ApiState;
use weir_api::auth::Caller;

pub struct TiItem {
    pub task_id: String,
    pub map_index: i64,
    pub state: &'static str,
    pub try_number: i64,
    pub start: Option<Time>,
    pub duration: String,
    pub url: String,
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    ctx: Ctx,
    header: DagHeader,
    run_id: String,
    url: String,
    state: &'static str,
    run_type: &'static str,
    logical_date: Time,
    interval_start: Time,
    interval_end: Time,
    start: Option<Time>,
    end: Option<Time>,
    duration: String,
    conf: String,
    tis: Vec<TiItem>,
    live: bool,
}

pub async fn page(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    Path((dag_id, run_id)): Path<(String, String)>,
) -> UiResult {
    let (row, dag) = state.dag(&dag_id).await?;
    let run = state.run(&dag_id, &run_id).await?;
    let ctx = Ctx::new(&session).with_tz(&dag.timezone);
    let tis = state
        .store()
        .task_instances(run.id)
        .await?
        .into_iter()
        .map(|ti| TiItem {
            url: ti_url(&dag_id, &run_id, &ti.task_id, ti.map_index),
            task_id: ti.task_id,
            map_index: ti.map_index,
            state: ti.state.as_str(),
            try_number: ti.try_number,
            start: Time::opt(ti.start_date),
            duration: duration(ti.start_date, ti.end_date),
        })
        .collect();
    html(&RunPage {
        header: DagHeader::new(&row, &dag, &ctx, "run"),
        ctx,
        url: run_url(&dag_id, &run_id),
        run_id: run.run_id.clone(),
        state: run.state.as_str(),
        run_type: run.run_type.as_str(),
        logical_date: Time::new(run.logical_date),
        interval_start: Time::new(run.data_interval_start),
        interval_end: Time::new(run.data_interval_end),
        start: Time::opt(run.start_date),
        end: Time::opt(run.end_date),
        duration: duration(run.start_date, run.end_date),
        conf: serde_json::to_string_pretty(&run.conf).unwrap_or_default(),
        tis,
        live: !run.state.is_finished(),
    })
}

/// Clears every task instance of the run, so that it runs again from the start.
pub async fn clear(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((dag_id, run_id)): Path<(String, String)>,
) -> UiResult {
    let (_, dag) = state.dag(&dag_id).await?;
    let run = state.run(&dag_id, &run_id).await?;
    state
        .services()
        .reset_run(&caller.actor(), &dag, &run)
        .await?;
    Ok(see_other(&run_url(&dag_id, &run_id)))
}
