//! Task building: each task's id, type, common keys (with `default_args` applied) and
//! type-specific keys checked against their declarations, and the Jinja syntax of its
//! templates.

use crate::ParseOptions;
use crate::build::{Builder, did_you_mean, field_node, valid_id};
use crate::groups::GroupSpec;
use crate::keys::{self, COMMON_TASK_KEYS, TASK_TYPES};
use crate::yaml::{Kind, Node};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use weir_core::Task;

impl Builder {
    pub(crate) fn tasks(
        &mut self,
        dag_id: &str,
        node: &Node,
        defaults: &[(Node, Node)],
        groups: &[GroupSpec],
        opts: &ParseOptions,
    ) -> Vec<Task> {
        let Kind::Seq(items) = &node.kind else {
            self.at(
                node,
                "tasks",
                format!("'tasks' must be a list, not {}", node.type_name()),
                Some(
                    "tasks:\n    - id: extract\n      type: shell\n      command: ./extract.sh"
                        .into(),
                ),
            );
            return Vec::new();
        };
        if items.is_empty() {
            self.at(
                node,
                "tasks",
                "'tasks' is empty".into(),
                Some("a DAG needs at least one task".into()),
            );
        }
        let mut tasks = Vec::new();
        let mut seen: HashMap<String, u32> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            // A group's default_args come between the task's own keys and the DAG's.
            let group = field_node(item, "group")
                .or_else(|| {
                    defaults
                        .iter()
                        .find(|(k, _)| k.as_str() == Some("group"))
                        .map(|(_, v)| v)
                })
                .and_then(Node::as_str);
            let with_group: Vec<(Node, Node)>;
            let defaults = match groups.iter().find(|g| Some(g.name.as_str()) == group) {
                Some(g) if !g.defaults.is_empty() => {
                    with_group = g.defaults.iter().chain(defaults).cloned().collect();
                    &with_group[..]
                }
                _ => defaults,
            };
            if let Some(task) = self.task(dag_id, item, i, defaults, opts) {
                if let Some(first) = seen.get(&task.task_id) {
                    let id_node = field_node(item, "id").unwrap_or(item);
                    self.at(
                        id_node,
                        &format!("tasks[{i}].id"),
                        format!(
                            "duplicate task id '{}' (first defined on line {first})",
                            task.task_id
                        ),
                        Some("give every task its own id".into()),
                    );
                    continue;
                }
                seen.insert(task.task_id.clone(), task.line);
                tasks.push(task);
            }
        }
        self.resolve_groups(dag_id, &mut tasks, groups, items);
        self.dependencies(&tasks, items);
        tasks
    }

    fn task(
        &mut self,
        dag_id: &str,
        item: &Node,
        i: usize,
        defaults: &[(Node, Node)],
        opts: &ParseOptions,
    ) -> Option<Task> {
        let field = format!("tasks[{i}]");
        let pairs = self.mapping(item, &field, "a task")?;
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k.as_str() == Some(name))
                .map(|(_, v)| v)
        };
        let id = match get("id") {
            Some(v) => self.string(v, &format!("{field}.id"))?,
            None => {
                self.at(
                    item,
                    &field,
                    format!("task #{} has no 'id'", i + 1),
                    Some("add id: a_name".into()),
                );
                return None;
            }
        };
        let line = get("id").map(|v| v.line).unwrap_or(item.line);
        if !valid_id(&id) {
            self.at(
                get("id")?,
                &format!("{field}.id"),
                format!("task id '{id}' may only contain letters, digits, '_', '-' and '.'"),
                None,
            );
        }
        let type_name = match get("type") {
            Some(v) => self.string(v, &format!("{field}.type"))?,
            None => {
                self.at(
                    item,
                    &format!("{field}.type"),
                    format!("task '{id}' has no 'type'"),
                    Some(format!("add type: one of {}", type_names())),
                );
                return None;
            }
        };
        let Some(spec) = TASK_TYPES.iter().find(|t| t.name == type_name) else {
            let hint = did_you_mean(&type_name, TASK_TYPES.iter().map(|t| t.name))
                .unwrap_or_else(|| format!("the task types are {}", type_names()));
            self.at(
                get("type")?,
                &format!("{field}.type"),
                format!("unknown task type '{type_name}' in task '{id}'"),
                Some(hint),
            );
            return None;
        };
        if !opts.available_types.iter().any(|t| t == &type_name) {
            self.at(
                get("type")?,
                &format!("{field}.type"),
                format!("task type '{type_name}' is not available in this build (task '{id}')"),
                Some(format!("available: {}", opts.available_types.join(", "))),
            );
        }
        let common: Vec<&str> = COMMON_TASK_KEYS.iter().map(|k| k.name).collect();
        let own: Vec<&str> = spec.keys.iter().map(|k| k.name).collect();
        let allowed: Vec<&str> = common.iter().chain(own.iter()).copied().collect();
        self.unknown_keys(pairs, &allowed, &format!("in task '{id}'"), &field);
        for (k, v) in pairs {
            let name = k.scalar_text().unwrap_or_default();
            if let Some(key) = spec.key(&name) {
                self.typed(
                    v,
                    &key.ty,
                    &name,
                    &format!("{field}.{name}"),
                    &format!("in task '{id}'"),
                );
            }
        }
        for key in spec.keys.iter().filter(|k| k.required) {
            if get(key.name).is_none() {
                self.at(
                    item,
                    &format!("{field}.{}", key.name),
                    format!("task '{id}' ({type_name}) needs '{}'", key.name),
                    Some(key.doc.to_string()),
                );
            }
        }
        if !spec.one_of.is_empty() {
            let set: Vec<&str> = spec
                .one_of
                .iter()
                .copied()
                .filter(|k| get(k).is_some())
                .collect();
            if set.is_empty() {
                let options = spec
                    .one_of
                    .iter()
                    .map(|k| format!("'{k}'"))
                    .collect::<Vec<_>>()
                    .join(" or ");
                self.at(
                    item,
                    &field,
                    format!("task '{id}' ({type_name}) needs {options}"),
                    None,
                );
            } else if set.len() > 1 && spec.only_one {
                self.at(
                    item,
                    &field,
                    format!(
                        "task '{id}' ({type_name}) takes only one of {}",
                        set.join(", ")
                    ),
                    None,
                );
            }
        }
        // A task's own value wins over default_args.
        let value = |name: &str| {
            get(name).or_else(|| {
                defaults
                    .iter()
                    .find(|(k, _)| k.as_str() == Some(name))
                    .map(|(_, v)| v)
            })
        };
        let f = |name: &str| format!("{field}.{name}");
        let mut config = Map::new();
        for (k, v) in pairs {
            let name = k.scalar_text().unwrap_or_default();
            if own.contains(&name.as_str()) {
                self.templates(v, &f(&name), &id);
                config.insert(name, v.to_json());
            }
        }
        let env: BTreeMap<String, String> = match value("env") {
            Some(v) => {
                let object = self.object(v, &f("env"));
                self.templates(v, &f("env"), &id);
                object
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k,
                            match v {
                                Value::String(s) => s,
                                other => other.to_string(),
                            },
                        )
                    })
                    .collect()
            }
            None => BTreeMap::new(),
        };
        let mut callbacks = Map::new();
        for name in ["on_failure", "on_retry", "on_success"] {
            if let Some(v) = value(name) {
                let context = match get(name) {
                    Some(_) => format!("in task '{id}'"),
                    None => "in default_args".to_string(),
                };
                self.typed(v, &keys::NOTIFICATIONS, name, &f(name), &context);
                callbacks.insert(name.to_string(), v.to_json());
            }
        }
        Some(Task {
            task_id: id.clone(),
            task_type: type_name,
            config,
            depends_on: value("depends_on")
                .map(|v| self.string_list(v, &f("depends_on")))
                .unwrap_or_default(),
            trigger_rule: value("trigger_rule")
                .and_then(|v| self.trigger_rule(v, &f("trigger_rule")))
                .unwrap_or_default(),
            depends_on_past: value("depends_on_past")
                .and_then(|v| self.boolean(v, &f("depends_on_past")))
                .unwrap_or(false),
            retries: value("retries")
                .and_then(|v| self.count(v, &f("retries"), 0))
                .unwrap_or(0),
            retry_delay: value("retry_delay")
                .and_then(|v| self.duration(v, &f("retry_delay")))
                .unwrap_or(Duration::from_secs(300)),
            retry_exponential_backoff: value("retry_exponential_backoff")
                .and_then(|v| self.boolean(v, &f("retry_exponential_backoff")))
                .unwrap_or(false),
            max_retry_delay: value("max_retry_delay")
                .and_then(|v| self.duration(v, &f("max_retry_delay"))),
            execution_timeout: value("execution_timeout")
                .and_then(|v| self.duration(v, &f("execution_timeout"))),
            pool: value("pool")
                .and_then(|v| self.string(v, &f("pool")))
                .unwrap_or_else(|| "default_pool".into()),
            pool_slots: value("pool_slots")
                .and_then(|v| self.count(v, &f("pool_slots"), 1))
                .unwrap_or(1),
            priority_weight: value("priority_weight")
                .and_then(|v| self.integer(v, &f("priority_weight")))
                .unwrap_or(1),
            queue: value("queue")
                .and_then(|v| self.string(v, &f("queue")))
                .unwrap_or_else(|| "default".into()),
            params: value("params")
                .map(|v| self.object(v, &f("params")))
                .unwrap_or_default(),
            env,
            callbacks,
            sla: value("sla").and_then(|v| self.duration(v, &f("sla"))),
            doc: value("doc").and_then(|v| self.string(v, &f("doc"))),
            group: value("group").and_then(|v| self.string(v, &f("group"))),
            map_over: value("map_over").and_then(|v| self.map_over(v, &f("map_over"), &id, dag_id)),
            outlets: value("outlets")
                .map(|v| self.string_list(v, &f("outlets")))
                .unwrap_or_default(),
            line,
        })
    }

    /// `map_over`: a list, a template (that must render to a JSON list when the task runs),
    /// or a mapping of those (their cross product). Anything else is known to be wrong now.
    fn map_over(&mut self, node: &Node, field: &str, task: &str, dag_id: &str) -> Option<Value> {
        let hint = "map_over: [a, b], map_over: \"{{ ti.xcom_pull(task_ids='list_files') }}\", or map_over: {file: [a, b], region: [kr, jp]}";
        let is_template = |n: &Node| {
            n.as_str()
                .is_some_and(|s| s.contains("{{") || s.contains("{%"))
        };
        let fits = |n: &Node| matches!(n.kind, Kind::Seq(_)) || is_template(n);
        match &node.kind {
            _ if fits(node) => {}
            Kind::Map(pairs) if !pairs.is_empty() => {
                for (k, v) in pairs {
                    if !fits(v) {
                        let key = k.scalar_text().unwrap_or_default();
                        self.at(
                            v,
                            &format!("{field}.{key}"),
                            format!(
                                "map_over key '{key}' of task '{task}' in DAG '{dag_id}' must be a list or a template that renders to one, not {}",
                                v.type_name()
                            ),
                            Some(hint.into()),
                        );
                    }
                }
            }
            _ => {
                let what = match &node.kind {
                    Kind::Str(s) => format!("the string '{s}'"),
                    Kind::Map(_) => "an empty mapping".to_string(),
                    _ => node.type_name().to_string(),
                };
                self.at(
                    node,
                    field,
                    format!(
                        "map_over of task '{task}' in DAG '{dag_id}' must be a list, a template that renders to a list, or a mapping of lists, not {what}"
                    ),
                    Some(hint.into()),
                );
                return None;
            }
        }
        self.templates(node, field, task);
        Some(node.to_json())
    }

    /// Checks the Jinja syntax of every string inside `node`.
    fn templates(&mut self, node: &Node, field: &str, task: &str) {
        match &node.kind {
            Kind::Str(s) => {
                if let Err((message, line)) = weir_template::check_syntax(s) {
                    // A block scalar's position is where its text starts, so lines add up.
                    let at = Node {
                        line: node.line + line.saturating_sub(1),
                        col: node.col,
                        kind: Kind::Null,
                    };
                    self.at(&at, field, format!("template syntax error in '{}' of task '{task}': {message}", field.rsplit('.').next().unwrap_or(field)), Some("Jinja needs balanced {{ }} and {% %}; write {{ '{{' }} for a literal brace".into()));
                }
            }
            Kind::Seq(items) => items.iter().for_each(|n| self.templates(n, field, task)),
            Kind::Map(pairs) => pairs
                .iter()
                .for_each(|(_, v)| self.templates(v, field, task)),
            _ => {}
        }
    }
}

fn type_names() -> String {
    TASK_TYPES
        .iter()
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ")
}
