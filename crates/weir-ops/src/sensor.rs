//! `wait_for`: a sensor. Planning renders what the sensor waits for into a [`Condition`], plain
//! data that whoever checks it next can read: the worker in modes `poke` (between checks the
//! try sleeps in its slot) and `reschedule` (the slot is given back), the triggerer in mode
//! `defer` (no slot, no process: the condition is stored with the task instance). [`check`] is
//! the one place a condition is checked; what it needs of the metadata store and the
//! connections comes through [`Lookup`], so this crate stays without a store.

use crate::{BoxFuture, OpError, Operator, Plan, PlanContext};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use weir_core::{iso, micros, timestamp};
pub use weir_spec::values::SensorMode;

pub struct WaitFor;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    dag_id: Option<String>,
    task_id: Option<String>,
    execution_delta: Option<serde_json::Value>,
    logical_date: Option<String>,
    file: Option<String>,
    sql: Option<String>,
    connection: Option<String>,
    time: Option<String>,
    http: Option<String>,
    mode: Option<SensorMode>,
    poke_interval: Option<serde_json::Value>,
    timeout: Option<serde_json::Value>,
    soft_fail: Option<bool>,
    exponential_backoff: Option<bool>,
    allowed_states: Option<Vec<String>>,
    failed_states: Option<Vec<String>>,
}

/// Airflow's default `poke_interval`.
pub const DEFAULT_POKE_INTERVAL: Duration = Duration::from_secs(60);

/// The longest wait between two checks with `exponential_backoff`.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// What a sensor waits for, rendered: a check needs nothing of the template context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Condition {
    /// Every instance of a task of another DAG's run at a logical date (micros) is in
    /// `allowed`; any in `failed` fails the sensor.
    Task {
        dag_id: String,
        task_id: String,
        logical_date: i64,
        allowed: Vec<String>,
        failed: Vec<String>,
    },
    /// A run of a DAG, by logical date or run id, is in `allowed`; in `failed` fails.
    Run {
        dag_id: String,
        logical_date: Option<i64>,
        run_id: Option<String>,
        allowed: Vec<String>,
        failed: Vec<String>,
    },
    /// A file exists, or something matches a glob.
    File { pattern: String },
    /// The query's first row's first value is truthy (Airflow's `SqlSensor`).
    Sql { connection: String, sql: String },
    /// The clock has passed a time (micros).
    Time { at: i64 },
    /// A GET of the URL answers 2xx.
    Http { url: String },
}

/// A sensor's wait: its condition and how it checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wait {
    pub condition: Condition,
    pub mode: SensorMode,
    pub poke_interval_ms: u64,
    pub timeout_ms: Option<u64>,
    pub soft_fail: bool,
    pub exponential_backoff: bool,
}

/// A wait in progress, as stored with the task instance: since when (micros) it waits and
/// how many checks it made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    pub wait: Wait,
    pub since: i64,
    pub checks: u32,
    /// The XCom value the task succeeds with when the wait ends (`trigger_dag`: its run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xcom: Option<serde_json::Value>,
}

impl Waiting {
    /// A wait that starts at `now` (or goes on from an earlier try's `sensor` record).
    pub fn start(wait: Wait, earlier: Option<&str>, now: i64) -> Waiting {
        let earlier: Option<Waiting> = earlier.and_then(|text| serde_json::from_str(text).ok());
        match earlier {
            Some(w) => Waiting {
                wait,
                since: w.since,
                checks: w.checks,
                xcom: w.xcom,
            },
            None => Waiting {
                wait,
                since: now,
                checks: 0,
                xcom: None,
            },
        }
    }

    pub fn from_json(text: &str) -> Result<Waiting, String> {
        serde_json::from_str(text).map_err(|e| format!("unreadable sensor record: {e}"))
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// When the wait times out (micros), if it has a timeout.
    pub fn deadline(&self) -> Option<i64> {
        self.wait
            .timeout_ms
            .map(|ms| self.since.saturating_add(ms as i64 * 1000))
    }

    pub fn timed_out(&self, now: i64) -> bool {
        self.deadline().is_some_and(|d| now >= d)
    }

    /// The wait after the `checks`-th check: the poke interval, doubled after each check
    /// with `exponential_backoff` (up to an hour), never past the deadline.
    pub fn interval(&self) -> Duration {
        let base = Duration::from_millis(self.wait.poke_interval_ms);
        if !self.wait.exponential_backoff {
            return base;
        }
        let factor = 2u32.saturating_pow(self.checks.saturating_sub(1).min(20));
        base.saturating_mul(factor).min(MAX_BACKOFF.max(base))
    }

    /// When to check next after a check at `now` (micros).
    pub fn next_check(&self, now: i64) -> i64 {
        let next = now.saturating_add(self.interval().as_micros() as i64);
        self.deadline().map_or(next, |d| next.min(d))
    }

    /// What the sensor waits for, for `weir tasks states`, the UI and the log.
    pub fn reason(&self, last: &str, next: i64) -> String {
        format!(
            "waiting for {} ({last}; check {}, next at {})",
            self.wait.condition.describe(),
            self.checks,
            iso(timestamp(next - next.rem_euclid(1_000_000)))
        )
    }
}

/// What one check found.
#[derive(Debug, Clone, PartialEq)]
pub enum Checked {
    /// The condition holds; the text says how.
    Met(String),
    /// Not yet; the text says what was seen.
    NotYet(String),
    /// It can never hold (a failed state, a broken query): the sensor fails.
    Failed(String),
}

/// What checking a condition needs from outside this crate.
pub trait Lookup: Send + Sync {
    /// The states of every instance of `task_id` in `dag_id`'s run at `logical_date` (empty
    /// when there is no such run or task).
    fn task_states<'a>(
        &'a self,
        dag_id: &'a str,
        task_id: &'a str,
        logical_date: i64,
    ) -> BoxFuture<'a, Result<Vec<String>, String>>;
    /// The state of `dag_id`'s run with this run id, or else at this logical date.
    fn run_state<'a>(
        &'a self,
        dag_id: &'a str,
        run_id: Option<&'a str>,
        logical_date: Option<i64>,
    ) -> BoxFuture<'a, Result<Option<String>, String>>;
    /// The first cell of the first row of `sql` on `connection` (`None`: no row), read where
    /// this process keeps its warehouses; `Err` names what failed.
    fn first_value<'a>(
        &'a self,
        connection: &'a str,
        sql: &'a str,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>, String>>;
}

impl Condition {
    /// What the condition watches in the metadata store, if anything: when that task or run
    /// ends, the sensor is checked at once rather than at its next poke.
    pub fn watch_key(&self) -> Option<String> {
        match self {
            Condition::Task {
                dag_id,
                task_id,
                logical_date,
                ..
            } => Some(weir_core::watch_task_key(dag_id, task_id, *logical_date)),
            Condition::Run {
                dag_id,
                run_id: Some(run_id),
                ..
            } => Some(weir_core::watch_run_keys(dag_id, run_id, 0)[0].clone()),
            Condition::Run {
                dag_id,
                logical_date: Some(at),
                ..
            } => Some(weir_core::watch_run_keys(dag_id, "", *at)[1].clone()),
            _ => None,
        }
    }

    /// One line: what the sensor waits for.
    pub fn describe(&self) -> String {
        match self {
            Condition::Task {
                dag_id,
                task_id,
                logical_date,
                allowed,
                ..
            } => format!(
                "task {dag_id}.{task_id} of {} to be {}",
                iso(timestamp(*logical_date)),
                allowed.join(" or ")
            ),
            Condition::Run {
                dag_id,
                run_id,
                logical_date,
                allowed,
                ..
            } => {
                let which = match (run_id, logical_date) {
                    (Some(id), _) => format!("run {id}"),
                    (None, Some(at)) => format!("the run of {}", iso(timestamp(*at))),
                    (None, None) => "a run".into(),
                };
                format!("{which} of DAG {dag_id} to be {}", allowed.join(" or "))
            }
            Condition::File { pattern } => format!("file {pattern}"),
            Condition::Sql { connection, .. } => format!("a truthy row from {connection}"),
            Condition::Time { at } => iso(timestamp(*at)),
            Condition::Http { url } => {
                format!("{} to answer 2xx", weir_core::connection::mask_uri(url))
            }
        }
    }
}

/// Checks `condition` once.
pub async fn check(condition: &Condition, lookup: &dyn Lookup) -> Checked {
    match condition {
        Condition::Task {
            dag_id,
            task_id,
            logical_date,
            allowed,
            failed,
        } => match lookup.task_states(dag_id, task_id, *logical_date).await {
            Err(e) => Checked::NotYet(format!("cannot read {dag_id}.{task_id}: {e}")),
            Ok(states) if states.is_empty() => Checked::NotYet(format!(
                "no instance of {dag_id}.{task_id} at that date yet"
            )),
            Ok(states) => {
                if let Some(bad) = states.iter().find(|s| failed.contains(s)) {
                    Checked::Failed(format!("{dag_id}.{task_id} is {bad}"))
                } else if states.iter().all(|s| allowed.contains(s)) {
                    Checked::Met(format!("{dag_id}.{task_id} is {}", states[0]))
                } else {
                    Checked::NotYet(format!("{dag_id}.{task_id} is {}", states.join(", ")))
                }
            }
        },
        Condition::Run {
            dag_id,
            run_id,
            logical_date,
            allowed,
            failed,
        } => match lookup
            .run_state(dag_id, run_id.as_deref(), *logical_date)
            .await
        {
            Err(e) => Checked::NotYet(format!("cannot read the run of {dag_id}: {e}")),
            Ok(None) => Checked::NotYet(format!("no such run of {dag_id} yet")),
            Ok(Some(state)) if failed.contains(&state) => {
                Checked::Failed(format!("the run of {dag_id} is {state}"))
            }
            Ok(Some(state)) if allowed.contains(&state) => {
                Checked::Met(format!("the run of {dag_id} is {state}"))
            }
            Ok(Some(state)) => Checked::NotYet(format!("the run of {dag_id} is {state}")),
        },
        Condition::File { pattern } => match matching_file(pattern) {
            Some(found) => Checked::Met(format!("found {}", found.display())),
            None => Checked::NotYet(format!("nothing matches {pattern}")),
        },
        Condition::Sql { connection, sql } => check_sql(connection, sql, lookup).await,
        Condition::Time { at } => {
            if micros(Timestamp::now()) >= *at {
                Checked::Met(format!("it is past {}", iso(timestamp(*at))))
            } else {
                Checked::NotYet(format!("not yet {}", iso(timestamp(*at))))
            }
        }
        Condition::Http { url } => check_http(url).await,
    }
}

async fn check_sql(connection: &str, sql: &str, lookup: &dyn Lookup) -> Checked {
    match lookup.first_value(connection, sql).await {
        Err(e) => Checked::Failed(e),
        Ok(Some(value)) if truthy(&value) => Checked::Met(format!("the query returned {value}")),
        Ok(Some(value)) => Checked::NotYet(format!("the query returned {value}")),
        Ok(None) => Checked::NotYet("the query returned no row".into()),
    }
}

/// Airflow's `SqlSensor`: a first value that is not null, 0, "0", false or empty.
fn truthy(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !(s.is_empty() || s == "0" || s.eq_ignore_ascii_case("false")),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

async fn check_http(url: &str) -> Checked {
    let shown = weir_core::connection::mask_uri(url);
    let client = match crate::http::client(Duration::from_secs(30)) {
        Ok(c) => c,
        Err(e) => return Checked::Failed(e),
    };
    match client.get(url).send().await {
        Ok(r) if r.status().is_success() => {
            Checked::Met(format!("{shown} answered {}", r.status()))
        }
        Ok(r) => Checked::NotYet(format!("{shown} answered {}", r.status())),
        Err(e) => Checked::NotYet(format!("{shown}: {e}")),
    }
}

/// The first file that `pattern` names or matches (`*`, `?`, `[...]`, `**`).
fn matching_file(pattern: &str) -> Option<PathBuf> {
    let is_glob = pattern.contains(['*', '?', '[']);
    if !is_glob {
        let path = Path::new(pattern);
        return path.exists().then(|| path.to_path_buf());
    }
    let matcher = globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .ok()?
        .compile_matcher();
    // Walk from the deepest directory before the first wildcard.
    let cut = pattern.find(['*', '?', '[']).unwrap_or(pattern.len());
    let base = match pattern[..cut].rfind('/') {
        Some(slash) => PathBuf::from(&pattern[..slash.max(1)]),
        None => PathBuf::from("."),
    };
    let deep = pattern[cut..].contains("**") || pattern[cut..].contains('/');
    let mut stack = vec![base];
    let mut seen = 0usize;
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            // A bound on the walk: a check must stay cheap.
            if seen > 100_000 {
                return None;
            }
            let path = entry.path();
            let shown = path.strip_prefix("./").unwrap_or(&path);
            if matcher.is_match(shown) {
                return Some(path);
            }
            if deep && entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    None
}

fn duration_of(
    cx: &PlanContext<'_>,
    key: &str,
    value: Option<&serde_json::Value>,
) -> Result<Option<Duration>, OpError> {
    value
        .map(|v| weir_spec::values::duration(v).map_err(|e| cx.config_error(format!("{key}: {e}"))))
        .transpose()
}

/// A time of day (`HH:MM[:SS]`, in the DAG's zone, on the date the run's data interval ends,
/// as Airflow's time sensors) or a full date-time.
fn time_of(cx: &PlanContext<'_>, text: &str) -> Result<Timestamp, OpError> {
    let text = text.trim();
    if let Ok(t) = weir_core::parse_instant(text, &cx.dag.tz()) {
        return Ok(t);
    }
    let time: jiff::civil::Time = text.parse().map_err(|_| {
        cx.config_error(format!(
            "time '{text}' is neither a time of day (06:30) nor a date-time (2026-01-01T06:30:00+09:00)"
        ))
    })?;
    let day = cx.template.data_interval_end.to_zoned(cx.dag.tz()).date();
    day.to_datetime(time)
        .to_zoned(cx.dag.tz())
        .map(|z| z.timestamp())
        .map_err(|e| cx.config_error(format!("time '{text}': {e}")))
}

/// The logical date a DAG sensor looks at: a rendered `logical_date`, else this run's minus
/// `execution_delta`.
pub(crate) fn target_date(
    cx: &PlanContext<'_>,
    logical_date: Option<&str>,
    delta: Option<Duration>,
) -> Result<Timestamp, OpError> {
    if let Some(text) = logical_date {
        let rendered = cx.render(text)?;
        return weir_core::parse_instant(rendered.trim(), &cx.dag.tz())
            .map_err(|e| cx.config_error(format!("logical_date '{}': {e}", rendered.trim())));
    }
    let delta = delta.unwrap_or_default();
    let span = jiff::SignedDuration::try_from(delta)
        .map_err(|e| cx.config_error(format!("execution_delta: {e}")))?;
    cx.template
        .logical_date
        .checked_sub(span)
        .map_err(|e| cx.config_error(format!("execution_delta: {e}")))
}

impl Operator for WaitFor {
    fn name(&self) -> &'static str {
        "wait_for"
    }

    fn plan(&self, cx: &PlanContext<'_>) -> Result<Plan, OpError> {
        let c: Config = cx.config()?;
        let states = |given: &Option<Vec<String>>, default: &[&str]| match given {
            Some(list) => list.clone(),
            None => default.iter().map(|s| s.to_string()).collect(),
        };
        let condition = if let Some(dag_id) = &c.dag_id {
            let dag_id = cx.render(dag_id)?;
            let delta = duration_of(cx, "execution_delta", c.execution_delta.as_ref())?;
            let at = micros(target_date(cx, c.logical_date.as_deref(), delta)?);
            match &c.task_id {
                Some(task_id) => Condition::Task {
                    dag_id,
                    task_id: cx.render(task_id)?,
                    logical_date: at,
                    allowed: states(&c.allowed_states, &["success"]),
                    failed: states(&c.failed_states, &[]),
                },
                None => Condition::Run {
                    dag_id,
                    logical_date: Some(at),
                    run_id: None,
                    allowed: states(&c.allowed_states, &["success"]),
                    failed: states(&c.failed_states, &[]),
                },
            }
        } else if let Some(file) = &c.file {
            let rendered = cx.render(file)?;
            let path = Path::new(rendered.trim());
            let full = if path.is_absolute() {
                path.to_path_buf()
            } else {
                cx.project_dir.join(path)
            };
            Condition::File {
                pattern: full.display().to_string(),
            }
        } else if let Some(sql) = &c.sql {
            let connection = c
                .connection
                .clone()
                .ok_or_else(|| cx.config_error("`sql` needs `connection`"))?;
            Condition::Sql {
                connection,
                sql: cx.render_sql(sql)?,
            }
        } else if let Some(time) = &c.time {
            Condition::Time {
                at: micros(time_of(cx, &cx.render(time)?)?),
            }
        } else if let Some(url) = &c.http {
            Condition::Http {
                url: cx.render(url)?.trim().to_string(),
            }
        } else {
            return Err(cx.config_error("wait_for needs one of dag_id, file, sql, time or http"));
        };
        let poke = duration_of(cx, "poke_interval", c.poke_interval.as_ref())?
            .unwrap_or(DEFAULT_POKE_INTERVAL);
        let timeout = duration_of(cx, "timeout", c.timeout.as_ref())?;
        Ok(Plan::Wait(Wait {
            condition,
            mode: c.mode.unwrap_or(SensorMode::Defer),
            poke_interval_ms: poke.as_millis().max(1) as u64,
            // Airflow's default sensor timeout is a week.
            timeout_ms: Some(
                timeout
                    .unwrap_or(Duration::from_secs(7 * 24 * 3600))
                    .as_millis() as u64,
            ),
            soft_fail: c.soft_fail.unwrap_or(false),
            exponential_backoff: c.exponential_backoff.unwrap_or(false),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(backoff: bool) -> Waiting {
        Waiting {
            wait: Wait {
                condition: Condition::Time { at: 0 },
                mode: SensorMode::Defer,
                poke_interval_ms: 10_000,
                timeout_ms: Some(60_000),
                soft_fail: false,
                exponential_backoff: backoff,
            },
            since: 1_000_000,
            checks: 3,
            xcom: None,
        }
    }

    #[test]
    fn backoff_doubles_and_the_deadline_bounds_the_next_check() {
        assert_eq!(waiting(false).interval(), Duration::from_secs(10));
        assert_eq!(waiting(true).interval(), Duration::from_secs(40));
        // since + 60 s is the deadline: a check at since + 50 s is next at the deadline.
        assert_eq!(waiting(false).next_check(51_000_000), 61_000_000);
        assert!(waiting(false).timed_out(61_000_000));
        assert!(!waiting(false).timed_out(60_999_999));
    }

    #[test]
    fn truthy_is_airflow_sql_sensor_truth() {
        for (v, t) in [
            (serde_json::json!(null), false),
            (serde_json::json!(0), false),
            (serde_json::json!("0"), false),
            (serde_json::json!(""), false),
            (serde_json::json!(2), true),
            (serde_json::json!("yes"), true),
        ] {
            assert_eq!(truthy(&v), t, "{v}");
        }
    }

    #[test]
    fn globs_match_files_below_their_base() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("in/2026")).unwrap();
        let pattern = format!("{}/in/**/*.csv", dir.path().display());
        assert_eq!(matching_file(&pattern), None);
        std::fs::write(dir.path().join("in/2026/a.csv"), "x").unwrap();
        assert_eq!(
            matching_file(&pattern),
            Some(dir.path().join("in/2026/a.csv"))
        );
        let plain = format!("{}/in/2026/a.csv", dir.path().display());
        assert!(matching_file(&plain).is_some());
    }
}
