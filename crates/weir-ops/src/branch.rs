//! `branch`: follows the chosen direct downstream tasks and skips the others, as Airflow's
//! `BranchPythonOperator` (`skip_all_except`). The choice comes from `choose` (a template
//! rendering to a task id, a comma list or a JSON list) or from the last line a `script`
//! prints. A choice that is not a direct downstream task fails the branch.

use crate::{Decide, OpError, Operator, Plan, PlanContext, ScriptEnd, Verdict};
use serde::Deserialize;
use weir_core::{Decision, Skip};
use weir_spec::values::branch_choice;

/// The keys of a `branch` task.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchConfig {
    /// A template that renders to the chosen task ids.
    pub choose: Option<String>,
    /// Bash (inline or a `.sh` file) whose last line of output holds the chosen ids.
    pub script: Option<String>,
}

pub struct Branch;

impl Operator for Branch {
    fn name(&self) -> &'static str {
        "branch"
    }

    fn plan(&self, cx: &PlanContext<'_>) -> Result<Plan, OpError> {
        let config: BranchConfig = cx.config()?;
        let task_id = cx.task.task_id.clone();
        let downstream: Vec<String> = cx.downstream().into_iter().map(String::from).collect();
        match (&config.choose, &config.script) {
            (Some(choose), _) => {
                let rendered = cx.render(choose)?;
                let verdict =
                    decide(&task_id, &rendered, &downstream).map_err(OpError::Undecided)?;
                Ok(Plan::Decide(Decide::Now(verdict)))
            }
            (None, Some(script)) => Ok(Plan::Decide(Decide::Script {
                spec: cx.script_process(script)?,
                read: Box::new(move |end: ScriptEnd<'_>| {
                    if end.code != 0 {
                        return Err(format!(
                            "branch '{task_id}': its script exited with return code {}",
                            end.code
                        ));
                    }
                    decide(&task_id, end.last_line.unwrap_or(""), &downstream)
                }),
            })),
            (None, None) => Err(cx.config_error("a branch task needs 'choose' or 'script'")),
        }
    }
}

/// The verdict of branch `task_id` whose choice rendered to `text`, given its direct
/// downstream tasks.
fn decide(task_id: &str, text: &str, downstream: &[String]) -> Result<Verdict, String> {
    let chosen = branch_choice(text);
    for id in &chosen {
        if !downstream.contains(id) {
            let choices = if downstream.is_empty() {
                "it has no downstream tasks".to_string()
            } else {
                format!("the choices are {}", downstream.join(", "))
            };
            return Err(format!(
                "branch '{task_id}' chose '{id}', which is not a task directly downstream of it; {choices}"
            ));
        }
    }
    let list = format!("[{}]", chosen.join(", "));
    Ok(Verdict {
        message: format!("branch '{task_id}' chose {list}; the other downstream tasks are skipped"),
        xcom: Some(serde_json::json!(chosen)),
        decision: Some(Decision {
            skip: Skip::DirectExcept(chosen),
            reason: format!("branch '{task_id}' chose {list}"),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_choice_is_an_id_a_comma_list_or_a_list() {
        let cases: &[(&str, &[&str])] = &[
            ("weekday", &["weekday"]),
            ("  weekday \n", &["weekday"]),
            ("a, b", &["a", "b"]),
            ("a,b,a", &["a", "b"]),
            (r#"["a", "b"]"#, &["a", "b"]),
            ("['a', 'b']", &["a", "b"]),
            ("[]", &[]),
            ("", &[]),
            ("None", &[]),
        ];
        for (text, want) in cases {
            assert_eq!(branch_choice(text), *want, "{text:?}");
        }
    }

    #[test]
    fn a_choice_outside_the_direct_downstream_fails_naming_it_and_the_choices() {
        let downstream = vec!["weekday".to_string(), "weekend".to_string()];
        let err = decide("pick", "holiday", &downstream).unwrap_err();
        assert_eq!(
            err,
            "branch 'pick' chose 'holiday', which is not a task directly downstream of it; the choices are weekday, weekend"
        );
        let verdict = decide("pick", "weekend", &downstream).unwrap();
        assert_eq!(
            verdict.decision,
            Some(Decision {
                skip: Skip::DirectExcept(vec!["weekend".into()]),
                reason: "branch 'pick' chose [weekend]".into(),
            })
        );
        assert_eq!(verdict.xcom, Some(serde_json::json!(["weekend"])));
    }
}
