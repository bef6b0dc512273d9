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
    /// Why it is in its state (what a sensor waits for, why it was skipped).
    pub reason: String,
}

/// A run linked from another: `DAG / run id` and its page.
pub struct RunLink {
    pub label: String,
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
    /// The `trigger_dag` task instance that created this run.
    parent: Option<RunLink>,
    /// Runs that this run's `trigger_dag` tasks created.
    children: Vec<RunLink>,
}

pub async fn page(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    Path((dag_id, run_id)): Path<(String, String)>,
) -> UiResult {
    let (row, dag) = state.dag(&dag_id).await?;
    let run = state.run(&dag_id, &run_id).await?;
    let ctx = Ctx::new(&session).with_tz(&dag.timezone);
    let rows = state.store().task_instances(run.id).await?;
    let ids: Vec<i64> = rows.iter().map(|t| t.id).collect();
    let children = state
        .store()
        .runs_triggered_by(&ids)
        .await?
        .into_iter()
        .map(|r| RunLink {
            label: format!("{} / {}", r.dag_id, r.run_id),
            url: run_url(&r.dag_id, &r.run_id),
        })
        .collect();
    let parent = match run.parent_ti_id {
        Some(id) => state.store().task_instance(id).await?.map(|ti| RunLink {
            label: format!("{} / {} / {}", ti.dag_id, ti.run_id, ti.task_id),
            url: ti_url(&ti.dag_id, &ti.run_id, &ti.task_id, ti.map_index),
        }),
        None => None,
    };
    let tis = rows
        .into_iter()
        .map(|ti| TiItem {
            url: ti_url(&dag_id, &run_id, &ti.task_id, ti.map_index),
            task_id: ti.task_id,
            map_index: ti.map_index,
            state: ti.state.as_str(),
            try_number: ti.try_number,
            start: Time::opt(ti.start_date),
            duration: duration(ti.start_date, ti.end_date),
            reason: ti.reason.unwrap_or_default(),
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
        parent,
        children,
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

/// How many runs the runs list shows.
const RUNS_SHOWN: i64 = 100;

#[derive(serde::Deserialize)]
pub struct RunsQuery {
    #[serde(default)]
    dag_id: String,
    #[serde(default)]
    state: String,
}

pub struct RunItem {
    pub dag_id: String,
    pub run_id: String,
    pub url: String,
    pub dag_url: String,
    pub state: &'static str,
    pub run_type: &'static str,
    pub logical_date: Time,
    pub start: Option<Time>,
    pub duration: String,
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    ctx: Ctx,
    dag_id: String,
    state: String,
    dag_ids: Vec<String>,
    states: Vec<&'static str>,
    runs: Vec<RunItem>,
    limit: i64,
}

/// `/runs`: the newest runs of every DAG, filtered by DAG and state.
pub async fn list(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    axum::extract::Query(q): axum::extract::Query<RunsQuery>,
) -> UiResult {
    use weir_core::RunState;
    let states = [
        RunState::Queued,
        RunState::Running,
        RunState::Success,
        RunState::Failed,
    ];
    let wanted = states.iter().copied().find(|s| s.as_str() == q.state);
    let dag_id = Some(q.dag_id.as_str()).filter(|d| !d.is_empty());
    let runs = state
        .store()
        .newest_runs(dag_id, wanted, RUNS_SHOWN)
        .await?
        .into_iter()
        .map(|r| RunItem {
            url: run_url(&r.dag_id, &r.run_id),
            dag_url: crate::page::dag_url(&r.dag_id),
            state: r.state.as_str(),
            run_type: r.run_type.as_str(),
            logical_date: Time::new(r.logical_date),
            start: r.start_date.map(Time::new),
            duration: duration(r.start_date, r.end_date),
            dag_id: r.dag_id,
            run_id: r.run_id,
        })
        .collect();
    let listing = state.listing().await?;
    html(&RunsPage {
        ctx: Ctx::new(&session),
        dag_ids: listing
            .rows
            .iter()
            .filter(|r| r.is_active)
            .map(|r| r.dag_id.clone())
            .collect(),
        states: states.iter().map(|s| s.as_str()).collect(),
        dag_id: q.dag_id,
        state: wanted.map(|s| s.as_str().to_string()).unwrap_or_default(),
        runs,
        limit: RUNS_SHOWN,
    })
}
