//! The grid (`/dags/{dag_id}/grid`): runs as columns (newest right) × tasks as rows, each
//! cell coloured by its task instance's state; the cells fragment polls itself every 2 s
//! while a run is unfinished.

use crate::dags::DagHeader;
use crate::page::{Ctx, UiResult, dag_url, duration, html, run_url, seg, ti_url_of};
use crate::session::Session;
use askama::Template;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use std::collections::HashMap;
use weir_api::ApiState;
use weir_core::Dag;

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
    /// The task group it belongs to (`group:`), folded under the group's row.
    pub group: String,
}

/// A task group's row: per run, the state that matters most among its tasks' instances.
pub struct GroupRow {
    pub name: String,
    pub tasks: usize,
    pub cells: Vec<Option<&'static str>>,
}

/// What the grid's body shows, in order: a task, or a group followed by its tasks.
pub enum Line {
    Task(GridRow),
    Group(GroupRow),
}

/// How much a state matters in a group's summary: the most urgent one shows.
fn urgency(state: &str) -> u8 {
    match state {
        "failed" => 9,
        "upstream_failed" => 8,
        "up_for_retry" => 7,
        "running" | "restarting" => 6,
        "deferred" | "up_for_reschedule" => 5,
        "queued" => 4,
        "scheduled" => 3,
        "none" => 2,
        "success" => 1,
        _ => 0,
    }
}

/// Tasks in DAG order, each group's tasks gathered under its row where its first task is.
fn fold(rows: Vec<GridRow>, runs: usize) -> Vec<Line> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, Vec<GridRow>> = HashMap::new();
    let mut lines: Vec<Option<Line>> = Vec::new();
    for row in rows {
        if row.group.is_empty() {
            lines.push(Some(Line::Task(row)));
            continue;
        }
        if !groups.contains_key(&row.group) {
            order.push(row.group.clone());
            // A placeholder where the group's row goes.
            lines.push(None);
        }
        groups.entry(row.group.clone()).or_default().push(row);
    }
    let mut order = order.into_iter();
    let mut out = Vec::new();
    for line in lines {
        match line {
            Some(line) => out.push(line),
            None => {
                let name = order.next().unwrap_or_default();
                let members = groups.remove(&name).unwrap_or_default();
                let cells = (0..runs)
                    .map(|i| {
                        members
                            .iter()
                            .filter_map(|m| m.cells.get(i)?.as_ref().map(|c| c.state))
                            .max_by_key(|s| urgency(s))
                    })
                    .collect();
                out.push(Line::Group(GroupRow {
                    name,
                    tasks: members.len(),
                    cells,
                }));
                out.extend(members.into_iter().map(Line::Task));
            }
        }
    }
    out
}

/// The grid itself, also served alone for htmx polling.
#[derive(Template)]
#[template(path = "grid_cells.html")]
pub struct GridCells {
    pub runs: Vec<GridRun>,
    pub lines: Vec<Line>,
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
    let column: HashMap<i64, usize> = pks.iter().enumerate().map(|(i, pk)| (*pk, i)).collect();
    let row_of: HashMap<&str, usize> = dag
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.task_id.as_str(), i))
        .collect();
    // cells[task][run]: the instance shown (the first item of a mapped task) and how many
    // instances the task has in that run.
    let mut cells: Vec<Vec<Option<(weir_store::TiCell, usize)>>> =
        vec![vec![None; runs.len()]; dag.tasks.len()];
    for ti in state.store().ti_cells_of_runs(&pks).await? {
        let (Some(&r), Some(&c)) = (row_of.get(ti.task_id.as_str()), column.get(&ti.run_pk)) else {
            continue;
        };
        match &mut cells[r][c] {
            Some((shown, count)) => {
                *count += 1;
                if ti.map_index < shown.map_index {
                    *shown = ti;
                }
            }
            empty => *empty = Some((ti, 1)),
        }
    }
    // What the cells show, hashed: a poll that finds the same answers "no change".
    let mut seen = blake3::Hasher::new();
    for run in &runs {
        seen.update(run.run_id.as_bytes());
        seen.update(run.state.as_str().as_bytes());
    }
    // Each cell's URL joins its run's and its task's parts, each encoded once.
    let run_urls: Vec<String> = runs
        .iter()
        .map(|run| run_url(&run.dag_id, &run.run_id))
        .collect();
    let rows = dag
        .tasks
        .iter()
        .zip(cells)
        .map(|(task, row)| {
            let task_seg = seg(&task.task_id);
            GridRow {
                task_id: task.task_id.clone(),
                group: task.group.clone().unwrap_or_default(),
                cells: run_urls
                    .iter()
                    .zip(row)
                    .map(|(run_url, cell)| {
                        let (ti, count) = cell?;
                        seen.update(&ti.map_index.to_le_bytes());
                        seen.update(ti.state.as_str().as_bytes());
                        seen.update(&ti.end_date.unwrap_or(0).to_le_bytes());
                        let mut title = format!("{} · {}", task.task_id, ti.state);
                        let took = duration(ti.start_date, ti.end_date);
                        if !took.is_empty() {
                            title.push_str(" · ");
                            title.push_str(&took);
                        }
                        if count > 1 {
                            title.push_str(&format!(" · {count} mapped items"));
                        }
                        Some(Cell {
                            state: ti.state.as_str(),
                            title,
                            url: ti_url_of(run_url, &task_seg, ti.map_index),
                        })
                    })
                    .collect(),
            }
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
        lines: fold(rows, runs.len()),
        runs: grid_runs,
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
