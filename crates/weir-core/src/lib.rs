//! weir-core: the vocabulary every other crate speaks.
//!
//! Owns the validated DAG model ([`Dag`], [`Task`]), the task and run state machines
//! ([`TaskState`], [`RunState`], [`TriggerRule`]), durations, and the time model: schedules,
//! data intervals and Airflow's logical-date rules ([`timetable`]).
//!
//! Must not know about files, YAML, SQL, processes or HTTP: it is pure data and pure functions,
//! so that the spec parser, the store, the scheduler and the workers can all depend on it.

pub mod dag;
pub mod duration;
pub mod state;
pub mod timetable;

pub use dag::{Dag, Schedule, Task};
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
