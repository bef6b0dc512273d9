//! The DAG list (`/`): each DAG with its recent runs, schedule, next run and pause toggle,
//! a search box and a tag filter, and the files that failed to import. Also what every DAG
//! page shares: its header and the pause toggle.

use crate::page::{Ctx, Time, UiResult, dag_url, html, run_url};
use crate::session::Session;
use askama::Template;
use axum::extract::{Extension, Form, Path, Query, State};
use serde::Deserialize;
use weir_api::ApiState;
use weir_api::auth::Caller;
use weir_core::Dag;
use weir_store::DagRow;

/// The pause switch of one DAG: a button that posts the other state and swaps itself.
#[derive(Template, Clone)]
#[template(path = "pause.html")]
pub struct PauseToggle {
    pub url: String,
    pub paused: bool,
    pub can_op: bool,
}

// A template: written into its page as rendered, its own fields escaped as it renders.
impl askama::filters::HtmlSafe for PauseToggle {}

impl PauseToggle {
    pub fn new(dag_id: &str, paused: bool, ctx: &Ctx) -> PauseToggle {
        PauseToggle {
            url: format!("{}/pause", dag_url(dag_id)),
            paused,
            can_op: ctx.can_op,
        }
    }
}

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

/// A DAG's schedule as the pages show it: a DAG without one (stored as `null`) shows `None`,
/// as in Airflow.
fn schedule_label(stored: &str) -> String {
    match stored {
        "" | "null" => "None".to_string(),
        other => other.to_string(),
    }
}

impl DagHeader {
    pub fn new(row: &DagRow, dag: &Dag, ctx: &Ctx, tab: &'static str) -> DagHeader {
        DagHeader {
            dag_id: row.dag_id.clone(),
            url: dag_url(&row.dag_id),
            description: row.description.clone().unwrap_or_default(),
            schedule: schedule_label(&row.schedule),
            timezone: dag.timezone.clone(),
            toggle: PauseToggle::new(&row.dag_id, row.is_paused, ctx),
            tab,
        }
    }
}

pub struct RunDot {
    pub state: &'static str,
    pub title: String,
    pub url: String,
}

pub struct DagItem {
    pub dag_id: String,
    pub url: String,
    pub description: String,
    pub schedule: String,
    pub next_run: Option<Time>,
    pub runs: Vec<RunDot>,
    pub tags: Vec<String>,
    pub owner: String,
    pub broken: bool,
}

pub struct ImportError {
    pub filename: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "dags.html")]
struct DagList<'a> {
    ctx: Ctx,
    q: String,
    tag: String,
    tags: &'a [String],
    import_errors: &'a [ImportError],
    /// Each DAG on the page with its pause toggle, as this user may use it.
    dags: Vec<(&'a DagItem, PauseToggle)>,
    /// `first`–`last` of `matching` DAGs are on this page.
    first: usize,
    last: usize,
    matching: usize,
    prev_url: Option<String>,
    next_url: Option<String>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    tag: String,
    /// 1-based page of [`PAGE_SIZE`] DAGs.
    page: Option<usize>,
}

/// How many recent runs each DAG shows.
const RECENT_RUNS: i64 = 12;

/// DAGs on one page of the list (Airflow's list shows 25 at a time too).
pub const PAGE_SIZE: usize = 25;

/// A page of the DAG list as read from the store: the same for every user, so kept for
/// [`ApiState::PAGE_TTL`] (a user's own change forgets it at once).
struct ListData {
    tags: Vec<String>,
    /// Each DAG on the page, with whether it is paused (the toggle depends on the viewer).
    dags: Vec<(DagItem, bool)>,
    import_errors: Vec<ImportError>,
    page: usize,
    pages: usize,
    matching: usize,
}

async fn list_data(state: &ApiState, q: &ListQuery) -> UiResult<ListData> {
    let listing = state.listing().await?;
    let needle = q.q.trim().to_lowercase();
    let mut tags: Vec<String> = listing
        .rows
        .iter()
        .filter(|row| row.is_active)
        .flat_map(|row| row.tags.iter().cloned())
        .collect();
    tags.sort();
    tags.dedup();
    let matching: Vec<&DagRow> = listing
        .rows
        .iter()
        .filter(|row| row.is_active)
        .filter(|row| q.tag.is_empty() || row.tags.contains(&q.tag))
        .filter(|row| {
            needle.is_empty()
                || row.dag_id.to_lowercase().contains(&needle)
                || row
                    .description
                    .as_deref()
                    .is_some_and(|d| d.to_lowercase().contains(&needle))
        })
        .collect();
    let pages = matching.len().div_ceil(PAGE_SIZE).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let shown = &matching
        [((page - 1) * PAGE_SIZE).min(matching.len())..(page * PAGE_SIZE).min(matching.len())];
    let ids: Vec<&str> = shown.iter().map(|row| row.dag_id.as_str()).collect();
    let mut runs_of: std::collections::HashMap<String, Vec<RunDot>> = Default::default();
    for (dag_id, run_id, run_state) in state.store().recent_run_states(&ids, RECENT_RUNS).await? {
        let dot = RunDot {
            state: run_state.as_str(),
            title: format!("{run_id} · {run_state}"),
            url: run_url(&dag_id, &run_id),
        };
        runs_of.entry(dag_id).or_default().push(dot);
    }
    let now = jiff::Timestamp::now();
    let mut dags = Vec::with_capacity(shown.len());
    for row in shown {
        // A DAG the store cannot give back parsed still gets its row (without a next run).
        let dag = state.parsed(row).await.ok();
        let next_run = dag
            .filter(|_| !row.is_paused)
            .and_then(|dag| weir_core::Timetable::new(&dag.schedule, dag.tz()).ok())
            .and_then(|tt| tt.next_fire_after(now))
            .map(|t| Time::new(weir_core::micros(t)));
        let mut runs = runs_of.remove(&row.dag_id).unwrap_or_default();
        runs.reverse();
        let item = DagItem {
            url: dag_url(&row.dag_id),
            broken: listing.import_error_files.contains(&row.fileloc),
            dag_id: row.dag_id.clone(),
            description: row.description.clone().unwrap_or_default(),
            schedule: schedule_label(&row.schedule),
            next_run,
            runs,
            tags: row.tags.clone(),
            owner: row.owner.clone().unwrap_or_default(),
        };
        dags.push((item, row.is_paused));
    }
    Ok(ListData {
        tags,
        dags,
        import_errors: listing
            .import_errors
            .iter()
            .map(|e| ImportError {
                filename: e.filename.clone(),
                message: e.message.clone(),
            })
            .collect(),
        page,
        pages,
        matching: matching.len(),
    })
}

pub async fn list(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    Query(q): Query<ListQuery>,
) -> UiResult {
    let ctx = Ctx::new(&session);
    let key = format!("dags?q={}&tag={}&page={:?}", q.q, q.tag, q.page);
    let data = state.memo(&key, list_data(&state, &q)).await?;
    let (page, pages) = (data.page, data.pages);
    let shown = data.dags.len();
    let page_url = |n: usize| {
        let mut url = format!("/?page={n}");
        for (key, value) in [("q", &q.q), ("tag", &q.tag)] {
            if !value.is_empty() {
                url.push_str(&format!("&{key}={}", crate::page::seg(value)));
            }
        }
        url
    };
    html(&DagList {
        first: if shown == 0 {
            0
        } else {
            (page - 1) * PAGE_SIZE + 1
        },
        last: (page - 1) * PAGE_SIZE + shown,
        matching: data.matching,
        prev_url: (page > 1).then(|| page_url(page - 1)),
        next_url: (page < pages).then(|| page_url(page + 1)),
        q: q.q.clone(),
        tag: q.tag.clone(),
        tags: &data.tags,
        import_errors: &data.import_errors,
        dags: data
            .dags
            .iter()
            .map(|(d, paused)| (d, PauseToggle::new(&d.dag_id, *paused, &ctx)))
            .collect(),
        ctx,
    })
}

#[derive(Deserialize)]
pub struct PauseForm {
    paused: bool,
}

/// Pauses or unpauses a DAG (htmx): answers with the new toggle.
pub async fn pause(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    Extension(caller): Extension<Caller>,
    Path(dag_id): Path<String>,
    Form(form): Form<PauseForm>,
) -> UiResult {
    let (_, dag) = state.dag(&dag_id).await?;
    state
        .services()
        .set_paused(
            &caller.actor(),
            &dag,
            form.paused,
            state.config().paused_by_default,
        )
        .await?;
    html(&PauseToggle::new(&dag_id, form.paused, &Ctx::new(&session)))
}
