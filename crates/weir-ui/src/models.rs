//! The models pages: `/models` draws the lineage of each dbt project that the project's
//! `models` tasks run (seeds, sources, models and snapshots; tests are counted on the node
//! they test) and lists its nodes; `/models/node?project=DIR&id=UNIQUE_ID` is one node's
//! docs: description, columns with their tests, config, parents and children, its SQL and
//! the lineage around it. Projects are read with `weir_models` (no warehouse) and kept until
//! one of their files changes.

use crate::drawing::{Drawing, NodeIn, draw};
use crate::page::{Ctx, UiError, UiResult, html, seg};
use crate::session::Session;
use askama::Template;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use weir_api::ApiState;
use weir_models::project::{LoadOptions, Node, Project, ResourceType};

/// The dbt project of a `models` task without `project_dir`, relative to the weir project.
const DEFAULT_DIR: &str = "models";

/// A dbt project as the pages show it: read, or why it could not be.
struct Loaded {
    dir: String,
    project: Result<Arc<Project>, String>,
}

/// Read projects by folder, with the fingerprint of their files when read.
type Cache = Mutex<HashMap<PathBuf, (u64, Arc<Project>)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn load(root: &Path) -> Result<Arc<Project>, String> {
    let print = weir_models::steps::fingerprint(root, &["target", "logs", "dbt_packages"]);
    if let Some((seen, project)) = cache().lock().unwrap_or_else(|e| e.into_inner()).get(root)
        && *seen == print
    {
        return Ok(project.clone());
    }
    let options = LoadOptions {
        skip_profile: true,
        ..Default::default()
    };
    let project = Project::load(root, &options).map_err(|errors| {
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let project = Arc::new(project);
    cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(root.to_path_buf(), (print, project.clone()));
    Ok(project)
}

/// The dbt project folders the DAGs' `models` tasks name (relative to the weir project), and
/// `models/` when it holds a dbt project.
async fn project_dirs(state: &ApiState, root: &Path) -> UiResult<Vec<String>> {
    let mut dirs = BTreeSet::new();
    if root.join(DEFAULT_DIR).join("dbt_project.yml").is_file() {
        dirs.insert(DEFAULT_DIR.to_string());
    }
    let listing = state.listing().await?;
    for row in listing.rows.iter().filter(|r| r.is_active) {
        let Ok(dag) = state.parsed(row).await else {
            continue;
        };
        for task in dag.tasks.iter().filter(|t| t.task_type == "models") {
            let dir = task
                .config
                .get("project_dir")
                .and_then(|v| v.as_str())
                .unwrap_or(DEFAULT_DIR);
            if !dir.contains("{{") {
                dirs.insert(dir.trim_end_matches('/').to_string());
            }
        }
    }
    Ok(dirs.into_iter().collect())
}

async fn projects(state: &ApiState, only: Option<&str>) -> UiResult<Vec<Loaded>> {
    let Some(root) = state.config().project_dir.clone() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for dir in project_dirs(state, &root).await? {
        if only.is_some_and(|o| o != dir) {
            continue;
        }
        let path = root.join(&dir);
        let project = tokio::task::spawn_blocking(move || load(&path))
            .await
            .map_err(|e| {
                UiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("reading the dbt project stopped: {e}"),
                )
            })?;
        out.push(Loaded { dir, project });
    }
    Ok(out)
}

/// Nodes a lineage shows: everything but tests, unit tests and analyses.
fn drawn(node: &Node) -> bool {
    matches!(
        node.resource_type,
        ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot | ResourceType::Source
    )
}

fn node_url(dir: &str, id: &str) -> String {
    format!("/models/node?project={}&id={}", seg(dir), seg(id))
}

fn kind(node: &Node) -> &'static str {
    node.resource_type.as_str()
}

/// The lineage of `ids` in `project`: each drawn node, its edges among them, `focus` heavier.
fn lineage(dir: &str, project: &Project, ids: &BTreeSet<String>, focus: Option<&str>) -> Drawing {
    let nodes: Vec<&Node> = ids
        .iter()
        .filter_map(|id| project.node(id))
        .filter(|n| drawn(n))
        .collect();
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.unique_id.as_str(), i))
        .collect();
    let edges: Vec<(usize, usize)> = nodes
        .iter()
        .enumerate()
        .flat_map(|(i, n)| {
            n.depends_on
                .iter()
                .filter_map(|p| index.get(p.as_str()).map(|&u| (u, i)))
                .collect::<Vec<_>>()
        })
        .collect();
    let focus = focus.and_then(|f| index.get(f).copied());
    let inputs = nodes
        .iter()
        .map(|n| NodeIn {
            name: n.name.clone(),
            title: format!("{} ({})", n.unique_id, kind(n)),
            state: kind(n),
            url: node_url(dir, &n.unique_id),
        })
        .collect();
    draw(inputs, &edges, focus)
}

pub struct NodeItem {
    pub name: String,
    pub url: String,
    pub kind: &'static str,
    pub materialized: String,
    pub description: String,
    pub columns: usize,
    pub tests: usize,
}

pub struct ProjectView {
    pub dir: String,
    pub name: String,
    pub error: String,
    pub drawing: Option<Drawing>,
    pub nodes: Vec<NodeItem>,
}

#[derive(Template)]
#[template(path = "models.html")]
struct ModelsPage {
    ctx: Ctx,
    projects: Vec<ProjectView>,
}

/// The tests of each node, by the node they are attached to (its unique id), with the
/// column they test.
fn tests_by_node(project: &Project) -> BTreeMap<&str, Vec<&Node>> {
    let mut out: BTreeMap<&str, Vec<&Node>> = BTreeMap::new();
    for test in project.nodes_of(ResourceType::Test) {
        if let Some(on) = &test.attached_node {
            out.entry(on.as_str()).or_default().push(test);
        }
    }
    out
}

fn materialized(node: &Node) -> String {
    match node.resource_type {
        ResourceType::Model | ResourceType::Snapshot => node
            .config
            .get("materialized")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    }
}

pub async fn list(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
) -> UiResult {
    let ctx = Ctx::new(&session);
    let mut views = Vec::new();
    for loaded in projects(&state, None).await? {
        let project = match loaded.project {
            Ok(p) => p,
            Err(error) => {
                views.push(ProjectView {
                    dir: loaded.dir,
                    name: String::new(),
                    error,
                    drawing: None,
                    nodes: Vec::new(),
                });
                continue;
            }
        };
        let tests = tests_by_node(&project);
        let ids: BTreeSet<String> = project
            .nodes
            .values()
            .filter(|n| drawn(n))
            .map(|n| n.unique_id.clone())
            .collect();
        let nodes = project
            .nodes
            .values()
            .filter(|n| drawn(n))
            .map(|n| NodeItem {
                name: n.name.clone(),
                url: node_url(&loaded.dir, &n.unique_id),
                kind: kind(n),
                materialized: materialized(n),
                description: n.description.lines().next().unwrap_or_default().to_string(),
                columns: n.columns.len(),
                tests: tests.get(n.unique_id.as_str()).map_or(0, Vec::len),
            })
            .collect();
        views.push(ProjectView {
            drawing: Some(lineage(&loaded.dir, &project, &ids, None)),
            name: project.root_package().to_string(),
            dir: loaded.dir,
            error: String::new(),
            nodes,
        });
    }
    html(&ModelsPage {
        ctx,
        projects: views,
    })
}

#[derive(Deserialize)]
pub struct NodeQuery {
    #[serde(default)]
    project: String,
    #[serde(default)]
    id: String,
}

pub struct ColumnItem {
    pub name: String,
    pub data_type: String,
    pub description: String,
    pub tests: Vec<String>,
}

pub struct Link {
    pub name: String,
    pub url: String,
    pub kind: &'static str,
}

#[derive(Template)]
#[template(path = "model.html")]
struct NodePage {
    ctx: Ctx,
    dir: String,
    unique_id: String,
    name: String,
    kind: &'static str,
    path: String,
    materialized: String,
    relation: String,
    description: String,
    columns: Vec<ColumnItem>,
    /// Tests on the node as a whole (not on one column).
    tests: Vec<String>,
    parents: Vec<Link>,
    children: Vec<Link>,
    code: String,
    drawing: Drawing,
}

fn link(dir: &str, project: &Project, id: &str) -> Option<Link> {
    let node = project.node(id)?;
    Some(Link {
        name: node.name.clone(),
        url: node_url(dir, id),
        kind: kind(node),
    })
}

pub async fn node(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    Query(q): Query<NodeQuery>,
) -> UiResult {
    let ctx = Ctx::new(&session);
    let not_found = || {
        UiError::new(
            StatusCode::NOT_FOUND,
            format!("no node '{}' in the dbt project '{}'", q.id, q.project),
        )
    };
    let loaded = projects(&state, Some(&q.project))
        .await?
        .into_iter()
        .next()
        .ok_or_else(not_found)?;
    let project = loaded
        .project
        .map_err(|e| UiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let node = project.node(&q.id).ok_or_else(not_found)?;
    let tests = tests_by_node(&project);
    let own_tests = tests
        .get(node.unique_id.as_str())
        .cloned()
        .unwrap_or_default();
    let test_name = |t: &Node| {
        t.test_metadata
            .as_ref()
            .map_or_else(|| t.name.clone(), |m| m.name.clone())
    };
    let columns = node
        .columns
        .values()
        .map(|c| ColumnItem {
            name: c.name.clone(),
            data_type: c.data_type.clone().unwrap_or_default(),
            description: c.description.clone(),
            tests: own_tests
                .iter()
                .filter(|t| t.column_name.as_deref() == Some(c.name.as_str()))
                .map(|t| test_name(t))
                .collect(),
        })
        .collect();
    let start = BTreeSet::from([node.unique_id.clone()]);
    let mut around = project.graph.ancestors(&start, None);
    around.extend(project.graph.descendants(&start, None));
    around.insert(node.unique_id.clone());
    let children: Vec<Link> = project
        .graph
        .descendants(&start, Some(1))
        .iter()
        .filter(|id| **id != node.unique_id)
        .filter_map(|id| project.node(id).filter(|n| drawn(n)).map(|_| id))
        .filter_map(|id| link(&loaded.dir, &project, id))
        .collect();
    let relation = [&node.database, &node.schema, &node.alias]
        .iter()
        .filter_map(|p| p.as_deref())
        .collect::<Vec<_>>()
        .join(".");
    html(&NodePage {
        ctx,
        drawing: lineage(&loaded.dir, &project, &around, Some(&node.unique_id)),
        parents: node
            .depends_on
            .iter()
            .filter_map(|id| link(&loaded.dir, &project, id))
            .collect(),
        children,
        tests: own_tests
            .iter()
            .filter(|t| t.column_name.is_none())
            .map(|t| test_name(t))
            .collect(),
        columns,
        unique_id: node.unique_id.clone(),
        name: node.name.clone(),
        kind: kind(node),
        path: node.original_file_path.clone(),
        materialized: materialized(node),
        relation,
        description: node.description.clone(),
        code: node.raw_code.clone(),
        dir: loaded.dir,
    })
}
