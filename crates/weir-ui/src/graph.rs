//! The graph view (`/dags/{dag_id}/graph`): the DAG as an SVG laid out by
//! [`crate::graph_layout`], left to right, each node coloured by its state in the latest run.

use crate::dags::DagHeader;
use crate::page::{Ctx, UiResult, html, ti_url};
use crate::session::Session;
use askama::Template;
use axum::extract::{Extension, Path, State};
use std::collections::HashMap;
use weir_api::ApiState;

const NODE_W: f64 = 180.0;
const NODE_H: f64 = 30.0;
const GAP_X: f64 = 70.0;
const GAP_Y: f64 = 14.0;
const MARGIN: f64 = 10.0;
const LABEL_CHARS: usize = 22;

pub struct Node {
    pub x: f64,
    pub y: f64,
    pub label: String,
    pub title: String,
    pub state: &'static str,
    pub url: String,
}

#[derive(Template)]
#[template(path = "graph.html")]
struct GraphPage {
    ctx: Ctx,
    header: DagHeader,
    run_label: String,
    nodes: Vec<Node>,
    edges: Vec<String>,
    width: f64,
    height: f64,
    node_w: f64,
    node_h: f64,
}

pub async fn page(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    Path(dag_id): Path<String>,
) -> UiResult {
    let (row, dag) = state.dag(&dag_id).await?;
    let ctx = Ctx::new(&session).with_tz(&dag.timezone);
    let index: HashMap<&str, usize> = dag
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.task_id.as_str(), i))
        .collect();
    let edges: Vec<(usize, usize)> = dag
        .tasks
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            t.depends_on
                .iter()
                .filter_map(|d| index.get(d.as_str()).map(|&u| (u, i)))
                .collect::<Vec<_>>()
        })
        .collect();
    let laid = crate::graph_layout::layout(dag.tasks.len(), &edges, 4);
    let xy = |v: usize| {
        (
            MARGIN + laid.layer[v] as f64 * (NODE_W + GAP_X),
            MARGIN + laid.slot[v] * (NODE_H + GAP_Y),
        )
    };
    let slots = laid.slot.iter().fold(0f64, |a, &b| a.max(b + 1.0));
    let latest = state
        .store()
        .list_runs(&dag_id, 1)
        .await?
        .into_iter()
        .next();
    let mut states: HashMap<String, (weir_core::TaskState, i64)> = HashMap::new();
    if let Some(run) = &latest {
        for ti in state.store().task_instances(run.id).await? {
            let entry = states
                .entry(ti.task_id.clone())
                .or_insert((ti.state, ti.map_index));
            if ti.map_index < entry.1 {
                *entry = (ti.state, ti.map_index);
            }
        }
    }
    let nodes = dag
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let (x, y) = xy(i);
            let found = states.get(&t.task_id);
            let state_name = found.map_or("none", |(s, _)| s.as_str());
            let label = if t.task_id.chars().count() > LABEL_CHARS {
                let cut: String = t.task_id.chars().take(LABEL_CHARS - 1).collect();
                format!("{cut}…")
            } else {
                t.task_id.clone()
            };
            Node {
                x,
                y,
                label,
                title: format!("{} ({}) · {}", t.task_id, t.task_type, state_name),
                state: state_name,
                url: match (&latest, found) {
                    (Some(run), Some((_, mi))) => ti_url(&dag_id, &run.run_id, &t.task_id, *mi),
                    _ => String::new(),
                },
            }
        })
        .collect();
    let paths = edges
        .iter()
        .map(|&(a, b)| {
            let (ax, ay) = xy(a);
            let (bx, by) = xy(b);
            let (x1, y1) = (ax + NODE_W, ay + NODE_H / 2.0);
            let (x2, y2) = (bx, by + NODE_H / 2.0);
            let mid = (x2 - x1) / 2.0;
            format!(
                "M{x1:.1} {y1:.1} C{:.1} {y1:.1}, {:.1} {y2:.1}, {x2:.1} {y2:.1}",
                x1 + mid,
                x2 - mid
            )
        })
        .collect();
    let width = MARGIN * 2.0 + laid.layers.len() as f64 * (NODE_W + GAP_X) - GAP_X;
    let height = MARGIN * 2.0 + slots * (NODE_H + GAP_Y) - GAP_Y;
    html(&GraphPage {
        header: DagHeader::new(&row, &dag, &ctx, "graph"),
        ctx,
        run_label: latest.map(|r| r.run_id).unwrap_or_default(),
        nodes,
        edges: paths,
        width: width.max(NODE_W),
        height: height.max(NODE_H),
        node_w: NODE_W,
        node_h: NODE_H,
    })
}
