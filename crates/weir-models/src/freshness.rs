//! `weir models source freshness`: for each selected source table with a `freshness:` and a
//! `loaded_at_field`, the age of its newest row against `warn_after`/`error_after` (rows
//! narrowed by `filter`), dbt's console lines, and `target/sources.json` (sources v3).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use serde_json::{Value as Json, json};

use crate::project::{Node, Project, ResourceType, Selection, select};
use crate::run::{RunError, now_iso};
use crate::session::{Console, Session};

/// How one source's check ended, in sources.json's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreshnessStatus {
    Pass,
    Warn,
    Error,
    RuntimeError,
}

impl FreshnessStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FreshnessStatus::Pass => "pass",
            FreshnessStatus::Warn => "warn",
            FreshnessStatus::Error => "error",
            FreshnessStatus::RuntimeError => "runtime error",
        }
    }

    /// The word of the console line: `PASS`, `WARN`, `ERROR STALE`, `ERROR`.
    fn label(self) -> &'static str {
        match self {
            FreshnessStatus::Pass => "PASS",
            FreshnessStatus::Warn => "WARN",
            FreshnessStatus::Error => "ERROR STALE",
            FreshnessStatus::RuntimeError => "ERROR",
        }
    }
}

/// One source's result.
#[derive(Debug, Clone)]
pub struct FreshnessResult {
    pub unique_id: String,
    pub status: FreshnessStatus,
    /// The runtime error, when the check could not run.
    pub error: Option<String>,
    pub max_loaded_at: String,
    pub snapshotted_at: String,
    pub age_seconds: f64,
    pub criteria: Json,
    pub started_at: String,
    pub completed_at: String,
    pub execution_time: f64,
}

/// The outcome of `source freshness`.
#[derive(Debug, Clone)]
pub struct FreshnessReport {
    pub results: Vec<FreshnessResult>,
    pub elapsed: f64,
}

impl FreshnessReport {
    /// dbt exits 1 when a source is stale past `error_after` or could not be checked.
    pub fn success(&self) -> bool {
        !self.results.iter().any(|r| {
            matches!(
                r.status,
                FreshnessStatus::Error | FreshnessStatus::RuntimeError
            )
        })
    }
}

/// `{count: 1, period: hour}` in seconds, when both are set.
fn threshold_seconds(time: &Json) -> Result<Option<f64>, String> {
    let count = time.get("count").filter(|c| !c.is_null());
    let period = time.get("period").and_then(Json::as_str);
    let (count, period) = match (count, period) {
        (None, None) => return Ok(None),
        (Some(c), Some(p)) => (c, p),
        _ => {
            return Err(format!(
                "freshness threshold {time} needs both count and period"
            ));
        }
    };
    let count = count
        .as_f64()
        .ok_or_else(|| format!("freshness count {count} is not a number"))?;
    let unit = match period {
        "minute" => 60.0,
        "hour" => 3600.0,
        "day" => 86400.0,
        other => {
            return Err(format!(
                "freshness period '{other}' is not one of minute, hour, day"
            ));
        }
    };
    Ok(Some(count * unit))
}

/// The freshness criteria of a source table as sources.json shows them, when it has any.
fn criteria(node: &Node) -> Option<Json> {
    let freshness = node.source.as_ref()?.freshness.clone();
    let Json::Object(map) = &freshness else {
        return None;
    };
    let set = |k: &str| {
        map.get(k)
            .filter(|v| v.get("count").is_some_and(|c| !c.is_null()))
            .cloned()
    };
    let (warn, error) = (set("warn_after"), set("error_after"));
    if warn.is_none() && error.is_none() {
        return None;
    }
    Some(json!({
        "warn_after": warn.unwrap_or_else(|| json!({"count": null, "period": null})),
        "error_after": error.unwrap_or_else(|| json!({"count": null, "period": null})),
        "filter": map.get("filter").cloned().unwrap_or(Json::Null),
    }))
}

/// The sources `source freshness` checks: selected sources that have freshness criteria.
pub fn checked_sources(project: &Project, selection: &Selection) -> Result<Vec<Node>, RunError> {
    let mut selection = selection.clone();
    selection.resource_types = Some(vec![ResourceType::Source]);
    let ids = select(project, &selection).map_err(|e| RunError::Selection(e.to_string()))?;
    Ok(ids
        .iter()
        .filter_map(|id| project.node(id))
        .filter(|n| criteria(n).is_some())
        .cloned()
        .collect())
}

fn iso(epoch_seconds: f64) -> String {
    let nanos = (epoch_seconds * 1e9) as i128;
    jiff::Timestamp::from_nanosecond(nanos)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string())
        .unwrap_or_default()
}

fn check(
    session: &Session,
    node: &Node,
    criteria: &Json,
) -> Result<(f64, f64, FreshnessStatus), String> {
    let source = node.source.as_ref().ok_or("not a source")?;
    let Some(field) = &source.loaded_at_field else {
        return Err(format!(
            "Could not compute freshness for source {}: no 'loaded_at_field' provided and {} adapter does not support metadata-based freshness checks.",
            node.name,
            session.dialect()
        ));
    };
    let relation = session
        .compiler
        .relations
        .relation
        .get(&node.unique_id)
        .map(|r| r.render())
        .ok_or("the source has no relation")?;
    let filter = criteria
        .get("filter")
        .and_then(Json::as_str)
        .map(|f| format!("\n    where {f}"))
        .unwrap_or_default();
    // Ages are taken in the warehouse, as epoch seconds: a timestamp without a time zone counts
    // as UTC there, as dbt assumes.
    let sql = format!(
        "select\n      extract(epoch from max({field})) as max_loaded_at,\n      extract(epoch from current_timestamp) as snapshotted_at\n    from {relation}{filter}"
    );
    let rows = session.query(&sql).map_err(|e| e.trim().to_string())?;
    let row = rows.rows.first().cloned().unwrap_or_default();
    let number = |v: Option<&Json>| {
        v.and_then(|v| match v {
            Json::String(s) => s.parse::<f64>().ok(),
            other => other.as_f64(),
        })
    };
    let Some(max_loaded_at) = number(row.first()) else {
        return Err(format!(
            "Expected a non-null value when querying field '{field}' of table {relation} but received value 'null' instead"
        ));
    };
    let snapshotted_at =
        number(row.get(1)).unwrap_or_else(|| jiff::Timestamp::now().as_microsecond() as f64 / 1e6);
    let age = snapshotted_at - max_loaded_at;
    let exceeded = |key: &str| -> Result<bool, String> {
        Ok(criteria
            .get(key)
            .map(threshold_seconds)
            .transpose()?
            .flatten()
            .is_some_and(|limit| age > limit))
    };
    let status = if exceeded("error_after")? {
        FreshnessStatus::Error
    } else if exceeded("warn_after")? {
        FreshnessStatus::Warn
    } else {
        FreshnessStatus::Pass
    };
    Ok((max_loaded_at, snapshotted_at, status))
}

/// Checks the selected sources, printing dbt's lines to `out`; writes `target/sources.json`.
pub fn freshness(
    project: &mut Project,
    selection: &Selection,
    out: Box<dyn Write + Send>,
) -> Result<FreshnessReport, RunError> {
    let started = Instant::now();
    let sources = checked_sources(project, selection)?;
    let console = Console::new(out);
    let session = Session::open(project, "freshness")?;
    console.header(project, session.threads, &session.target_name);
    if sources.is_empty() {
        console.line("Nothing to do. Try checking your model configs and model specification args");
    }
    let total = sources.len();
    let mut results = Vec::new();
    for (i, node) in sources.iter().enumerate() {
        let source_name = node
            .source
            .as_ref()
            .map(|s| s.source_name.clone())
            .unwrap_or_default();
        let what = format!("freshness of {source_name}.{}", node.name);
        console.progress(i + 1, total, &format!("START {what}"), "RUN");
        let began = Instant::now();
        let started_at = now_iso();
        let criteria = criteria(node).unwrap_or(Json::Null);
        let outcome = check(&session, node, &criteria);
        let execution_time = began.elapsed().as_secs_f64();
        let mut result = FreshnessResult {
            unique_id: node.unique_id.clone(),
            status: FreshnessStatus::RuntimeError,
            error: None,
            max_loaded_at: String::new(),
            snapshotted_at: String::new(),
            age_seconds: 0.0,
            criteria,
            started_at,
            completed_at: now_iso(),
            execution_time,
        };
        match outcome {
            Ok((max_loaded_at, snapshotted_at, status)) => {
                result.status = status;
                result.max_loaded_at = iso(max_loaded_at);
                result.snapshotted_at = iso(snapshotted_at);
                result.age_seconds = snapshotted_at - max_loaded_at;
            }
            Err(message) => result.error = Some(message),
        }
        let label = result.status.label();
        console.progress(
            i + 1,
            total,
            &format!("{label} {what}"),
            &format!("{label} in {execution_time:.2}s"),
        );
        results.push(result);
    }
    let elapsed = started.elapsed().as_secs_f64();
    console.line("");
    let whole = elapsed as u64;
    console.line(&format!(
        "Finished running {total} source{} in {} hours {} minutes and {:.2} seconds ({elapsed:.2}s).",
        if total == 1 { "" } else { "s" },
        whole / 3600,
        (whole % 3600) / 60,
        elapsed - (whole - whole % 60) as f64,
    ));
    for (node, r) in sources.iter().zip(&results) {
        match r.status {
            FreshnessStatus::Error => {
                console.line("");
                console.line(&format!(
                    "Failure in source {} ({})",
                    node.name, node.original_file_path
                ));
                console.line("  Status: error");
            }
            FreshnessStatus::RuntimeError => {
                console.line("");
                console.line(&format!("  {}", r.error.clone().unwrap_or_default()));
            }
            _ => {}
        }
    }
    console.line("Done.");
    let report = FreshnessReport { results, elapsed };
    let target_dir = project.root.join(&project.settings.target_path);
    write_sources_json(&report, &target_dir)?;
    Ok(report)
}

/// `sources.json` (v3) of a report.
pub fn sources_json(report: &FreshnessReport, generated_at: &str) -> Json {
    let results: Vec<Json> = report
        .results
        .iter()
        .map(|r| match r.status {
            FreshnessStatus::RuntimeError => json!({
                "unique_id": r.unique_id,
                "error": r.error,
                "status": r.status.as_str(),
            }),
            _ => json!({
                "unique_id": r.unique_id,
                "max_loaded_at": r.max_loaded_at,
                "snapshotted_at": r.snapshotted_at,
                "max_loaded_at_time_ago_in_s": r.age_seconds,
                "status": r.status.as_str(),
                "criteria": r.criteria,
                "adapter_response": {"_message": "OK"},
                "timing": [
                    {"name": "compile", "started_at": r.started_at, "completed_at": r.started_at},
                    {"name": "execute", "started_at": r.started_at, "completed_at": r.completed_at},
                ],
                "thread_id": "Thread-1 (worker)",
                "execution_time": r.execution_time,
            }),
        })
        .collect();
    json!({
        "metadata": crate::run::artifacts::artifact_metadata("sources/v3", generated_at),
        "results": results,
        "elapsed_time": report.elapsed,
    })
}

fn write_sources_json(report: &FreshnessReport, target_dir: &Path) -> Result<(), RunError> {
    let path = target_dir.join("sources.json");
    let err = |e: String| RunError::Write {
        path: path.display().to_string(),
        message: e,
    };
    std::fs::create_dir_all(target_dir).map_err(|e| err(e.to_string()))?;
    let text = serde_json::to_string_pretty(&sources_json(report, &now_iso()))
        .map_err(|e| err(e.to_string()))?;
    std::fs::write(&path, text).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_counts_of_minutes_hours_or_days() {
        let t = |v: Json| threshold_seconds(&v);
        assert_eq!(t(json!({"count": 2, "period": "hour"})), Ok(Some(7200.0)));
        assert_eq!(t(json!({"count": 1, "period": "day"})), Ok(Some(86400.0)));
        assert_eq!(t(json!({"count": null, "period": null})), Ok(None));
        assert!(
            t(json!({"count": 1, "period": "week"}))
                .unwrap_err()
                .contains("'week' is not one of minute, hour, day")
        );
    }

    #[test]
    fn epoch_seconds_print_as_utc_timestamps() {
        assert_eq!(iso(0.5), "1970-01-01T00:00:00.500000+00:00");
    }
}
