//! What a control-flow task (`branch`, `short_circuit`, `latest_only`) decided about the tasks
//! downstream of it. The worker records the decision with the task's success, in the same
//! compare-and-set; the scheduler applies it when it evaluates the run, so that the worker
//! never decides what runs next and the scheduler never runs user code.

use serde::{Deserialize, Serialize};

/// A decision and why it was made; `reason` is recorded on every task instance it skips.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub skip: Skip,
    /// As users read it in `weir tasks states`: "branch 'pick' chose [weekday_path]".
    pub reason: String,
}

/// Which downstream tasks a decision skips.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    /// Every direct downstream task except these, and except those that are also downstream
    /// of one of these (a join right after a branch), as Airflow's `skip_all_except`; what
    /// follows from a skipped task is left to its trigger rule. An empty list skips every
    /// direct downstream task (`latest_only` off the latest interval, a `short_circuit` that
    /// respects trigger rules).
    DirectExcept(Vec<String>),
    /// Every task downstream, transitively, whatever its trigger rule (`short_circuit` with
    /// `ignore_downstream_trigger_rules`).
    AllDownstream,
}

impl Decision {
    /// The decision as the store keeps it (JSON text).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A decision read back from the store; `None` for text that is not one.
    pub fn from_json(text: &str) -> Option<Decision> {
        serde_json::from_str(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_survives_the_store() {
        for skip in [Skip::DirectExcept(vec!["a".into()]), Skip::AllDownstream] {
            let d = Decision {
                skip,
                reason: "why".into(),
            };
            assert_eq!(Decision::from_json(&d.to_json()), Some(d));
        }
        assert_eq!(Decision::from_json("not json"), None);
    }
}
