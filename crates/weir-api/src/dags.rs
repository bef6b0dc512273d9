//! `/dags`, `/dags/{dag_id}`, `/dags/{dag_id}/details`, `/dags/{dag_id}/tasks`, `/dagTags`.

use crate::ApiState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Body, Path, Query};
use crate::model::*;
use crate::page::{like, page};
use axum::Json;
use axum::extract::{Extension, RawQuery, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use utoipa::IntoParams;
use weir_core::{Dag, Schedule};
use weir_store::DagRow;

/// Parsed DAGs by id, refreshed when the DAG processor stored a new version (its hash); and
/// the DAG rows and import errors of listings, read at most every [`DagCache::LISTING_TTL`]
/// (changes by other processes show within it; this process's own at once).
#[derive(Default)]
pub struct DagCache {
    dags: RwLock<HashMap<String, (String, Arc<Dag>)>>,
    listing: RwLock<Option<(std::time::Instant, Arc<Listing>)>>,
    /// Held while one request reads a stale listing anew: the others answer from the stale
    /// one (or, with none, wait for it) instead of all reading the store at once.
    refresh: tokio::sync::Mutex<()>,
    /// Counts `clear` calls: a listing read while one happened is not kept.
    cleared: std::sync::atomic::AtomicU64,
}

/// What a DAG listing reads from the store.
pub struct Listing {
    /// Every stored DAG, by id.
    pub rows: Vec<DagRow>,
    pub import_errors: Vec<weir_store::ImportErrorRow>,
    pub import_error_files: HashSet<String>,
}

impl DagCache {
    pub const LISTING_TTL: std::time::Duration = std::time::Duration::from_secs(1);

    pub fn clear(&self) {
        let mut listing = self.listing.write().unwrap_or_else(|e| e.into_inner());
        self.cleared.fetch_add(1, Ordering::SeqCst);
        *listing = None;
    }
}

impl ApiState {
    /// The stored DAG `dag_id` and its row, or a 404.
    pub async fn dag(&self, dag_id: &str) -> ApiResult<(DagRow, Arc<Dag>)> {
        let row =
            self.store().dag_row(dag_id).await?.ok_or_else(|| {
                ApiError::not_found(format!("Dag with id {dag_id} was not found"))
            })?;
        let dag = self.parsed(&row).await?;
        Ok((row, dag))
    }

    /// The parsed DAG of a stored row, cached by the row's hash.
    pub async fn parsed(&self, row: &DagRow) -> ApiResult<Arc<Dag>> {
        let cache = &self.inner.dags.dags;
        if let Some((hash, dag)) = cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&row.dag_id)
            && *hash == row.hash
        {
            return Ok(dag.clone());
        }
        let (dag, _) = self.store().get_dag(&row.dag_id).await?.ok_or_else(|| {
            ApiError::not_found(format!("Dag with id {} was not found", row.dag_id))
        })?;
        let dag = Arc::new(dag);
        cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(row.dag_id.clone(), (row.hash.clone(), dag.clone()));
        Ok(dag)
    }
}

pub(crate) fn dag_response(
    row: &DagRow,
    dag: &Dag,
    import_error_files: &HashSet<String>,
) -> DagResponse {
    let periodic = !matches!(
        dag.schedule,
        Schedule::Never | Schedule::Once | Schedule::Assets { .. }
    );
    DagResponse {
        dag_id: row.dag_id.clone(),
        allowed_run_types: None,
        dag_display_name: row.dag_id.clone(),
        is_paused: row.is_paused,
        is_stale: !row.is_active,
        last_parsed_time: Some(iso(row.last_parsed)),
        last_parse_duration: None,
        last_expired: None,
        bundle_name: Some("dags-folder".into()),
        bundle_version: None,
        relative_fileloc: Some(row.fileloc.clone()),
        fileloc: row.fileloc.clone(),
        description: row.description.clone(),
        timetable_summary: (dag.schedule != Schedule::Never)
            .then(|| dag.schedule.text().to_string()),
        timetable_description: Some(match &dag.schedule {
            Schedule::Never => "Never, external triggers only".to_string(),
            Schedule::Once => "Once, as soon as possible".to_string(),
            Schedule::Cron { text, .. } => format!("{text} in {}", dag.timezone),
            Schedule::Every { text, .. } => text.clone(),
            Schedule::Assets { .. } => "Triggered by assets".to_string(),
        }),
        timetable_partitioned: false,
        timetable_periodic: periodic,
        tags: row
            .tags
            .iter()
            .map(|t| DagTagResponse {
                name: t.clone(),
                dag_id: row.dag_id.clone(),
                dag_display_name: row.dag_id.clone(),
            })
            .collect(),
        max_active_tasks: i64::from(dag.max_active_tasks),
        max_active_runs: Some(i64::from(dag.max_active_runs)),
        max_consecutive_failed_dag_runs: 0,
        has_task_concurrency_limits: false,
        has_import_errors: import_error_files.contains(&row.fileloc),
        is_backfillable: periodic,
        next_dagrun_logical_date: None,
        next_dagrun_data_interval_start: None,
        next_dagrun_data_interval_end: None,
        next_dagrun_run_after: None,
        owners: vec![row.owner.clone().unwrap_or_else(|| "airflow".into())],
        file_token: blake3::hash(row.fileloc.as_bytes()).to_hex().to_string(),
    }
}

async fn import_error_files(state: &ApiState) -> ApiResult<HashSet<String>> {
    Ok(state.listing().await?.import_error_files.clone())
}

impl ApiState {
    /// The DAG rows (by id) and import errors, cached for [`DagCache::LISTING_TTL`].
    pub async fn listing(&self) -> ApiResult<Arc<Listing>> {
        let cache = &self.inner.dags.listing;
        let kept = || {
            cache
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .map(|(at, listing)| (at.elapsed() < DagCache::LISTING_TTL, listing.clone()))
        };
        let stale = match kept() {
            Some((true, listing)) => return Ok(listing),
            Some((false, listing)) => Some(listing),
            None => None,
        };
        // One request reads the store anew; meanwhile the others get the stale listing.
        let _refreshing = match (self.inner.dags.refresh.try_lock(), stale) {
            (Ok(guard), _) => guard,
            (Err(_), Some(listing)) => return Ok(listing),
            (Err(_), None) => self.inner.dags.refresh.lock().await,
        };
        if let Some((true, listing)) = kept() {
            return Ok(listing);
        }
        let before = self.inner.dags.cleared.load(Ordering::SeqCst);
        let mut rows = self.store().list_dags().await?;
        rows.sort_by(|a, b| a.dag_id.cmp(&b.dag_id));
        let import_errors = self.store().import_errors().await?;
        let listing = Arc::new(Listing {
            rows,
            import_error_files: import_errors.iter().map(|e| e.filename.clone()).collect(),
            import_errors,
        });
        let mut kept = cache.write().unwrap_or_else(|e| e.into_inner());
        if self.inner.dags.cleared.load(Ordering::SeqCst) == before {
            *kept = Some((std::time::Instant::now(), listing.clone()));
        }
        Ok(listing)
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListDagsParams {
    pub limit: Option<usize>,
    pub offset: Option<usize>,
    /// `dag_id`, `-dag_id`, `last_parsed_time`, ...
    #[serde(default)]
    pub order_by: Vec<String>,
    /// Only DAGs with these tags (any of them, or all with `tags_match_mode=all`).
    #[serde(default)]
    pub tags: Vec<String>,
    pub tags_match_mode: Option<String>,
    /// SQL LIKE pattern on the DAG id (`%sales%`).
    pub dag_id_pattern: Option<String>,
    pub dag_display_name_pattern: Option<String>,
    pub paused: Option<bool>,
    /// Leave out DAGs whose file is gone (default true).
    pub exclude_stale: Option<bool>,
}

/// List DAGs.
#[utoipa::path(get, path = "/api/v2/dags", tag = "DAG", params(ListDagsParams),
    responses((status = 200, body = DagCollectionResponse)))]
pub async fn list_dags(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    Query(q): Query<ListDagsParams>,
) -> ApiResult<axum::response::Response> {
    // The same listing for every caller (roles do not filter DAGs): its JSON is reused for
    // `ApiState::PAGE_TTL`, as the DAG rows it is built from are, and forgotten by any change
    // made through this process.
    let key = format!("api/dags?{}", raw.unwrap_or_default());
    let body = state
        .memo(&key, async {
            let page = dags_page(&state, &q).await?;
            serde_json::to_vec(&page)
                .map(axum::body::Bytes::from)
                .map_err(|e| {
                    ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                })
        })
        .await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        axum::body::Bytes::clone(&body),
    )
        .into_response())
}

async fn dags_page(state: &ApiState, q: &ListDagsParams) -> ApiResult<DagCollectionResponse> {
    let listing = state.listing().await?;
    let all_tags = q.tags_match_mode.as_deref() == Some("all");
    let pattern = q
        .dag_id_pattern
        .as_deref()
        .or(q.dag_display_name_pattern.as_deref());
    let rows: Vec<&DagRow> = listing
        .rows
        .iter()
        .filter(|row| {
            if q.exclude_stale.unwrap_or(true) && !row.is_active {
                return false;
            }
            if q.paused.is_some_and(|p| p != row.is_paused) {
                return false;
            }
            if pattern.is_some_and(|p| !like(p, &row.dag_id)) {
                return false;
            }
            if !q.tags.is_empty() {
                let has = |t: &String| row.tags.contains(t);
                return if all_tags {
                    q.tags.iter().all(has)
                } else {
                    q.tags.iter().any(has)
                };
            }
            true
        })
        .collect();
    let order = crate::page::or_default(&q.order_by, "dag_id");
    let max = state.config().max_page_limit;
    // Ordered by id (the default): the rows are already, so only the page is built.
    let by_id = match order.as_ref() {
        [o] if o == "dag_id" => Some(false),
        [o] if o == "-dag_id" => Some(true),
        _ => None,
    };
    if let Some(descending) = by_id {
        let total_entries = rows.len() as i64;
        let window: Vec<&DagRow> = if descending {
            rows.into_iter().rev().collect()
        } else {
            rows
        };
        let mut dags = Vec::new();
        for row in window
            .into_iter()
            .skip(q.offset.unwrap_or(0))
            .take(q.limit.unwrap_or(50).min(max))
        {
            let dag = state.parsed(row).await?;
            dags.push(dag_response(row, &dag, &listing.import_error_files));
        }
        return Ok(DagCollectionResponse {
            dags,
            total_entries,
        });
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let dag = state.parsed(row).await?;
        out.push(dag_response(row, &dag, &listing.import_error_files));
    }
    let (dags, total_entries) = page(out, q.limit, q.offset, &order, max)?;
    Ok(DagCollectionResponse {
        dags,
        total_entries,
    })
}

/// Get a DAG.
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}", tag = "DAG",
    params(("dag_id" = String, Path)),
    responses((status = 200, body = DagResponse), (status = 404)))]
pub async fn get_dag(
    State(state): State<ApiState>,
    Path(dag_id): Path<String>,
) -> ApiResult<Json<DagResponse>> {
    let (row, dag) = state.dag(&dag_id).await?;
    let errors = import_error_files(&state).await?;
    Ok(Json(dag_response(&row, &dag, &errors)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PatchDagParams {
    /// Only these fields of the body are applied (`is_paused`).
    pub update_mask: Option<Vec<String>>,
}

/// Pause or unpause a DAG.
#[utoipa::path(patch, path = "/api/v2/dags/{dag_id}", tag = "DAG",
    params(("dag_id" = String, Path), PatchDagParams), request_body = DagPatchBody,
    responses((status = 200, body = DagResponse), (status = 404)))]
pub async fn patch_dag(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(dag_id): Path<String>,
    Query(q): Query<PatchDagParams>,
    Body(body): Body<DagPatchBody>,
) -> ApiResult<Json<DagResponse>> {
    if let Some(mask) = &q.update_mask
        && let Some(bad) = mask.iter().find(|f| f.as_str() != "is_paused")
    {
        return Err(ApiError::bad_request(format!(
            "Only `is_paused` field can be updated through the REST API, not '{bad}'"
        )));
    }
    let (_, dag) = state.dag(&dag_id).await?;
    state
        .services()
        .set_paused(
            &caller.actor(),
            &dag,
            body.is_paused,
            state.config().paused_by_default,
        )
        .await?;
    state.forget_cached();
    get_dag(State(state), Path(dag_id)).await
}

/// Get a DAG with its settings.
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/details", tag = "DAG",
    params(("dag_id" = String, Path)),
    responses((status = 200, body = DagDetailsResponse), (status = 404)))]
pub async fn get_dag_details(
    State(state): State<ApiState>,
    Path(dag_id): Path<String>,
) -> ApiResult<Json<DagDetailsResponse>> {
    let (row, dag) = state.dag(&dag_id).await?;
    let errors = import_error_files(&state).await?;
    let active = state
        .store()
        .run_counts(weir_core::RunState::Running)
        .await?
        .into_iter()
        .find(|(d, _)| *d == dag_id)
        .map(|(_, n)| n)
        .unwrap_or(0);
    Ok(Json(DagDetailsResponse {
        dag: dag_response(&row, &dag, &errors),
        catchup: dag.catchup,
        concurrency: i64::from(dag.max_active_tasks),
        start_date: iso_opt(dag.start_date),
        end_date: iso_opt(dag.end_date),
        timezone: Some(dag.timezone.clone()),
        params: Some(dag.params.clone()),
        doc_md: dag.doc.clone(),
        render_template_as_native_obj: false,
        is_paused_upon_creation: dag.is_paused_upon_creation,
        template_search_path: None,
        default_args: None,
        active_runs_count: Some(active),
        asset_expression: match &dag.schedule {
            Schedule::Assets { condition, .. } => match asset_expression(condition) {
                serde_json::Value::Object(m) => Some(m),
                _ => None,
            },
            _ => None,
        },
        dag_run_timeout: None,
        last_parsed: Some(iso(row.last_parsed)),
        latest_dag_version: Some(crate::runs::version(&row)),
    }))
}

pub(crate) fn task_response(dag: &Dag, task: &weir_core::Task) -> TaskResponse {
    TaskResponse {
        task_id: Some(task.task_id.clone()),
        task_display_name: Some(task.task_id.clone()),
        owner: Some(dag.owner.clone().unwrap_or_else(|| "airflow".into())),
        start_date: iso_opt(dag.start_date),
        end_date: iso_opt(dag.end_date),
        trigger_rule: Some(task.trigger_rule.as_str().to_string()),
        depends_on_past: task.depends_on_past,
        wait_for_downstream: false,
        retries: Some(f64::from(task.retries)),
        queue: Some(task.queue.clone()),
        pool: Some(task.pool.clone()),
        pool_slots: Some(f64::from(task.pool_slots)),
        execution_timeout: task.execution_timeout.map(TimeDelta::from_duration),
        retry_delay: Some(TimeDelta::from_duration(task.retry_delay)),
        retry_exponential_backoff: if task.retry_exponential_backoff {
            2.0
        } else {
            0.0
        },
        priority_weight: Some(task.priority_weight as f64),
        weight_rule: Some("downstream".into()),
        ui_color: None,
        ui_fgcolor: None,
        template_fields: Some(task.config.keys().cloned().collect()),
        downstream_task_ids: Some(
            dag.downstream(&task.task_id)
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        doc_md: task.doc.clone(),
        operator_name: Some(task.task_type.clone()),
        params: Some(task.params.clone()),
        class_ref: None,
        is_mapped: Some(task.map_over.is_some()),
        extra_links: Vec::new(),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListTasksParams {
    #[serde(default)]
    pub order_by: Vec<String>,
}

/// The tasks of a DAG.
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/tasks", tag = "Task",
    params(("dag_id" = String, Path), ListTasksParams),
    responses((status = 200, body = TaskCollectionResponse), (status = 404)))]
pub async fn list_tasks(
    State(state): State<ApiState>,
    Path(dag_id): Path<String>,
    Query(q): Query<ListTasksParams>,
) -> ApiResult<Json<TaskCollectionResponse>> {
    let (_, dag) = state.dag(&dag_id).await?;
    let tasks: Vec<TaskResponse> = dag.tasks.iter().map(|t| task_response(&dag, t)).collect();
    let n = tasks.len();
    let (tasks, total_entries) = page(tasks, Some(n), None, &q.order_by, n.max(1))?;
    Ok(Json(TaskCollectionResponse {
        tasks,
        total_entries,
    }))
}

/// One task of a DAG.
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/tasks/{task_id}", tag = "Task",
    params(("dag_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, body = TaskResponse), (status = 404)))]
pub async fn get_task(
    State(state): State<ApiState>,
    Path((dag_id, task_id)): Path<(String, String)>,
) -> ApiResult<Json<TaskResponse>> {
    let (_, dag) = state.dag(&dag_id).await?;
    let task = dag.task(&task_id).ok_or_else(|| {
        ApiError::not_found(format!("Task with id {task_id} not found in DAG {dag_id}"))
    })?;
    Ok(Json(task_response(&dag, task)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListTagsParams {
    pub limit: Option<usize>,
    pub offset: Option<usize>,
    pub tag_name_pattern: Option<String>,
}

/// Every tag used by a DAG.
#[utoipa::path(get, path = "/api/v2/dagTags", tag = "DAG", params(ListTagsParams),
    responses((status = 200, body = DagTagCollectionResponse)))]
pub async fn list_dag_tags(
    State(state): State<ApiState>,
    Query(q): Query<ListTagsParams>,
) -> ApiResult<Json<DagTagCollectionResponse>> {
    let mut tags: Vec<String> = state
        .store()
        .list_dags()
        .await?
        .into_iter()
        .flat_map(|d| d.tags)
        .filter(|t| q.tag_name_pattern.as_deref().is_none_or(|p| like(p, t)))
        .collect();
    tags.sort();
    tags.dedup();
    let (tags, total_entries) = page(tags, q.limit, q.offset, &[], state.config().max_page_limit)?;
    Ok(Json(DagTagCollectionResponse {
        tags,
        total_entries,
    }))
}

/// Airflow's `asset_expression`: `{"all": [{"asset": {"name", "uri"}}, {"any": [...]}]}`.
fn asset_expression(condition: &weir_core::AssetCondition) -> serde_json::Value {
    use weir_core::AssetCondition::*;
    match condition {
        Asset(name) => serde_json::json!({"asset": {"name": name, "uri": name}}),
        All(items) => {
            serde_json::json!({"all": items.iter().map(asset_expression).collect::<Vec<_>>()})
        }
        Any(items) => {
            serde_json::json!({"any": items.iter().map(asset_expression).collect::<Vec<_>>()})
        }
    }
}
