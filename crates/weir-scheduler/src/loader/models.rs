//! `models` tasks with `expand: true`: the DAG loader reads the dbt project (through
//! `weir_models::steps`, which links no warehouse) and replaces the task with one task per
//! selected seed, model and snapshot (`<task>.<node>`) and one per node's tests
//! (`<task>.<node>.test`), wired as the dbt graph is. The roots take the models task's
//! upstream dependencies; its downstream tasks wait for every expanded task.
//!
//! A DAG is expanded again when its file changes or any file of its dbt project does
//! ([`Expander`] keeps a fingerprint of names, sizes and mtimes per dbt project).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use weir_core::{Dag, Task, TriggerRule};
use weir_models::steps::{StepOptions, fingerprint, plan_steps};

/// The dbt project of a `models` task when `project_dir` is not set, relative to the project.
const DEFAULT_PROJECT_DIR: &str = "models";

/// Whether `dag` has a `models` task with `expand: true`.
pub fn has_expanding_task(dag: &Dag) -> bool {
    dag.tasks.iter().any(expands)
}

fn expands(task: &Task) -> bool {
    task.task_type == "models" && task.config.get("expand") == Some(&Value::Bool(true))
}

fn dbt_dir(task: &Task, root: &Path) -> (PathBuf, String) {
    let rel = task
        .config
        .get("project_dir")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_PROJECT_DIR)
        .to_string();
    (root.join(&rel), rel)
}

/// `dag` with each `models` task that has `expand: true` replaced by its steps, or the import
/// error of the file (`file:line: task 'x': ...` with dbt's own messages and a hint).
pub fn expand_dag(dag: &Dag, root: &Path) -> Result<Dag, String> {
    if !dag.tasks.iter().any(expands) {
        return Ok(dag.clone());
    }
    let mut tasks: Vec<Task> = Vec::with_capacity(dag.tasks.len());
    // The models task id → the ids of every task it became.
    let mut replaced: HashMap<String, Vec<String>> = HashMap::new();
    let taken: HashSet<&str> = dag.tasks.iter().map(|t| t.task_id.as_str()).collect();
    for task in &dag.tasks {
        if !expands(task) {
            tasks.push(task.clone());
            continue;
        }
        let at = format!("{}:{}: task '{}'", dag.fileloc, task.line, task.task_id);
        let text = |key: &str| task.config.get(key).and_then(Value::as_str);
        for key in ["select", "exclude"] {
            if text(key).is_some_and(|v| v.contains("{{") || v.contains("{%")) {
                return Err(format!(
                    "{at}: `{key}` of an expanded models task is a template\n  hint: with `expand: true` the selection is read when the DAG is parsed; write it without {{{{ }}}}"
                ));
            }
        }
        if task.map_over.is_some() {
            return Err(format!(
                "{at}: `map_over` cannot be combined with `expand: true`\n  hint: remove one of them"
            ));
        }
        let (dir, shown) = dbt_dir(task, root);
        if !dir.join("dbt_project.yml").is_file() {
            return Err(format!(
                "{at}: no dbt project in {shown}/ (no dbt_project.yml)\n  hint: set `project_dir` to the folder that holds dbt_project.yml (default models/)"
            ));
        }
        let words = |key: &str| -> Vec<String> {
            text(key)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        let options = StepOptions {
            command: text("command").unwrap_or("build").to_string(),
            select: words("select"),
            exclude: words("exclude"),
            target: text("target").map(str::to_string),
            // Vars that are templates get their value per run; the rest count when planning.
            vars: task
                .config
                .get("vars")
                .and_then(Value::as_object)
                .map(|vars| {
                    vars.iter()
                        .filter(|(_, v)| !v.to_string().contains("{{"))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        };
        let steps = plan_steps(&dir, &options).map_err(|errors| {
            // dbt's messages (paths relative to the dbt project), indented under the task.
            let errors: Vec<String> = errors.lines().map(|l| format!("  {l}")).collect();
            format!(
                "{at}: the dbt project in {shown}/ does not parse\n{}\n  hint: `weir models parse --project-dir {shown}` shows the same; the DAG is parsed again when a file of the dbt project changes",
                errors.join("\n")
            )
        })?;
        if steps.is_empty() {
            // Nothing selected: a join point, so that downstream tasks still run.
            let mut empty = task.clone();
            empty.task_type = "empty".into();
            empty.config = Map::new();
            tasks.push(empty);
            continue;
        }
        let id = |name: &str| format!("{}.{name}", task.task_id);
        let waited_for: HashSet<&str> = steps
            .iter()
            .flat_map(|s| s.after.iter().map(String::as_str))
            .collect();
        let mut ids = Vec::with_capacity(steps.len());
        for step in &steps {
            let task_id = id(&step.name);
            if taken.contains(task_id.as_str()) {
                return Err(format!(
                    "{at}: expands to task '{task_id}', which the DAG already has\n  hint: rename that task"
                ));
            }
            let mut config = Map::new();
            for key in ["project_dir", "vars", "full_refresh", "target"] {
                if let Some(v) = task.config.get(key) {
                    config.insert(key.into(), v.clone());
                }
            }
            config.insert("command".into(), Value::from(step.command));
            config.insert(
                "nodes".into(),
                Value::Array(step.nodes.iter().map(|n| Value::from(n.as_str())).collect()),
            );
            let root_step = step.after.is_empty();
            let mut expanded = task.clone();
            expanded.task_id = task_id.clone();
            expanded.config = config;
            expanded.depends_on = if root_step {
                task.depends_on.clone()
            } else {
                step.after.iter().map(|a| id(a)).collect()
            };
            if !root_step {
                expanded.trigger_rule = TriggerRule::AllSuccess;
            }
            expanded.group = task.group.clone().or_else(|| Some(task.task_id.clone()));
            // The models task's outlets are updated when its last nodes are built.
            if waited_for.contains(step.name.as_str()) {
                expanded.outlets = Vec::new();
            }
            expanded.doc = Some(format!(
                "dbt {} of {} ({})",
                step.command,
                step.nodes.join(", "),
                task.task_id
            ));
            ids.push(task_id);
            tasks.push(expanded);
        }
        replaced.insert(task.task_id.clone(), ids);
    }
    for task in &mut tasks {
        if task.depends_on.iter().any(|d| replaced.contains_key(d)) {
            let mut seen = BTreeSet::new();
            task.depends_on = task
                .depends_on
                .iter()
                .flat_map(|d| replaced.get(d).cloned().unwrap_or_else(|| vec![d.clone()]))
                .filter(|d| seen.insert(d.clone()))
                .collect();
        }
    }
    let mut out = dag.clone();
    out.tasks = tasks;
    Ok(out)
}

struct Cached {
    /// Fingerprints of the dbt projects the DAG read, by folder.
    fingerprints: Vec<(PathBuf, u64)>,
    result: Result<Dag, String>,
}

/// Expanded DAGs by file, computed again when the file or one of its dbt projects changes.
#[derive(Default)]
pub struct Expander {
    cache: HashMap<String, Cached>,
}

impl Expander {
    /// The expanded `dag` of `file` and whether it was computed again (`file_changed`: the
    /// DAG file itself was parsed again).
    pub fn expand(
        &mut self,
        file: &str,
        dag: &Dag,
        file_changed: bool,
        root: &Path,
        memo: &mut HashMap<PathBuf, u64>,
    ) -> (Result<Dag, String>, bool) {
        if !dag.tasks.iter().any(expands) {
            self.cache.remove(file);
            return (Ok(dag.clone()), false);
        }
        let mut dirs: Vec<PathBuf> = dag
            .tasks
            .iter()
            .filter(|t| expands(t))
            .map(|t| dbt_dir(t, root).0)
            .collect();
        dirs.sort();
        dirs.dedup();
        let fingerprints: Vec<(PathBuf, u64)> = dirs
            .into_iter()
            .map(|d| {
                let f = *memo
                    .entry(d.clone())
                    .or_insert_with(|| fingerprint(&d, &[]));
                (d, f)
            })
            .collect();
        if !file_changed
            && let Some(cached) = self.cache.get(file)
            && cached.fingerprints == fingerprints
        {
            return (cached.result.clone(), false);
        }
        let result = expand_dag(dag, root);
        // A touched file that plans the same tasks changes nothing.
        let changed = file_changed || self.cache.get(file).is_none_or(|c| c.result != result);
        self.cache.insert(
            file.to_string(),
            Cached {
                fingerprints,
                result: result.clone(),
            },
        );
        (result, changed)
    }

    /// Forgets files that left the folder.
    pub fn retain(&mut self, files: &HashSet<&str>) {
        self.cache.retain(|f, _| files.contains(f.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A weir project with a dbt project in models/ holding `models`, and a DAG using it.
    fn project(name: &str, models: &[&str]) -> (PathBuf, Dag) {
        let root = std::env::temp_dir().join(format!("weir-expand-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("models/models")).unwrap();
        std::fs::write(
            root.join("models/dbt_project.yml"),
            "name: p\nversion: '1'\nprofile: p\n",
        )
        .unwrap();
        for m in models {
            std::fs::write(root.join(format!("models/models/{m}.sql")), "select 1").unwrap();
        }
        let yaml = "tasks:\n  - {id: first, type: shell, command: 'true'}\n  - {id: transform, type: models, expand: true, depends_on: [first], retries: 2}\n  - {id: after, type: shell, command: 'true', depends_on: [transform]}\n";
        let dag = weir_spec::parse_dag(
            "dags/d.yaml",
            yaml.as_bytes(),
            &weir_spec::ParseOptions::default(),
        )
        .unwrap();
        (root, dag)
    }

    fn ids(dag: &Dag) -> Vec<(String, Vec<String>)> {
        dag.tasks
            .iter()
            .map(|t| (t.task_id.clone(), t.depends_on.clone()))
            .collect()
    }

    #[test]
    fn a_dag_is_expanded_again_only_when_a_file_of_its_dbt_project_changes() {
        let (root, dag) = project("again", &["a"]);
        let mut expander = Expander::default();
        let mut look = || expander.expand("dags/d.yaml", &dag, false, &root, &mut HashMap::new());
        let (first, changed) = look();
        assert!(changed);
        let first = first.unwrap();
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ids(&first),
            [
                ("first".into(), vec![]),
                ("transform.a".into(), s(&["first"])),
                ("after".into(), s(&["transform.a"])),
            ]
        );
        let task = first.task("transform.a").unwrap();
        assert_eq!(task.retries, 2, "common keys carry over");
        assert_eq!(task.config["nodes"], serde_json::json!(["model.p.a"]));
        assert!(!look().1, "nothing changed");
        // What dbt writes is not the project.
        std::fs::create_dir_all(root.join("models/target")).unwrap();
        std::fs::write(root.join("models/target/run_results.json"), "{}").unwrap();
        assert!(!look().1, "target/ is not the project");
        std::fs::write(root.join("models/models/b.sql"), "select 2").unwrap();
        let (again, changed) = look();
        assert!(changed);
        assert!(again.unwrap().task("transform.b").is_some());
        std::fs::write(root.join("models/models/c.sql"), "{{ ref('nope') }}").unwrap();
        let error = look().0.unwrap_err();
        assert!(
            error.starts_with(
                "dags/d.yaml:3: task 'transform': the dbt project in models/ does not parse"
            ) && error.contains("depends on a node named 'nope'"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
