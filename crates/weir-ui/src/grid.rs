//! The grid (`/dags/{dag_id}/grid`): runs as columns (newest right) × tasks as rows, each
//! cell coloured by its task instance's state; the cells fragment polls itself every 2 s
//! while a run is unfinished. And the trigger form, with a conf prefilled from the DAG's
//! params.

use crate::dags::PauseToggle;
use crate::page::{Ctx, UiError, UiResult, dag_url, duration, html, run_url, see_other, ti_url};
use crate::session::Session;
use askama::Template;
use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use weir_api::ApiState;
use weir_api::auth::Caller;
use weir_core::Dag;
use weir_store::DagRow;

/// The top of every DAG page: name, description, pause toggle, tabs, trigger button.
pub struct DagHeader {
    pub dag_id: String,
    pub url: String,
    pub description: String,
    pub schedule: String,
    pub timezone: String,
    pub toggle: PauseToggle,
    pub tab: &'static str,
}

impl DagHeader {
    pub fn new(row: &DagRow, dag: &Dag, ctx: &Ctx, tab: &'static str) -> DagHeader {
        DagHeader {
            dag_id: row.dag_id.clone(),
            url: dag_url(&row.dag_id),
            description: row.description.clone().unwrap_or_default(),
            schedule: row.schedule.clone(),
            timezone: dag.timezone.clone(),
            toggle: PauseToggle::new(&row.dag_id, row.is_paused, ctx),
            tab,
        }
    }
}

pub struct GridRun {
    pub url: String,
    pub state: &'static str,
    pub label: String,
    pub title: String,
}

pub struct Cell {
    pub state: &'static str,
    pub title: String,
    pub url: String,
}

pub struct GridRow {
    pub task_id: String,
    pub cells: Vec<Option<Cell>>,
}

/// The grid itself, also served alone for htmx polling.
#[derive(Template)]
#[template(path = "grid_cells.html")]
pub struct GridCells {
    pub runs: Vec<GridRun>,
    pub rows: Vec<GridRow>,
    /// Some run is unfinished: the fragment polls itself.
    pub live: bool,
    pub poll_url: String,
    /// A hash of what the cells show, sent back by the next poll.
    pub seen: String,
    /// How many runs the grid shows at most.
    pub limit: i64,
}

// A template: written into its page as rendered, its own fields escaped as it renders.
impl askama::filters::HtmlSafe for GridCells {}

#[derive(Template)]
#[template(path = "grid.html")]
struct GridPage {
    ctx: Ctx,
    header: DagHeader,
    cells: GridCells,
}

#[derive(Deserialize)]
pub struct GridQuery {
    runs: Option<i64>,
    /// The hash of the cells the browser shows: the same cells are answered with 204 (htmx
    /// keeps what it has), so a poll while nothing changed costs no transfer or DOM work.
    seen: Option<String>,
}

const DEFAULT_RUNS: i64 = 25;

async fn grid_cells(state: &ApiState, dag: &Dag, limit: Option<i64>) -> UiResult<GridCells> {
    let limit = limit.unwrap_or(DEFAULT_RUNS).clamp(1, 500);
    let mut runs = state.store().list_runs(&dag.dag_id, limit).await?;
    runs.reverse();
    let pks: Vec<i64> = runs.iter().map(|r| r.id).collect();
    let mut by_cell: HashMap<(i64, String), Vec<weir_store::TiRow>> = HashMap::new();
    for ti in state.store().task_instances_of_runs(&pks).await? {
        by_cell
            .entry((ti.run_pk, ti.task_id.clone()))
            .or_default()
            .push(ti);
    }
    // What the cells show, hashed: a poll that finds the same answers "no change".
    let mut seen = blake3::Hasher::new();
    for run in &runs {
        seen.update(run.run_id.as_bytes());
        seen.update(run.state.as_str().as_bytes());
    }
    let rows = dag
        .tasks
        .iter()
        .map(|task| GridRow {
            task_id: task.task_id.clone(),
            cells: runs
                .iter()
                .map(|run| {
                    let tis = by_cell.get(&(run.id, task.task_id.clone()))?;
                    let ti = tis.iter().min_by_key(|t| t.map_index)?;
                    seen.update(&ti.id.to_le_bytes());
                    seen.update(ti.state.as_str().as_bytes());
                    seen.update(&ti.end_date.unwrap_or(0).to_le_bytes());
                    let mut title = format!("{} · {}", task.task_id, ti.state);
                    let took = duration(ti.start_date, ti.end_date);
                    if !took.is_empty() {
                        title.push_str(&format!(" · {took}"));
                    }
                    if tis.len() > 1 {
                        title.push_str(&format!(" · {} mapped items", tis.len()));
                    }
                    Some(Cell {
                        state: ti.state.as_str(),
                        title,
                        url: ti_url(&dag.dag_id, &run.run_id, &task.task_id, ti.map_index),
                    })
                })
                .collect(),
        })
        .collect();
    let live = runs.iter().any(|r| !r.state.is_finished());
    let grid_runs = runs
        .iter()
        .map(|r| GridRun {
            url: run_url(&r.dag_id, &r.run_id),
            state: r.state.as_str(),
            label: weir_core::timestamp(r.logical_date)
                .strftime("%m-%d %H:%M")
                .to_string(),
            title: format!(
                "{} · {} · {}",
                r.run_id,
                r.state,
                duration(r.start_date, r.end_date)
            ),
        })
        .collect();
    Ok(GridCells {
        runs: grid_runs,
        rows,
        live,
        seen: seen.finalize().to_hex()[..16].to_string(),
        limit,
        poll_url: format!("{}/grid/cells?runs={limit}", dag_url(&dag.dag_id)),
    })
}

pub async fn page(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    Path(dag_id): Path<String>,
    Query(q): Query<GridQuery>,
) -> UiResult {
    let (row, dag) = state.dag(&dag_id).await?;
    let ctx = Ctx::new(&session).with_tz(&dag.timezone);
    let cells = grid_cells(&state, &dag, q.runs).await?;
    html(&GridPage {
        header: DagHeader::new(&row, &dag, &ctx, "grid"),
        ctx,
        cells,
    })
}

pub async fn cells(
    State(state): State<ApiState>,
    Path(dag_id): Path<String>,
    Query(q): Query<GridQuery>,
) -> UiResult {
    let (_, dag) = state.dag(&dag_id).await?;
    let cells = grid_cells(&state, &dag, q.runs).await?;
    if q.seen.as_deref() == Some(cells.seen.as_str()) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    html(&cells)
}

#[derive(Template)]
#[template(path = "trigger.html")]
struct TriggerPage {
    ctx: Ctx,
    header: DagHeader,
    paused: bool,
    conf: String,
    error: String,
    params: Vec<(String, String)>,
}

fn trigger_page(row: &DagRow, dag: &Dag, ctx: Ctx, conf: String, error: String) -> TriggerPage {
    TriggerPage {
        header: DagHeader::new(row, dag, &ctx, "trigger"),
        paused: row.is_paused,
        ctx,
        conf,
        error,
        params: dag
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
    }
}

pub async fn trigger_form(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    Path(dag_id): Path<String>,
) -> UiResult {
    let (row, dag) = state.dag(&dag_id).await?;
    let ctx = Ctx::new(&session).with_tz(&dag.timezone);
    let conf = serde_json::to_string_pretty(&Value::Object(dag.params.clone()))
        .unwrap_or_else(|_| "{}".into());
    html(&trigger_page(&row, &dag, ctx, conf, String::new()))
}

#[derive(Deserialize)]
pub struct TriggerForm {
    #[serde(default)]
    conf: String,
}

/// The conf a user typed, or why it cannot be one: a JSON object whose keys are params of the
/// DAG (any keys when the DAG declares no params).
pub fn parse_conf(dag: &Dag, text: &str) -> Result<Map<String, Value>, String> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("the conf is not valid JSON: {e}"))?;
    let Value::Object(conf) = value else {
        return Err("the conf must be a JSON object, such as {\"country\": \"KR\"}".into());
    };
    if !dag.params.is_empty() {
        let unknown: Vec<&str> = conf
            .keys()
            .filter(|k| !dag.params.contains_key(*k))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            let known: Vec<&str> = dag.params.keys().map(String::as_str).collect();
            return Err(format!(
                "unknown param{} {} for DAG '{}' (its params are: {})",
                if unknown.len() == 1 { "" } else { "s" },
                unknown
                    .iter()
                    .map(|k| format!("'{k}'"))
                    .collect::<Vec<_>>()
                    .join(", "),
                dag.dag_id,
                known.join(", ")
            ));
        }
    }
    Ok(conf)
}

pub async fn trigger(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    Extension(caller): Extension<Caller>,
    Path(dag_id): Path<String>,
    Form(form): Form<TriggerForm>,
) -> UiResult {
    let (row, dag) = state.dag(&dag_id).await?;
    let ctx = Ctx::new(&session).with_tz(&dag.timezone);
    let result = match parse_conf(&dag, &form.conf) {
        Ok(conf) => state
            .services()
            .trigger(&caller.actor(), &dag, None, conf, None)
            .await
            .map_err(|e| UiError::from(e).message),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(see_other(&format!("{}/grid", dag_url(&dag_id)))),
        Err(error) => {
            let page = trigger_page(&row, &dag, ctx, form.conf, error);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(page.render()?)).into_response())
        }
    }
}
