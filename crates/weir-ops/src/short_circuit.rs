//! `short_circuit`: when its `condition` renders falsy (or its `script` exits non-zero), skips
//! what is downstream, as Airflow's `ShortCircuitOperator`: with
//! `ignore_downstream_trigger_rules` (the default) every task downstream, whatever its trigger
//! rule; without it only the direct downstream tasks, and trigger rules decide the rest. The
//! task itself succeeds either way.

use crate::{Decide, OpError, Operator, Plan, PlanContext, ScriptEnd, Verdict};
use serde::Deserialize;
use weir_core::{Decision, Skip};

/// The keys of a `short_circuit` task.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShortCircuitConfig {
    /// A template; falsy when it renders to "", false, 0, none, null, [] or {} (any case).
    pub condition: Option<String>,
    /// Bash (inline or a `.sh` file): exit 0 goes on, any other code short-circuits.
    pub script: Option<String>,
    pub ignore_downstream_trigger_rules: Option<bool>,
}

pub struct ShortCircuit;

impl Operator for ShortCircuit {
    fn name(&self) -> &'static str {
        "short_circuit"
    }

    fn plan(&self, cx: &PlanContext<'_>) -> Result<Plan, OpError> {
        let config: ShortCircuitConfig = cx.config()?;
        let gate = Gate {
            task_id: cx.task.task_id.clone(),
            skip: if config.ignore_downstream_trigger_rules.unwrap_or(true) {
                Skip::AllDownstream
            } else {
                Skip::DirectExcept(Vec::new())
            },
        };
        match (&config.condition, &config.script) {
            (Some(condition), _) => {
                let rendered = cx.render(condition)?;
                let why = format!("condition was false ('{}')", rendered.trim());
                Ok(Plan::Decide(Decide::Now(
                    gate.verdict(truthy(&rendered), why),
                )))
            }
            (None, Some(script)) => Ok(Plan::Decide(Decide::Script {
                spec: cx.script_process(script)?,
                read: Box::new(move |end: ScriptEnd<'_>| {
                    let why = format!("script exited with return code {}", end.code);
                    Ok(gate.verdict(end.code == 0, why))
                }),
            })),
            (None, None) => {
                Err(cx.config_error("a short_circuit task needs 'condition' or 'script'"))
            }
        }
    }
}

/// A short_circuit task and what it skips when it closes.
struct Gate {
    task_id: String,
    skip: Skip,
}

impl Gate {
    fn verdict(self, go_on: bool, why: String) -> Verdict {
        if go_on {
            return Verdict {
                decision: None,
                xcom: Some(serde_json::Value::Bool(true)),
                message: format!(
                    "short_circuit '{}': go on with the downstream tasks",
                    self.task_id
                ),
            };
        }
        let reason = format!("short_circuit '{}' {why}", self.task_id);
        let what = match self.skip {
            Skip::AllDownstream => "every downstream task is skipped",
            Skip::DirectExcept(_) => "the direct downstream tasks are skipped",
        };
        Verdict {
            message: format!("{reason}: {what}"),
            xcom: Some(serde_json::Value::Bool(false)),
            decision: Some(Decision {
                skip: self.skip,
                reason,
            }),
        }
    }
}

/// Python's truthiness of a rendered value: "", false, 0, none, null, [] and {} (any case,
/// around spaces) are false; anything else is true.
pub fn truthy(rendered: &str) -> bool {
    let value = rendered.trim().to_ascii_lowercase();
    !matches!(
        value.as_str(),
        "" | "false" | "0" | "none" | "null" | "[]" | "{}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falsy_values_are_pythons() {
        for falsy in [
            "", " ", "false", "False", "0", "None", "null", "[]", "{}", " FALSE\n",
        ] {
            assert!(!truthy(falsy), "{falsy:?}");
        }
        for truthy_value in ["true", "1", "yes", "[1]", "{\"a\": 1}", "no", "0.5"] {
            assert!(truthy(truthy_value), "{truthy_value:?}");
        }
    }

    #[test]
    fn a_closed_gate_skips_by_its_mode_and_an_open_one_decides_nothing() {
        let gate = |skip| Gate {
            task_id: "gate".into(),
            skip,
        };
        let open = gate(Skip::AllDownstream).verdict(true, String::new());
        assert_eq!(open.decision, None);
        let closed =
            gate(Skip::DirectExcept(vec![])).verdict(false, "condition was false ('0')".into());
        assert_eq!(
            closed.decision,
            Some(Decision {
                skip: Skip::DirectExcept(vec![]),
                reason: "short_circuit 'gate' condition was false ('0')".into(),
            })
        );
    }
}
