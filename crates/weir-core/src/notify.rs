//! What a notification says, and how a state change turns its callbacks into outbox messages.
//! Sending them is weir-ops' job; deciding them is the scheduler's and the worker's.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The outbox message kind of a notification.
pub const KIND: &str = "notify";

/// What happened, for the message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// failure, retry, success, sla_miss, or message.
    pub event: String,
    pub dag_id: String,
    pub run_id: Option<String>,
    pub task_id: Option<String>,
    pub try_number: Option<i64>,
    pub state: Option<String>,
    pub logical_date: Option<String>,
    /// The end of the failed try's log.
    pub error: Option<String>,
    pub log_url: Option<String>,
    pub message: Option<String>,
}

/// One outbox payload per notification target in `callbacks` (a list, or one target), so
/// that a target that fails is retried alone and the others are not sent twice.
pub fn messages(callbacks: &Value, event: &Event) -> Vec<Value> {
    let targets = match callbacks {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    };
    targets
        .into_iter()
        .map(|target| serde_json::json!({ "target": target, "event": event }))
        .collect()
}
