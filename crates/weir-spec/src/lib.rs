//! weir-spec: YAML DAG files to validated [`weir_core::Dag`]s.
//!
//! Owns the DAG file format: [`parse_dag`] reads one file to a raw tree with positions
//! ([`yaml`]), then builds and checks it, reporting every problem at once as [`SpecError`]s
//! with file, line, field and a hint. The key declarations ([`TASK_TYPES`],
//! [`COMMON_TASK_KEYS`], [`DAG_KEYS`], each key with its [`Type`]) are the single source for
//! validation, the JSON Schema ([`json_schema`]) and the DAG reference
//! ([`reference_markdown`]); [`values`] holds the closed value sets as the Rust enums the
//! operators deserialize into.
//!
//! Must not know about the file system or the network: callers pass `(path, bytes)`.

mod keys;
mod reference;
mod schema;
pub mod values;
pub mod yaml;

pub use keys::{
    COMMON_TASK_KEYS, DAG_KEYS, DEFAULT_ARGS_KEYS, KeyDoc, NOTIFICATION_KEYS, TASK_TYPES,
    TaskTypeDoc, Type, task_type,
};
pub use reference::{EXAMPLE_DAG, reference_markdown};
pub use schema::json_schema;

use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;
use weir_core::{Dag, Schedule, Task, TriggerRule};
use yaml::{Kind, Node};

/// What the caller decides about parsing.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Time zone of DAGs that name none.
    pub default_timezone: String,
    /// Task types this build can run.
    pub available_types: Vec<String>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            default_timezone: "UTC".into(),
            available_types: TASK_TYPES.iter().map(|t| t.name.to_string()).collect(),
        }
    }
}

/// One problem in a DAG file.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    pub file: String,
    /// 1-based; 0 when unknown.
    pub line: u32,
    pub column: u32,
    /// Where in the document, e.g. `tasks[2].depends_on`.
    pub field: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem of one file, sorted by line; never empty.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

/// Parses and validates one DAG file.
pub fn parse_dag(path: &str, bytes: &[u8], opts: &ParseOptions) -> Result<Dag, SpecErrors> {
    let mut b = Builder {
        file: path.to_string(),
        errors: Vec::new(),
    };
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let at = e.valid_up_to();
            let line = bytes[..at].iter().filter(|&&c| c == b'\n').count() as u32 + 1;
            b.error(
                line,
                None,
                format!("file is not valid UTF-8 (byte 0x{:02x})", bytes[at]),
                Some("save the file as UTF-8".into()),
            );
            return Err(b.finish());
        }
    };
    let root = match yaml::parse(text) {
        Ok(Some(root)) => root,
        Ok(None) => {
            b.error(
                1,
                None,
                "file is empty".into(),
                Some("a DAG file needs at least a 'tasks:' list".into()),
            );
            return Err(b.finish());
        }
        Err(e) => {
            b.errors.push(SpecError {
                file: path.into(),
                line: e.line,
                column: e.col,
                field: None,
                message: format!("invalid YAML: {}", e.message),
                hint: Some(
                    "check the indentation and quoting on this line and the one before".into(),
                ),
            });
            return Err(b.finish());
        }
    };
    let dag = b.dag(path, &root, opts);
    if b.errors.is_empty()
        && let Some(dag) = dag
    {
        return Ok(dag);
    }
    Err(b.finish())
}

struct Builder {
    file: String,
    errors: Vec<SpecError>,
}

impl Builder {
    fn error(&mut self, line: u32, field: Option<String>, message: String, hint: Option<String>) {
        self.errors.push(SpecError {
            file: self.file.clone(),
            line,
            column: 0,
            field,
            message,
            hint,
        });
    }

    fn at(&mut self, node: &Node, field: &str, message: String, hint: Option<String>) {
        self.errors.push(SpecError {
            file: self.file.clone(),
            line: node.line,
            column: node.col,
            field: Some(field.to_string()),
            message,
            hint,
        });
    }

    fn finish(mut self) -> SpecErrors {
        self.errors.sort_by_key(|e| (e.line, e.column));
        // A default_args value is checked once per task that takes it: say it once.
        self.errors.dedup();
        SpecErrors(self.errors)
    }

    /// The pairs of a mapping node, or an error.
    fn mapping<'a>(
        &mut self,
        node: &'a Node,
        field: &str,
        what: &str,
    ) -> Option<&'a [(Node, Node)]> {
        match &node.kind {
            Kind::Map(pairs) => Some(pairs),
            _ => {
                self.at(
                    node,
                    field,
                    format!("{what} must be a mapping of keys, not {}", node.type_name()),
                    None,
                );
                None
            }
        }
    }

    /// Reports keys not in `allowed`, with a did-you-mean hint.
    fn unknown_keys(
        &mut self,
        pairs: &[(Node, Node)],
        allowed: &[&str],
        context: &str,
        field: &str,
    ) {
        for (k, _) in pairs {
            let name = k.scalar_text().unwrap_or_default();
            if allowed.contains(&name.as_str()) {
                continue;
            }
            let hint = keys::AIRFLOW_NAMES
                .iter()
                .find(|(airflow, ours)| *airflow == name && allowed.contains(ours))
                .map(|(_, ours)| format!("weir calls it '{ours}'"))
                .or_else(|| did_you_mean(&name, allowed.iter().copied()));
            let field = if field.is_empty() {
                name.clone()
            } else {
                format!("{field}.{name}")
            };
            self.at(k, &field, format!("unknown key '{name}' {context}"), hint);
        }
    }

    fn dag(&mut self, path: &str, root: &Node, opts: &ParseOptions) -> Option<Dag> {
        let Kind::Map(pairs) = &root.kind else {
            self.at(
                root,
                "",
                format!(
                    "a DAG file must be a mapping of keys (dag_id, schedule, tasks, ...), not {}",
                    root.type_name()
                ),
                None,
            );
            return None;
        };
        let allowed: Vec<&str> = DAG_KEYS.iter().map(|k| k.name).collect();
        self.unknown_keys(pairs, &allowed, "at the top level", "");
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k.as_str() == Some(name))
                .map(|(_, v)| v)
        };

        let stem = path.rsplit('/').next().unwrap_or(path);
        let stem = stem
            .strip_suffix(".yaml")
            .or_else(|| stem.strip_suffix(".yml"))
            .unwrap_or(stem);
        let dag_id = match get("dag_id") {
            Some(v) => self.string(v, "dag_id").unwrap_or_default(),
            None => stem.to_string(),
        };
        if !dag_id.is_empty() && !valid_id(&dag_id) {
            let node = get("dag_id").unwrap_or(root);
            self.at(
                node,
                "dag_id",
                format!("dag_id '{dag_id}' may only contain letters, digits, '_', '-' and '.'"),
                Some("rename the file or set dag_id".into()),
            );
        }

        let timezone = match get("timezone") {
            Some(v) => self.timezone(v).unwrap_or_else(|| "UTC".into()),
            None => {
                let tz = opts.default_timezone.clone();
                if jiff::tz::TimeZone::get(&tz).is_err() {
                    "UTC".into()
                } else {
                    tz
                }
            }
        };
        let tz = jiff::tz::TimeZone::get(&timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        let schedule = match get("schedule") {
            Some(v) => self.schedule(v),
            None => Schedule::Never,
        };
        let start_date = get("start_date").and_then(|v| self.instant(v, "start_date", &tz));
        let end_date = get("end_date").and_then(|v| self.instant(v, "end_date", &tz));
        if let (Some(s), Some(e)) = (start_date, end_date)
            && e < s
        {
            let node = get("end_date").unwrap_or(root);
            self.at(
                node,
                "end_date",
                "end_date is before start_date".into(),
                None,
            );
        }
        if matches!(schedule, Schedule::Once | Schedule::Every { .. }) && start_date.is_none() {
            let node = get("schedule").unwrap_or(root);
            self.at(
                node,
                "schedule",
                format!("schedule '{}' needs a start_date", schedule.text()),
                Some("add start_date: 2026-01-01".into()),
            );
        }
        let tags = match get("tags") {
            Some(v) => self.string_list(v, "tags"),
            None => Vec::new(),
        };
        let mut callbacks = Map::new();
        for name in ["on_failure", "on_success", "on_retry", "sla_miss"] {
            if let Some(v) = get(name) {
                self.typed(v, &keys::NOTIFICATIONS, name, name, "at the top level");
                callbacks.insert(name.to_string(), v.to_json());
            }
        }
        let defaults = match get("default_args") {
            Some(v) => match self.mapping(v, "default_args", "default_args") {
                Some(pairs) => {
                    let allowed: Vec<&str> = COMMON_TASK_KEYS
                        .iter()
                        .map(|k| k.name)
                        .filter(|n| *n != "id" && *n != "type")
                        .collect();
                    self.unknown_keys(pairs, &allowed, "in default_args", "default_args");
                    pairs.to_vec()
                }
                None => Vec::new(),
            },
            None => Vec::new(),
        };
        let tasks = match get("tasks") {
            Some(v) => self.tasks(v, &defaults, opts),
            None => {
                self.at(
                    root,
                    "tasks",
                    "missing 'tasks'".into(),
                    Some(
                        "add a list of tasks: tasks: [{id: hello, type: shell, command: echo hi}]"
                            .into(),
                    ),
                );
                Vec::new()
            }
        };
        Some(Dag {
            dag_id,
            fileloc: path.to_string(),
            description: get("description").and_then(|v| self.string(v, "description")),
            owner: get("owner").and_then(|v| self.string(v, "owner")),
            tags,
            schedule,
            timezone,
            start_date: start_date.map(|t| t.as_microsecond()),
            end_date: end_date.map(|t| t.as_microsecond()),
            catchup: get("catchup")
                .and_then(|v| self.boolean(v, "catchup"))
                .unwrap_or(false),
            max_active_runs: get("max_active_runs")
                .and_then(|v| self.count(v, "max_active_runs", 1))
                .unwrap_or(16),
            max_active_tasks: get("max_active_tasks")
                .and_then(|v| self.count(v, "max_active_tasks", 1))
                .unwrap_or(16),
            is_paused_upon_creation: get("is_paused_upon_creation")
                .and_then(|v| self.boolean(v, "is_paused_upon_creation")),
            params: get("params")
                .map(|v| self.object(v, "params"))
                .unwrap_or_default(),
            callbacks,
            doc: get("doc").and_then(|v| self.string(v, "doc")),
            tasks,
        })
    }

    fn tasks(&mut self, node: &Node, defaults: &[(Node, Node)], opts: &ParseOptions) -> Vec<Task> {
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
            if let Some(task) = self.task(item, i, defaults, opts) {
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
        self.dependencies(&tasks, items);
        tasks
    }

    fn task(
        &mut self,
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
            map_over: value("map_over").map(Node::to_json),
            outlets: value("outlets")
                .map(|v| self.string_list(v, &f("outlets")))
                .unwrap_or_default(),
            line,
        })
    }

    /// Unknown upstream ids, self-dependencies and cycles.
    fn dependencies(&mut self, tasks: &[Task], items: &[Node]) {
        let ids: Vec<&str> = tasks.iter().map(|t| t.task_id.as_str()).collect();
        let node_of = |task: &Task| {
            items.iter().find(|n| {
                n.line <= task.line
                    && field_node(n, "id")
                        .is_some_and(|id| id.as_str() == Some(task.task_id.as_str()))
            })
        };
        for task in tasks {
            for dep in &task.depends_on {
                let at = node_of(task)
                    .and_then(|n| field_node(n, "depends_on"))
                    .cloned()
                    .unwrap_or(Node {
                        line: task.line,
                        col: 0,
                        kind: Kind::Null,
                    });
                if dep == &task.task_id {
                    self.at(
                        &at,
                        "depends_on",
                        format!("task '{}' depends on itself", task.task_id),
                        None,
                    );
                } else if !ids.contains(&dep.as_str()) {
                    let hint = did_you_mean(dep, ids.iter().copied())
                        .or_else(|| Some(format!("the tasks are {}", ids.join(", "))));
                    self.at(
                        &at,
                        "depends_on",
                        format!("task '{}' depends on unknown task '{dep}'", task.task_id),
                        hint,
                    );
                }
            }
        }
        if let Some(cycle) = find_cycle(tasks) {
            let first = tasks
                .iter()
                .find(|t| t.task_id == cycle[0])
                .map(|t| t.line)
                .unwrap_or(0);
            self.error(
                first,
                Some("depends_on".into()),
                format!("dependency cycle: {}", cycle.join(" -> ")),
                Some("a DAG cannot depend on itself; remove one of these dependencies".into()),
            );
        }
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

    /// Checks `node` against a declared type, reporting each mismatch once: `key` is how the
    /// message names the value (`save_to.mode`), `context` where it is (`in task 'load'`).
    /// Returns whether the value fits.
    fn typed(&mut self, node: &Node, ty: &Type, key: &str, field: &str, context: &str) -> bool {
        let wrong = |b: &mut Self, hint: Option<String>| {
            let shown = match node.scalar_text() {
                Some(text) => format!("'{text}'"),
                None => node.type_name().to_string(),
            };
            b.at(
                node,
                field,
                format!("'{key}' {context} must be {}, not {shown}", ty.describe()),
                hint,
            );
            false
        };
        match (ty, &node.kind) {
            (Type::Any, _) => true,
            (Type::Null, Kind::Null) => true,
            (Type::Str | Type::Template, Kind::Str(_)) => true,
            (Type::Bool, Kind::Bool(_)) => true,
            (Type::Int, Kind::Int(_)) => true,
            (Type::Count(min), Kind::Int(n)) => {
                if n < min {
                    self.at(
                        node,
                        field,
                        format!("'{key}' {context} must be at least {min}, not {n}"),
                        None,
                    );
                    return false;
                }
                true
            }
            (Type::Number, Kind::Int(_) | Kind::Float(_)) => true,
            (Type::Duration, Kind::Int(_) | Kind::Float(_) | Kind::Str(_)) => {
                match values::duration(&node.to_json()) {
                    Ok(_) => true,
                    Err(e) => {
                        self.at(
                            node,
                            field,
                            format!("'{key}' {context} is not a duration: {e}"),
                            Some("use 30s, 5m, 1h30m, 2d or a number of seconds".into()),
                        );
                        false
                    }
                }
            }
            (Type::Enum { names, ignore_case }, Kind::Str(text)) => {
                let known = names
                    .iter()
                    .any(|n| n == text || (*ignore_case && n.eq_ignore_ascii_case(text)));
                if !known {
                    let hint = values::UnknownValue {
                        value: text.clone(),
                        allowed: names,
                    }
                    .hint();
                    self.at(
                        node,
                        field,
                        format!("unknown value '{text}' for '{key}' {context}"),
                        Some(hint),
                    );
                }
                known
            }
            (Type::List(item), Kind::Seq(items)) => {
                let mut ok = true;
                for (i, n) in items.iter().enumerate() {
                    ok &= self.typed(
                        n,
                        item,
                        &format!("{key}[{i}]"),
                        &format!("{field}[{i}]"),
                        context,
                    );
                }
                ok
            }
            (Type::Map(value), Kind::Map(pairs)) => {
                let mut ok = true;
                for (k, v) in pairs {
                    let name = k.scalar_text().unwrap_or_default();
                    ok &= self.typed(
                        v,
                        value,
                        &format!("{key}.{name}"),
                        &format!("{field}.{name}"),
                        context,
                    );
                }
                ok
            }
            (Type::Object(keys), Kind::Map(pairs)) => {
                let allowed: Vec<&str> = keys.iter().map(|k| k.name).collect();
                let before = self.errors.len();
                self.unknown_keys(pairs, &allowed, &format!("in '{key}' {context}"), field);
                for (k, v) in pairs {
                    let name = k.scalar_text().unwrap_or_default();
                    if let Some(decl) = keys.iter().find(|d| d.name == name) {
                        self.typed(
                            v,
                            &decl.ty,
                            &format!("{key}.{name}"),
                            &format!("{field}.{name}"),
                            context,
                        );
                    }
                }
                for decl in keys.iter().filter(|d| d.required) {
                    if !pairs.iter().any(|(k, _)| k.as_str() == Some(decl.name)) {
                        self.at(
                            node,
                            field,
                            format!("'{key}' {context} needs '{}'", decl.name),
                            Some(decl.doc.to_string()),
                        );
                    }
                }
                self.errors.len() == before
            }
            (Type::OneOf(types), _) => {
                // The first alternative of the value's shape decides; a string fits a string.
                match types.iter().find(|t| shape_fits(t, &node.kind)) {
                    Some(t) => self.typed(node, t, key, field, context),
                    None => wrong(self, None),
                }
            }
            (Type::Enum { names, .. }, _) => {
                wrong(self, Some(format!("allowed: {}", names.join(", "))))
            }
            (Type::Duration, _) => wrong(
                self,
                Some("use 30s, 5m, 1h30m, 2d or a number of seconds".into()),
            ),
            _ => wrong(self, None),
        }
    }

    fn string(&mut self, node: &Node, field: &str) -> Option<String> {
        match &node.kind {
            Kind::Str(s) => Some(s.clone()),
            Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) => node.scalar_text(),
            _ => {
                self.at(
                    node,
                    field,
                    format!(
                        "'{}' must be a string, not {}",
                        leaf(field),
                        node.type_name()
                    ),
                    None,
                );
                None
            }
        }
    }

    fn string_list(&mut self, node: &Node, field: &str) -> Vec<String> {
        match &node.kind {
            Kind::Str(s) => vec![s.clone()],
            Kind::Seq(items) => items.iter().filter_map(|n| self.string(n, field)).collect(),
            _ => {
                self.at(
                    node,
                    field,
                    format!(
                        "'{}' must be a list of strings, not {}",
                        leaf(field),
                        node.type_name()
                    ),
                    None,
                );
                Vec::new()
            }
        }
    }

    fn boolean(&mut self, node: &Node, field: &str) -> Option<bool> {
        match &node.kind {
            Kind::Bool(b) => Some(*b),
            _ => {
                let shown = node
                    .scalar_text()
                    .unwrap_or_else(|| node.type_name().into());
                self.at(
                    node,
                    field,
                    format!("'{}' must be true or false, not '{shown}'", leaf(field)),
                    None,
                );
                None
            }
        }
    }

    fn integer(&mut self, node: &Node, field: &str) -> Option<i64> {
        match &node.kind {
            Kind::Int(i) => Some(*i),
            _ => {
                let shown = node
                    .scalar_text()
                    .unwrap_or_else(|| node.type_name().into());
                self.at(
                    node,
                    field,
                    format!("'{}' must be a whole number, not '{shown}'", leaf(field)),
                    None,
                );
                None
            }
        }
    }

    fn count(&mut self, node: &Node, field: &str, min: i64) -> Option<u32> {
        let n = self.integer(node, field)?;
        if n < min || n > u32::MAX as i64 {
            self.at(
                node,
                field,
                format!("'{}' must be at least {min}, not {n}", leaf(field)),
                None,
            );
            return None;
        }
        Some(n as u32)
    }

    fn duration(&mut self, node: &Node, field: &str) -> Option<Duration> {
        let text = match &node.kind {
            Kind::Int(i) if *i >= 0 => return Some(Duration::from_secs(*i as u64)),
            Kind::Float(f) if *f >= 0.0 => return Some(Duration::from_secs_f64(*f)),
            Kind::Str(s) => s.clone(),
            _ => node
                .scalar_text()
                .unwrap_or_else(|| node.type_name().into()),
        };
        match weir_core::parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.at(
                    node,
                    field,
                    format!("'{}' is not a duration: {e}", leaf(field)),
                    Some("use 30s, 5m, 1h30m, 2d or a number of seconds".into()),
                );
                None
            }
        }
    }

    fn object(&mut self, node: &Node, field: &str) -> Map<String, Value> {
        match node.to_json() {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            _ => {
                self.at(
                    node,
                    field,
                    format!(
                        "'{}' must be a mapping, not {}",
                        leaf(field),
                        node.type_name()
                    ),
                    None,
                );
                Map::new()
            }
        }
    }

    fn trigger_rule(&mut self, node: &Node, field: &str) -> Option<TriggerRule> {
        let text = self.string(node, field)?;
        match text.parse::<TriggerRule>() {
            Ok(rule) => Some(rule),
            Err(_) => {
                let names = TriggerRule::ALL.iter().map(|r| r.as_str());
                let hint = did_you_mean(&text, names.clone()).unwrap_or_else(|| {
                    format!(
                        "the trigger rules are {}",
                        names.collect::<Vec<_>>().join(", ")
                    )
                });
                self.at(
                    node,
                    field,
                    format!("unknown trigger_rule '{text}'"),
                    Some(hint),
                );
                None
            }
        }
    }

    fn timezone(&mut self, node: &Node) -> Option<String> {
        let name = self.string(node, "timezone")?;
        if jiff::tz::TimeZone::get(&name).is_ok() {
            return Some(name);
        }
        let known: Vec<String> = jiff::tz::db().available().map(|n| n.to_string()).collect();
        let hint = did_you_mean(&name, known.iter().map(String::as_str))
            .unwrap_or_else(|| "use an IANA name such as UTC, Europe/Berlin or Asia/Seoul".into());
        self.at(
            node,
            "timezone",
            format!("unknown time zone '{name}'"),
            Some(hint),
        );
        None
    }

    fn schedule(&mut self, node: &Node) -> Schedule {
        let text = match &node.kind {
            Kind::Null => return Schedule::Never,
            Kind::Str(s) => s.trim().to_string(),
            _ => {
                self.at(
                    node,
                    "schedule",
                    format!(
                        "'schedule' must be a string or null, not {}",
                        node.type_name()
                    ),
                    Some(SCHEDULE_HINT.into()),
                );
                return Schedule::Never;
            }
        };
        if text == "@once" {
            return Schedule::Once;
        }
        if text == "null" || text == "@none" || text.is_empty() {
            return Schedule::Never;
        }
        if let Some(expr) = weir_core::timetable::cron_preset(&text) {
            return Schedule::Cron {
                expr: expr.into(),
                text,
            };
        }
        if text.starts_with('@') {
            self.at(
                node,
                "schedule",
                format!("unknown schedule preset '{text}'"),
                did_you_mean(&text, PRESETS.iter().copied()).or(Some(SCHEDULE_HINT.into())),
            );
            return Schedule::Never;
        }
        if let Some(rest) = text.strip_prefix("every ") {
            return match weir_core::parse_duration(rest) {
                Ok(d) if !d.is_zero() => Schedule::Every { every: d, text },
                Ok(_) => {
                    self.at(
                        node,
                        "schedule",
                        format!("schedule '{text}' must be longer than zero"),
                        None,
                    );
                    Schedule::Never
                }
                Err(e) => {
                    self.at(
                        node,
                        "schedule",
                        format!("bad schedule '{text}': {e}"),
                        Some("write every 15m, every 1h or every 2d".into()),
                    );
                    Schedule::Never
                }
            };
        }
        match weir_core::timetable::parse_cron(&text) {
            Ok(_) => Schedule::Cron {
                expr: text.clone(),
                text,
            },
            Err(e) => {
                self.at(
                    node,
                    "schedule",
                    format!("invalid schedule: {e}"),
                    Some(SCHEDULE_HINT.into()),
                );
                Schedule::Never
            }
        }
    }

    fn instant(
        &mut self,
        node: &Node,
        field: &str,
        tz: &jiff::tz::TimeZone,
    ) -> Option<jiff::Timestamp> {
        let text = node.scalar_text().unwrap_or_default();
        match weir_core::parse_instant(&text, tz) {
            Ok(t) => Some(t),
            Err(e) => {
                self.at(node, field, format!("bad {field}: {e}"), None);
                None
            }
        }
    }
}

const SCHEDULE_HINT: &str = "use a 5-field cron such as \"0 3 * * *\", a preset such as @daily, \"every 15m\", @once, or null";
const PRESETS: &[&str] = &[
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@quarterly",
    "@yearly",
    "@once",
];

fn leaf(field: &str) -> &str {
    field.rsplit('.').next().unwrap_or(field)
}

fn field_node<'a>(item: &'a Node, name: &str) -> Option<&'a Node> {
    match &item.kind {
        Kind::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn type_names() -> String {
    TASK_TYPES
        .iter()
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a value has the outer shape of `ty` (a string for a string, a list for a list).
fn shape_fits(ty: &Type, kind: &Kind) -> bool {
    matches!(
        (ty, kind),
        (Type::Any, _)
            | (Type::Null, Kind::Null)
            | (Type::Str | Type::Template | Type::Enum { .. }, Kind::Str(_))
            | (Type::Bool, Kind::Bool(_))
            | (Type::Int | Type::Count(_), Kind::Int(_))
            | (Type::Number, Kind::Int(_) | Kind::Float(_))
            | (Type::Duration, Kind::Int(_) | Kind::Float(_) | Kind::Str(_))
            | (Type::List(_), Kind::Seq(_))
            | (Type::Map(_) | Type::Object(_), Kind::Map(_))
    ) || matches!((ty, kind), (Type::OneOf(types), _) if types.iter().any(|t| shape_fits(t, kind)))
}

/// `did you mean 'x'?` for the closest candidate, when it is close enough.
pub(crate) fn did_you_mean<'a>(
    wrong: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<String> {
    let wrong_lower = wrong.to_ascii_lowercase();
    candidates
        .map(|c| {
            (
                strsim::jaro_winkler(&wrong_lower, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean '{c}'?"))
}

/// A dependency cycle as task ids, first id repeated at the end; `None` when acyclic.
fn find_cycle(tasks: &[Task]) -> Option<Vec<String>> {
    let index: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.task_id.as_str(), i))
        .collect();
    // 0 = unvisited, 1 = on the stack, 2 = done
    let mut mark = vec![0u8; tasks.len()];
    let mut stack: Vec<usize> = Vec::new();
    fn visit(
        i: usize,
        tasks: &[Task],
        index: &HashMap<&str, usize>,
        mark: &mut [u8],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<String>> {
        mark[i] = 1;
        stack.push(i);
        for dep in &tasks[i].depends_on {
            let Some(&j) = index.get(dep.as_str()) else {
                continue;
            };
            if j == i {
                continue;
            }
            if mark[j] == 1 {
                let start = stack.iter().position(|&k| k == j).unwrap_or(0);
                let mut cycle: Vec<String> = stack[start..]
                    .iter()
                    .map(|&k| tasks[k].task_id.clone())
                    .collect();
                cycle.push(cycle[0].clone());
                return Some(cycle);
            }
            if mark[j] == 0
                && let Some(c) = visit(j, tasks, index, mark, stack)
            {
                return Some(c);
            }
        }
        stack.pop();
        mark[i] = 2;
        None
    }
    for i in 0..tasks.len() {
        if mark[i] == 0
            && let Some(c) = visit(i, tasks, &index, &mut mark, &mut stack)
        {
            return Some(c);
        }
    }
    None
}
