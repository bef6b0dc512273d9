//! The validated DAG model. `weir-spec` builds it from YAML; the store keeps it as JSON; the
//! scheduler and the workers read it. Every value here has passed validation.

use crate::state::TriggerRule;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// When runs are created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// Manual runs only (`schedule: null`).
    Never,
    /// A five-field cron expression (presets such as `@daily` are stored expanded); `text`
    /// is what the user wrote.
    Cron { expr: String, text: String },
    /// A fixed interval from `start_date` (`every 15m`).
    Every { every: Duration, text: String },
    /// Exactly one run, at `start_date` (`@once`).
    Once,
    /// A run when the asset events queued since the last asset-triggered run meet
    /// `condition` (`schedule: {assets: ...}`); `text` is the condition as listings show it.
    Assets {
        condition: crate::AssetCondition,
        text: String,
    },
}

impl Schedule {
    /// What the user wrote, for listings.
    pub fn text(&self) -> &str {
        match self {
            Schedule::Never => "null",
            Schedule::Cron { text, .. }
            | Schedule::Every { text, .. }
            | Schedule::Assets { text, .. } => text,
            Schedule::Once => "@once",
        }
    }
}

/// One DAG, valid and complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dag {
    pub dag_id: String,
    /// The file it came from, relative to the project when possible.
    pub fileloc: String,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub tags: Vec<String>,
    pub schedule: Schedule,
    /// IANA time zone name; schedules, `ds` and dates without an offset are read in it.
    pub timezone: String,
    /// Microseconds since the epoch.
    pub start_date: Option<i64>,
    pub end_date: Option<i64>,
    pub catchup: bool,
    pub max_active_runs: u32,
    pub max_active_tasks: u32,
    pub is_paused_upon_creation: Option<bool>,
    pub params: Map<String, Value>,
    /// DAG-level callbacks (`on_failure`, `on_success`, ...) as written; run by notifications.
    pub callbacks: Map<String, Value>,
    pub doc: Option<String>,
    /// Tasks in file order; ids are unique and the dependency graph is acyclic.
    pub tasks: Vec<Task>,
}

impl Dag {
    pub fn task(&self, task_id: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.task_id == task_id)
    }

    /// Each task's effective priority, in task order, by Airflow's default weight rule
    /// (`downstream`): its own `priority_weight` plus those of every task downstream of it,
    /// so that the start of a long chain goes before the ends of others.
    pub fn priority_weights(&self) -> Vec<i64> {
        let index: std::collections::HashMap<&str, usize> = self
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.task_id.as_str(), i))
            .collect();
        let mut downstream: Vec<Vec<usize>> = vec![Vec::new(); self.tasks.len()];
        for (i, t) in self.tasks.iter().enumerate() {
            for d in &t.depends_on {
                if let Some(&u) = index.get(d.as_str()) {
                    downstream[u].push(i);
                }
            }
        }
        let mut seen = vec![usize::MAX; self.tasks.len()];
        (0..self.tasks.len())
            .map(|start| {
                let mut weight = 0;
                let mut stack = vec![start];
                seen[start] = start;
                while let Some(i) = stack.pop() {
                    weight += self.tasks[i].priority_weight;
                    for &d in &downstream[i] {
                        if seen[d] != start {
                            seen[d] = start;
                            stack.push(d);
                        }
                    }
                }
                weight
            })
            .collect()
    }

    /// Ids of the tasks that list `task_id` in their `depends_on`.
    pub fn downstream(&self, task_id: &str) -> Vec<&str> {
        self.tasks
            .iter()
            .filter(|t| t.depends_on.iter().any(|d| d == task_id))
            .map(|t| t.task_id.as_str())
            .collect()
    }

    /// The time zone, falling back to UTC if the name stopped resolving since validation.
    pub fn tz(&self) -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get(&self.timezone).unwrap_or(jiff::tz::TimeZone::UTC)
    }
}

/// One task of a DAG: the keys every task has, plus its type's own keys in `config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub task_id: String,
    /// The registered task type (`shell`, `python`, `empty`, ...).
    pub task_type: String,
    /// The type's own keys as written (string values are templates); each task type
    /// deserializes this into its typed config.
    pub config: Map<String, Value>,
    pub depends_on: Vec<String>,
    pub trigger_rule: TriggerRule,
    pub depends_on_past: bool,
    pub retries: u32,
    pub retry_delay: Duration,
    pub retry_exponential_backoff: bool,
    pub max_retry_delay: Option<Duration>,
    pub execution_timeout: Option<Duration>,
    pub pool: String,
    pub pool_slots: u32,
    pub priority_weight: i64,
    pub queue: String,
    pub params: Map<String, Value>,
    pub env: BTreeMap<String, String>,
    /// Task callbacks (`on_failure`, `on_retry`, `on_success`) as written.
    pub callbacks: Map<String, Value>,
    pub sla: Option<Duration>,
    pub doc: Option<String>,
    pub group: Option<String>,
    pub map_over: Option<Value>,
    pub outlets: Vec<String>,
    /// Line of the task in its file, for messages at run time.
    pub line: u32,
}

impl Task {
    /// The delay before try `try_number + 1`, after try `try_number` (1-based) failed:
    /// `retry_delay`, doubled per try with exponential backoff, capped by `max_retry_delay`.
    pub fn retry_delay_after(&self, try_number: u32) -> Duration {
        let base = self.retry_delay;
        let delay = if self.retry_exponential_backoff {
            let factor = 2u32.saturating_pow(try_number.saturating_sub(1).min(30));
            base.saturating_mul(factor)
        } else {
            base
        };
        // Airflow caps backoff at 24 h unless told otherwise.
        let cap = self.max_retry_delay.unwrap_or(Duration::from_secs(86400));
        delay.min(cap)
    }
}

/// Runs whose task instances an in-process worker changed since the scheduler last looked,
/// with what it changed: the worker adds every try it finishes, so that the scheduler
/// evaluates those runs rather than every running run, from the states it already holds.
pub type ChangedRuns =
    std::sync::Arc<std::sync::Mutex<std::collections::HashMap<i64, Vec<TiChange>>>>;

/// A task instance's new state as the worker that ended its try recorded it; `state: None`
/// when the worker does not know it (the try lost its instance), or when the finish recorded
/// more than a state (a control-flow task's [`crate::Decision`]): read it from the store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TiChange {
    pub ti_id: i64,
    pub state: Option<crate::TaskState>,
    pub try_number: i64,
    pub next_retry_at: Option<i64>,
}

/// Tells an in-process scheduler that `change` happened in run `run_pk`.
pub fn note_change(changed: &ChangedRuns, run_pk: i64, change: TiChange) {
    if let Ok(mut runs) = changed.lock() {
        runs.entry(run_pk).or_default().push(change);
    }
}

/// The DAGs a scheduler has parsed, shared with the workers of the same process so that they
/// need not read definitions back from the store.
pub type SharedDags =
    std::sync::Arc<std::sync::RwLock<std::collections::HashMap<String, std::sync::Arc<Dag>>>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_weights_add_up_everything_downstream_as_airflow() {
        let mut a = task();
        a.task_id = "a".into();
        let mut b = task();
        b.task_id = "b".into();
        b.depends_on = vec!["a".into()];
        let mut c = task();
        c.task_id = "c".into();
        c.depends_on = vec!["a".into()];
        c.priority_weight = 5;
        let mut d = task();
        d.task_id = "d".into();
        d.depends_on = vec!["b".into(), "c".into()];
        let dag = Dag {
            dag_id: "w".into(),
            fileloc: "dags/w.yaml".into(),
            description: None,
            owner: None,
            tags: vec![],
            schedule: Schedule::Never,
            timezone: "UTC".into(),
            start_date: None,
            end_date: None,
            catchup: false,
            max_active_runs: 1,
            max_active_tasks: 1,
            is_paused_upon_creation: None,
            params: Map::new(),
            callbacks: Map::new(),
            doc: None,
            tasks: vec![a, b, c, d],
        };
        // d is downstream of a twice (through b and c) and counts once.
        assert_eq!(dag.priority_weights(), [8, 2, 6, 1]);
    }

    fn task() -> Task {
        Task {
            task_id: "t".into(),
            task_type: "empty".into(),
            config: Map::new(),
            depends_on: vec![],
            trigger_rule: TriggerRule::AllSuccess,
            depends_on_past: false,
            retries: 3,
            retry_delay: Duration::from_secs(10),
            retry_exponential_backoff: true,
            max_retry_delay: Some(Duration::from_secs(30)),
            execution_timeout: None,
            pool: "default_pool".into(),
            pool_slots: 1,
            priority_weight: 1,
            queue: "default".into(),
            params: Map::new(),
            env: BTreeMap::new(),
            callbacks: Map::new(),
            sla: None,
            doc: None,
            group: None,
            map_over: None,
            outlets: vec![],
            line: 1,
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let t = task();
        assert_eq!(t.retry_delay_after(1), Duration::from_secs(10));
        assert_eq!(t.retry_delay_after(2), Duration::from_secs(20));
        assert_eq!(t.retry_delay_after(3), Duration::from_secs(30));
        let flat = Task {
            retry_exponential_backoff: false,
            ..task()
        };
        assert_eq!(flat.retry_delay_after(3), Duration::from_secs(10));
    }
}
