//! Dynamic task mapping, as Airflow's `expand()`: when a mapped task's trigger rule says run,
//! the scheduler renders its `map_over` (a list, a template that renders to a JSON list, or a
//! mapping of them for their cross product) and the store expands its instance into one per
//! item. Rendering goes through `weir-template` with the run's XComs, params, conf and
//! variables; no task-type code runs here.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use weir_core::{Dag, Task};
use weir_store::RunRow;
use weir_template::{Renderer, TemplateContext};

/// What the scheduler's expansion of a mapped task needs besides the task: the run, its
/// XComs (as `ti.xcom_pull` reads them) and the variables.
pub struct MapInput<'a> {
    pub dag: &'a Dag,
    pub task: &'a Task,
    pub run: &'a RunRow,
    pub xcoms: weir_template::Xcoms,
    pub variables: BTreeMap<String, String>,
}

/// The items of a mapped task in `map_index` order, or why there are none that can run: an
/// `Err` names the DAG, the task and what `map_over` gave.
pub fn items(
    renderer: &Renderer,
    input: MapInput<'_>,
    max_map_length: usize,
) -> Result<Vec<Value>, String> {
    let MapInput { dag, task, .. } = &input;
    let Some(map_over) = &task.map_over else {
        return Ok(Vec::new());
    };
    let at = format!(
        "task '{}' in DAG '{}' ({}:{})",
        task.task_id, dag.dag_id, dag.fileloc, task.line
    );
    let ctx = context(&input);
    let list = |value: &Value, what: &str| -> Result<Vec<Value>, String> {
        let rendered = match value {
            Value::String(template) => renderer.render_json(template, &ctx),
            other => renderer.render_value(other, &ctx),
        }
        .map_err(|e| format!("map_over{what} of {at}: {e}"))?;
        match rendered {
            Value::Array(items) => Ok(items),
            other => Err(format!(
                "map_over{what} of {at} must give a list, but it gave {}: {}\nhint: map_over takes a list, a template that renders to a JSON list such as \"{{{{ ti.xcom_pull(task_ids='list_files') }}}}\", or a mapping of them",
                kind(&other),
                excerpt(&other)
            )),
        }
    };
    let items = match map_over {
        Value::Object(keys) => {
            let mut lists = Vec::with_capacity(keys.len());
            for (key, value) in keys {
                lists.push((key, list(value, &format!(".{key}"))?));
            }
            cross_product(&lists, max_map_length, &at)?
        }
        other => list(other, "")?,
    };
    if items.len() > max_map_length {
        return Err(too_many(items.len(), max_map_length, &at));
    }
    Ok(items)
}

/// Every combination of one item per key, the first key outermost (as Airflow's cross
/// product), each as `{key: item, ...}`.
fn cross_product(
    lists: &[(&String, Vec<Value>)],
    max_map_length: usize,
    at: &str,
) -> Result<Vec<Value>, String> {
    let total = lists
        .iter()
        .try_fold(1usize, |n, (_, l)| n.checked_mul(l.len()))
        .unwrap_or(usize::MAX);
    if total > max_map_length {
        return Err(too_many(total, max_map_length, at));
    }
    let mut out = vec![Map::new()];
    for (key, list) in lists {
        out = out
            .into_iter()
            .flat_map(|partial| {
                list.iter().map(move |item| {
                    let mut next = partial.clone();
                    next.insert((*key).clone(), item.clone());
                    next
                })
            })
            .collect();
    }
    Ok(out.into_iter().map(Value::Object).collect())
}

fn too_many(n: usize, max: usize, at: &str) -> String {
    format!(
        "map_over of {at} gave {n} items, more than [core] max_map_length ({max})\nhint: raise max_map_length under [core] in weir.toml (or WEIR__CORE__MAX_MAP_LENGTH), or map over fewer items"
    )
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn excerpt(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        format!("{}...", text.chars().take(77).collect::<String>())
    } else {
        text
    }
}

/// The template context `map_over` renders in: the task's, as its tries see it, without
/// connections and before any try (`try_number` 0).
fn context(input: &MapInput<'_>) -> TemplateContext {
    let MapInput { dag, task, run, .. } = input;
    let run = weir_template::RunFacts {
        run_id: &run.run_id,
        logical_date: run.logical_date,
        data_interval_start: run.data_interval_start,
        data_interval_end: run.data_interval_end,
        conf: &run.conf,
    };
    weir_template::task_context(
        dag,
        task,
        run,
        0,
        input.variables.clone(),
        input.xcoms.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_mapping_of_lists_gives_their_cross_product_first_key_outermost() {
        let (file, region) = ("file".to_string(), "region".to_string());
        let lists = [
            (&file, vec![json!("a"), json!("b")]),
            (&region, vec![json!("kr"), json!("jp"), json!("us")]),
        ];
        let items = cross_product(&lists, 1024, "t").unwrap();
        assert_eq!(items.len(), 6);
        assert_eq!(items[0], json!({"file": "a", "region": "kr"}));
        assert_eq!(items[2], json!({"file": "a", "region": "us"}));
        assert_eq!(items[3], json!({"file": "b", "region": "kr"}));
        let err = cross_product(&lists, 5, "task 't'").unwrap_err();
        assert!(
            err.contains("gave 6 items, more than [core] max_map_length (5)"),
            "{err}"
        );
    }
}
