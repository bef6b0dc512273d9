//! The request and response bodies, with Airflow 3's names and types. The OpenAPI document is
//! generated from these (utoipa), so that what the server sends and what it documents cannot
//! drift apart. Instants are ISO-8601 strings in UTC (`2026-01-15T00:00:00Z`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// An instant as the API writes it.
pub fn iso(micros: i64) -> String {
    jiff::Timestamp::from_microsecond(micros)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

pub fn iso_opt(micros: Option<i64>) -> Option<String> {
    micros.map(iso)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DagTagResponse {
    pub name: String,
    pub dag_id: String,
    pub dag_display_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DagResponse {
    pub dag_id: String,
    /// The kinds of runs the DAG allows; null means every kind.
    pub allowed_run_types: Option<Vec<String>>,
    pub dag_display_name: String,
    pub is_paused: bool,
    pub is_stale: bool,
    #[schema(format = DateTime)]
    pub last_parsed_time: Option<String>,
    pub last_parse_duration: Option<f64>,
    #[schema(format = DateTime)]
    pub last_expired: Option<String>,
    pub bundle_name: Option<String>,
    pub bundle_version: Option<String>,
    pub relative_fileloc: Option<String>,
    pub fileloc: String,
    pub description: Option<String>,
    pub timetable_summary: Option<String>,
    pub timetable_description: Option<String>,
    pub timetable_partitioned: bool,
    pub timetable_periodic: bool,
    pub tags: Vec<DagTagResponse>,
    pub max_active_tasks: i64,
    pub max_active_runs: Option<i64>,
    pub max_consecutive_failed_dag_runs: i64,
    pub has_task_concurrency_limits: bool,
    pub has_import_errors: bool,
    pub is_backfillable: bool,
    #[schema(format = DateTime)]
    pub next_dagrun_logical_date: Option<String>,
    #[schema(format = DateTime)]
    pub next_dagrun_data_interval_start: Option<String>,
    #[schema(format = DateTime)]
    pub next_dagrun_data_interval_end: Option<String>,
    #[schema(format = DateTime)]
    pub next_dagrun_run_after: Option<String>,
    pub owners: Vec<String>,
    pub file_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DagCollectionResponse {
    pub dags: Vec<DagResponse>,
    pub total_entries: i64,
}

/// A DAG with its settings (`GET /dags/{dag_id}/details`).
#[derive(Debug, Serialize, ToSchema)]
pub struct DagDetailsResponse {
    #[serde(flatten)]
    pub dag: DagResponse,
    pub catchup: bool,
    pub concurrency: i64,
    #[schema(format = DateTime)]
    pub start_date: Option<String>,
    #[schema(format = DateTime)]
    pub end_date: Option<String>,
    pub timezone: Option<String>,
    pub params: Option<Map<String, Value>>,
    pub doc_md: Option<String>,
    pub render_template_as_native_obj: bool,
    pub is_paused_upon_creation: Option<bool>,
    pub template_search_path: Option<Vec<String>>,
    pub default_args: Option<Map<String, Value>>,
    pub active_runs_count: Option<i64>,
    pub asset_expression: Option<Map<String, Value>>,
    pub dag_run_timeout: Option<String>,
    #[schema(format = DateTime)]
    pub last_parsed: Option<String>,
    pub latest_dag_version: Option<DagVersionResponse>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DagPatchBody {
    pub is_paused: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimeDelta {
    #[serde(rename = "__type")]
    pub kind: String,
    pub days: i64,
    pub seconds: i64,
    pub microseconds: i64,
}

impl TimeDelta {
    pub fn from_duration(d: std::time::Duration) -> TimeDelta {
        let secs = d.as_secs() as i64;
        TimeDelta {
            kind: "TimeDelta".into(),
            days: secs / 86_400,
            seconds: secs % 86_400,
            microseconds: i64::from(d.subsec_micros()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskResponse {
    pub task_id: Option<String>,
    pub task_display_name: Option<String>,
    pub owner: Option<String>,
    #[schema(format = DateTime)]
    pub start_date: Option<String>,
    #[schema(format = DateTime)]
    pub end_date: Option<String>,
    pub trigger_rule: Option<String>,
    pub depends_on_past: bool,
    pub wait_for_downstream: bool,
    pub retries: Option<f64>,
    pub queue: Option<String>,
    pub pool: Option<String>,
    pub pool_slots: Option<f64>,
    pub execution_timeout: Option<TimeDelta>,
    pub retry_delay: Option<TimeDelta>,
    pub retry_exponential_backoff: f64,
    pub priority_weight: Option<f64>,
    pub weight_rule: Option<String>,
    pub ui_color: Option<String>,
    pub ui_fgcolor: Option<String>,
    pub template_fields: Option<Vec<String>>,
    pub downstream_task_ids: Option<Vec<String>>,
    pub doc_md: Option<String>,
    pub operator_name: Option<String>,
    pub params: Option<Map<String, Value>>,
    pub class_ref: Option<Map<String, Value>>,
    pub is_mapped: Option<bool>,
    pub extra_links: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskCollectionResponse {
    pub tasks: Vec<TaskResponse>,
    pub total_entries: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DagVersionResponse {
    pub id: String,
    pub version_number: i64,
    pub dag_id: String,
    pub bundle_name: Option<String>,
    pub bundle_version: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub dag_display_name: String,
    pub bundle_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DagRunResponse {
    pub dag_run_id: String,
    pub dag_id: String,
    #[schema(format = DateTime)]
    pub logical_date: Option<String>,
    #[schema(format = DateTime)]
    pub queued_at: Option<String>,
    #[schema(format = DateTime)]
    pub start_date: Option<String>,
    #[schema(format = DateTime)]
    pub end_date: Option<String>,
    pub duration: Option<f64>,
    #[schema(format = DateTime)]
    pub data_interval_start: Option<String>,
    #[schema(format = DateTime)]
    pub data_interval_end: Option<String>,
    #[schema(format = DateTime)]
    pub run_after: String,
    #[schema(format = DateTime)]
    pub last_scheduling_decision: Option<String>,
    /// `backfill`, `scheduled`, `manual` or `asset_triggered`.
    pub run_type: String,
    /// `queued`, `running`, `success` or `failed`.
    pub state: String,
    pub triggered_by: Option<String>,
    pub triggering_user_name: Option<String>,
    pub conf: Option<Map<String, Value>>,
    pub note: Option<String>,
    pub dag_versions: Vec<DagVersionResponse>,
    pub bundle_version: Option<String>,
    pub dag_display_name: String,
    #[schema(format = DateTime)]
    pub partition_date: Option<String>,
    pub partition_key: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DagRunCollectionResponse {
    pub dag_runs: Vec<DagRunResponse>,
    pub total_entries: i64,
}

/// `POST /dags/{dag_id}/dagRuns`. An explicit `"logical_date": null` means now.
// Some fields are accepted for Airflow's clients and not used by weir (notes, teams, ...).
#[allow(dead_code)]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerDagRunPostBody {
    pub dag_run_id: Option<String>,
    #[schema(format = DateTime)]
    pub logical_date: Option<String>,
    #[schema(format = DateTime)]
    pub data_interval_start: Option<String>,
    #[schema(format = DateTime)]
    pub data_interval_end: Option<String>,
    #[schema(format = DateTime)]
    pub run_after: Option<String>,
    pub conf: Option<Map<String, Value>>,
    pub note: Option<String>,
    pub partition_key: Option<String>,
}

// Some fields are accepted for Airflow's clients and not used by weir (notes, teams, ...).
#[allow(dead_code)]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DagRunPatchBody {
    /// `queued`, `success` or `failed`.
    pub state: Option<String>,
    pub note: Option<String>,
}

// Some fields are accepted for Airflow's clients and not used by weir (notes, teams, ...).
#[allow(dead_code)]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DagRunClearBody {
    #[serde(default)]
    pub dry_run: Option<bool>,
    #[serde(default)]
    pub only_failed: Option<bool>,
    #[serde(default)]
    pub only_new: Option<bool>,
    #[serde(default)]
    pub run_on_latest_version: Option<bool>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskInstanceResponse {
    pub id: String,
    pub task_id: String,
    pub dag_id: String,
    pub dag_run_id: String,
    pub map_index: i64,
    #[schema(format = DateTime)]
    pub logical_date: Option<String>,
    #[schema(format = DateTime)]
    pub run_after: String,
    #[schema(format = DateTime)]
    pub start_date: Option<String>,
    #[schema(format = DateTime)]
    pub end_date: Option<String>,
    pub duration: Option<f64>,
    pub state: Option<String>,
    pub try_number: i64,
    pub max_tries: i64,
    pub task_display_name: String,
    pub dag_display_name: String,
    pub hostname: Option<String>,
    pub unixname: Option<String>,
    pub pool: String,
    pub pool_slots: i64,
    pub queue: Option<String>,
    pub priority_weight: Option<i64>,
    pub operator: Option<String>,
    pub operator_name: Option<String>,
    #[schema(format = DateTime)]
    pub queued_when: Option<String>,
    #[schema(format = DateTime)]
    pub scheduled_when: Option<String>,
    pub pid: Option<i64>,
    pub executor: Option<String>,
    pub executor_config: String,
    pub note: Option<String>,
    pub rendered_map_index: Option<String>,
    pub rendered_fields: Map<String, Value>,
    pub dag_version: Option<DagVersionResponse>,
    /// The trigger of a deferred instance.
    pub trigger: Option<Value>,
    pub triggerer_job: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskInstanceCollectionResponse {
    pub task_instances: Vec<TaskInstanceResponse>,
    pub total_entries: i64,
}

// Some fields are accepted for Airflow's clients and not used by weir (notes, teams, ...).
#[allow(dead_code)]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTaskInstanceBody {
    /// `success` or `failed`.
    pub new_state: Option<String>,
    pub note: Option<String>,
    #[serde(default)]
    pub include_upstream: bool,
    #[serde(default)]
    pub include_downstream: bool,
    #[serde(default)]
    pub include_future: bool,
    #[serde(default)]
    pub include_past: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskInstancesLogResponse {
    /// The log's lines.
    pub content: Vec<String>,
    pub continuation_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct XComResponse {
    pub key: String,
    #[schema(format = DateTime)]
    pub timestamp: String,
    #[schema(format = DateTime)]
    pub logical_date: Option<String>,
    pub map_index: i64,
    pub task_id: String,
    pub dag_id: String,
    pub run_id: String,
    pub dag_display_name: String,
    pub task_display_name: String,
    #[schema(format = DateTime)]
    pub run_after: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct XComResponseNative {
    #[serde(flatten)]
    pub entry: XComResponse,
    pub value: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct XComCollectionResponse {
    pub xcom_entries: Vec<XComResponse>,
    pub total_entries: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VariableResponse {
    pub key: String,
    pub value: Option<String>,
    pub description: Option<String>,
    pub is_encrypted: bool,
    pub team_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VariableCollectionResponse {
    pub variables: Vec<VariableResponse>,
    pub total_entries: i64,
}

/// A variable to create or replace. A value that is not a string is stored as its JSON.
// Some fields are accepted for Airflow's clients and not used by weir (notes, teams, ...).
#[allow(dead_code)]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariableBody {
    pub key: String,
    pub value: Value,
    pub description: Option<String>,
    pub team_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionResponse {
    pub connection_id: String,
    pub conn_type: String,
    pub description: Option<String>,
    pub host: Option<String>,
    pub login: Option<String>,
    pub schema: Option<String>,
    pub port: Option<i64>,
    /// Always `***` when the connection has a password: secrets never leave the server.
    pub password: Option<String>,
    /// JSON, with secret keys masked.
    pub extra: Option<String>,
    pub team_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionCollectionResponse {
    pub connections: Vec<ConnectionResponse>,
    pub total_entries: i64,
}

// Some fields are accepted for Airflow's clients and not used by weir (notes, teams, ...).
#[allow(dead_code)]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionBody {
    pub connection_id: String,
    pub conn_type: String,
    pub description: Option<String>,
    pub host: Option<String>,
    pub login: Option<String>,
    pub schema: Option<String>,
    pub port: Option<i64>,
    pub password: Option<String>,
    pub extra: Option<String>,
    pub team_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PoolResponse {
    pub name: String,
    pub slots: i64,
    pub description: Option<String>,
    pub include_deferred: bool,
    pub occupied_slots: i64,
    pub running_slots: i64,
    pub queued_slots: i64,
    pub scheduled_slots: i64,
    pub open_slots: i64,
    pub deferred_slots: i64,
    pub team_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PoolCollectionResponse {
    pub pools: Vec<PoolResponse>,
    pub total_entries: i64,
}

// Some fields are accepted for Airflow's clients and not used by weir (notes, teams, ...).
#[allow(dead_code)]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolBody {
    pub name: String,
    pub slots: i64,
    pub description: Option<String>,
    #[serde(default)]
    pub include_deferred: bool,
    pub team_name: Option<String>,
}

// Some fields are accepted for Airflow's clients and not used by weir (notes, teams, ...).
#[allow(dead_code)]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolPatchBody {
    pub pool: Option<String>,
    pub slots: Option<i64>,
    pub description: Option<String>,
    pub include_deferred: Option<bool>,
    pub team_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportErrorResponse {
    pub import_error_id: i64,
    #[schema(format = DateTime)]
    pub timestamp: String,
    pub filename: String,
    pub bundle_name: Option<String>,
    pub stack_trace: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportErrorCollectionResponse {
    pub import_errors: Vec<ImportErrorResponse>,
    pub total_entries: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DagStatsStateResponse {
    pub state: String,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DagStatsResponse {
    pub dag_id: String,
    pub dag_display_name: String,
    pub stats: Vec<DagStatsStateResponse>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DagStatsCollectionResponse {
    pub dags: Vec<DagStatsResponse>,
    pub total_entries: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventLogResponse {
    pub event_log_id: i64,
    #[schema(format = DateTime)]
    pub when: String,
    pub dag_id: Option<String>,
    pub task_id: Option<String>,
    pub run_id: Option<String>,
    pub map_index: Option<i64>,
    pub try_number: Option<i64>,
    pub event: String,
    #[schema(format = DateTime)]
    pub logical_date: Option<String>,
    pub owner: Option<String>,
    pub extra: Option<String>,
    pub dag_display_name: Option<String>,
    pub task_display_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventLogCollectionResponse {
    pub event_logs: Vec<EventLogResponse>,
    pub total_entries: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BackfillResponse {
    pub id: i64,
    pub dag_id: String,
    #[schema(format = DateTime)]
    pub from_date: String,
    #[schema(format = DateTime)]
    pub to_date: String,
    pub dag_run_conf: Option<Map<String, Value>>,
    pub is_paused: bool,
    /// `failed`, `completed` or `none`.
    pub reprocess_behavior: String,
    pub max_active_runs: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub dag_display_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BackfillCollectionResponse {
    pub backfills: Vec<BackfillResponse>,
    pub total_entries: i64,
}

// Some fields are accepted for Airflow's clients and not used by weir (notes, teams, ...).
#[allow(dead_code)]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackfillPostBody {
    pub dag_id: String,
    #[schema(format = DateTime)]
    pub from_date: String,
    #[schema(format = DateTime)]
    pub to_date: String,
    #[serde(default)]
    pub run_backwards: bool,
    pub dag_run_conf: Option<Map<String, Value>>,
    /// `failed`, `completed` or `none` (the default).
    pub reprocess_behavior: Option<String>,
    pub max_active_runs: Option<i64>,
    pub run_on_latest_version: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BaseInfoResponse {
    pub status: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SchedulerInfoResponse {
    pub status: Option<String>,
    pub latest_scheduler_heartbeat: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TriggererInfoResponse {
    pub status: Option<String>,
    pub latest_triggerer_heartbeat: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DagProcessorInfoResponse {
    pub status: Option<String>,
    pub latest_dag_processor_heartbeat: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthInfoResponse {
    pub metadatabase: BaseInfoResponse,
    pub scheduler: SchedulerInfoResponse,
    pub triggerer: TriggererInfoResponse,
    pub dag_processor: Option<DagProcessorInfoResponse>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionInfo {
    pub version: String,
    pub git_version: Option<String>,
}

/// `POST /auth/token`, as JSON or a form.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub access_token: String,
}
#[derive(Debug, Serialize, ToSchema)]
pub struct DagTagCollectionResponse {
    pub tags: Vec<String>,
    pub total_entries: i64,
}

/// What clearing a run returns: the instances it would clear (a dry run), or the run.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ClearRunResponse {
    DryRun(TaskInstanceCollectionResponse),
    Run(Box<DagRunResponse>),
}
