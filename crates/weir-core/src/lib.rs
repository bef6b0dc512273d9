//! weir-core: the vocabulary every other crate speaks.
//!
//! Owns the validated DAG model ([`Dag`], [`Task`]), the task and run state machines
//! ([`TaskState`], [`RunState`], [`TriggerRule`]), durations, and the time model: schedules,
//! data intervals and Airflow's logical-date rules ([`timetable`]).
//!
//! Must not know about files, YAML, SQL, processes or HTTP: it is pure data and pure functions,
//! so that the spec parser, the store, the scheduler and the workers can all depend on it.

pub mod asset;
pub mod connection;
pub mod dag;
pub mod decision;
pub mod duration;
pub mod notify;
pub mod state;
pub mod timetable;

pub use asset::AssetCondition;
pub use dag::{ChangedRuns, Dag, Schedule, SharedDags, Task, TiChange, note_change};
pub use decision::{Decision, Skip};
pub use duration::{format_duration, parse_duration};
pub use state::{RunState, RunType, TaskState, TriggerRule};
pub use timetable::{DataInterval, Timetable};

/// Microseconds since the Unix epoch: how every instant is stored and passed between crates.
pub type Micros = i64;

/// The instant `ts` as microseconds since the epoch.
pub fn micros(ts: jiff::Timestamp) -> Micros {
    ts.as_microsecond()
}

/// The instant `us` microseconds after the epoch (clamped into jiff's supported range).
pub fn timestamp(us: Micros) -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(us).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// Now, as microseconds since the epoch.
pub fn now_micros() -> Micros {
    micros(jiff::Timestamp::now())
}

/// An instant as Python's `isoformat()` writes it in UTC: `2026-01-15T00:00:00+00:00`, with
/// `.ffffff` only when there are microseconds.
pub fn iso(ts: jiff::Timestamp) -> String {
    let us = ts.subsec_microsecond();
    let base = ts.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    if us == 0 {
        format!("{base}+00:00")
    } else {
        format!("{base}.{us:06}+00:00")
    }
}

/// An XCom's value from its stored text: JSON, or the text itself as a string when it is not
/// JSON (a shell task's last line).
pub fn xcom_value(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_string()))
}

/// Airflow's run id: `scheduled__2026-01-15T00:00:00+00:00`.
pub fn run_id(run_type: RunType, logical_date: jiff::Timestamp) -> String {
    format!("{}__{}", run_type.as_str(), iso(logical_date))
}

/// `<logs>/<dag>/<run>/<task>.<try>.log` (an item of a mapped task:
/// `<task>.map_index=<n>.<try>.log`): where each try writes its log. One folder per run, not
/// per task: a folder per task cost each try a second inode to allocate, the largest part of
/// a short shell try's own cost on a journal-less ext4. Task ids have no `=`, so the names
/// cannot collide.
pub fn log_path(
    base: &std::path::Path,
    dag_id: &str,
    run_id: &str,
    task_id: &str,
    map_index: i64,
    try_number: i64,
) -> std::path::PathBuf {
    let file = if map_index >= 0 {
        format!("{task_id}.map_index={map_index}.{try_number}.log")
    } else {
        format!("{task_id}.{try_number}.log")
    };
    base.join(dag_id).join(run_id).join(file)
}

/// The environment variable that marks every process of one try, so a reaper can find what a
/// dead worker's task left running even when it left its process group.
pub const TRY_TAG_ENV: &str = "WEIR_TRY_TAG";

/// The value of [`TRY_TAG_ENV`] for try `try_number` of task instance `ti_id` on `worker`.
pub fn try_tag(worker: &str, ti_id: i64, try_number: i64) -> String {
    format!("{worker}/{ti_id}/{try_number}")
}

/// What a sensor watching a task instance records as its `sensor_key`: the task of a DAG's
/// run at a logical date (micros). The store brings such a sensor's check forward when an
/// instance with this key ends.
pub fn watch_task_key(dag_id: &str, task_id: &str, logical_date: i64) -> String {
    format!("task:{dag_id}:{task_id}:{logical_date}")
}

/// The `sensor_key`s of a run: by run id (`trigger_dag` waits for its run) and by logical
/// date (an external-DAG sensor).
pub fn watch_run_keys(dag_id: &str, run_id: &str, logical_date: i64) -> [String; 2] {
    [
        format!("run:{dag_id}:{run_id}"),
        format!("run:{dag_id}@{logical_date}"),
    ]
}

/// Like [`parse_instant`], but a plain date means the last instant of that day in `tz`, so
/// `--end 2026-01-15` includes every interval that starts on the 15th.
pub fn parse_instant_inclusive(
    text: &str,
    tz: &jiff::tz::TimeZone,
) -> Result<jiff::Timestamp, String> {
    match text.trim().parse::<jiff::civil::Date>() {
        Ok(date) => {
            let next = date
                .tomorrow()
                .map_err(|e| format!("'{text}' has no next day: {e}"))?;
            let next = parse_instant(&next.to_string(), tz)?;
            Ok(next - jiff::SignedDuration::from_nanos(1))
        }
        Err(_) => parse_instant(text, tz),
    }
}

/// Reads a date or time as users type it: `2026-01-15` (midnight), `2026-01-15 03:00`,
/// `2026-01-15T03:00:00` (all in `tz`), or RFC 3339 with an offset (`...Z`, `...+09:00`).
pub fn parse_instant(text: &str, tz: &jiff::tz::TimeZone) -> Result<jiff::Timestamp, String> {
    let text = text.trim();
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Ok(ts);
    }
    let civil = if let Ok(date) = text.parse::<jiff::civil::Date>() {
        date.to_datetime(jiff::civil::Time::midnight())
    } else if let Ok(dt) = text.replace(' ', "T").parse::<jiff::civil::DateTime>() {
        dt
    } else {
        return Err(format!(
            "'{text}' is not a date or time (use 2026-01-15, 2026-01-15T03:00:00 or 2026-01-15T03:00:00+09:00)"
        ));
    };
    tz.to_ambiguous_zoned(civil)
        .compatible()
        .map(|z| z.timestamp())
        .map_err(|e| format!("'{text}' cannot be placed in the time zone: {e}"))
}
