//! Checks across the DAGs of one folder: a `trigger_dag` task must name a DAG of the folder,
//! and a `wait_for` sensor on another DAG (or one of its tasks) must name ones that exist.
//! Only plain names are checked: a templated `dag_id` is known at run time only.

use std::collections::BTreeMap;

use weir_core::Dag;

use crate::SpecError;
use crate::did_you_mean;

/// Every cross-DAG problem of `dags` (the whole folder), in file then task order.
pub fn cross_dag_errors(dags: &[Dag]) -> Vec<SpecError> {
    let by_id: BTreeMap<&str, &Dag> = dags.iter().map(|d| (d.dag_id.as_str(), d)).collect();
    let ids: Vec<&str> = by_id.keys().copied().collect();
    let mut errors = Vec::new();
    for dag in dags {
        for (index, task) in dag.tasks.iter().enumerate() {
            let kind = match task.task_type.as_str() {
                "trigger_dag" => "triggers",
                "wait_for" => "waits for",
                _ => continue,
            };
            let Some(target) = task.config.get("dag_id").and_then(|v| v.as_str()) else {
                continue;
            };
            if target.contains("{{") || target.contains("{%") {
                continue;
            }
            let error = |field: &str, message: String, hint: String| SpecError {
                file: dag.fileloc.clone(),
                line: task.line,
                column: 0,
                field: Some(format!("tasks[{index}].{field}")),
                message,
                hint: Some(hint),
            };
            let Some(other) = by_id.get(target) else {
                let hint = match did_you_mean(target, ids.iter().copied()) {
                    Some(close) => close,
                    None => "dag_id must name a DAG of the DAG folder".to_string(),
                };
                errors.push(error(
                    "dag_id",
                    format!(
                        "task '{}' of DAG '{}' {kind} DAG '{target}', which is not in the DAG folder",
                        task.task_id, dag.dag_id
                    ),
                    hint,
                ));
                continue;
            };
            if task.task_type != "wait_for" {
                continue;
            }
            let Some(wanted) = task.config.get("task_id").and_then(|v| v.as_str()) else {
                continue;
            };
            if wanted.contains("{{") || other.task(wanted).is_some() {
                continue;
            }
            let names: Vec<&str> = other.tasks.iter().map(|t| t.task_id.as_str()).collect();
            let hint = match did_you_mean(wanted, names.iter().copied()) {
                Some(close) => close,
                None => format!("DAG '{target}' ({}) has no such task", other.fileloc),
            };
            errors.push(error(
                "task_id",
                format!(
                    "task '{}' of DAG '{}' waits for task '{wanted}' of DAG '{target}', which has no such task",
                    task.task_id, dag.dag_id
                ),
                hint,
            ));
        }
    }
    errors
}
