//! The graph view (`/dags/{dag_id}/graph`): the DAG as an SVG laid out by
//! [`crate::graph_layout`], left to right, each node coloured by its state in the latest run.

use crate::dags::DagHeader;
use crate::drawing::{Drawing, NodeIn, draw};
use crate::page::{Ctx, UiResult, html, ti_url};
use crate::session::Session;
use askama::Template;
use axum::extract::{Extension, Path, State};
use std::collections::HashMap;
use weir_api::ApiState;

#[derive(Template)]
#[template(path = "graph.html")]
struct GraphPage {
    ctx: Ctx,
    header: DagHeader,
    run_label: String,
    drawing: Drawing,
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
        .map(|t| {
            let found = states.get(&t.task_id);
            let state_name = found.map_or("none", |(s, _)| s.as_str());
            NodeIn {
                name: t.task_id.clone(),
                title: format!("{} ({}) · {}", t.task_id, t.task_type, state_name),
                state: state_name,
                url: match (&latest, found) {
                    (Some(run), Some((_, mi))) => ti_url(&dag_id, &run.run_id, &t.task_id, *mi),
                    _ => String::new(),
                },
            }
        })
        .collect();
    html(&GraphPage {
        header: DagHeader::new(&row, &dag, &ctx, "graph"),
        ctx,
        run_label: latest.map(|r| r.run_id).unwrap_or_default(),
        drawing: draw(nodes, &edges, None),
    })
}
