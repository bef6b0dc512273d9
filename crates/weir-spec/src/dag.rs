//! DAG-level building: the DAG's keys and `default_args`, its schedule, time zone and dates,
//! and the checks across tasks (unknown upstream ids, self-dependencies, cycles).

use crate::ParseOptions;
use crate::build::{Builder, did_you_mean, field_node, valid_id};
use crate::keys::{self, COMMON_TASK_KEYS, DAG_KEYS};
use crate::yaml::{Kind, Node};
use serde_json::Map;
use std::collections::HashMap;
use weir_core::{AssetCondition, Dag, Schedule, Task};

impl Builder {
    pub(crate) fn dag(&mut self, path: &str, root: &Node, opts: &ParseOptions) -> Option<Dag> {
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
        let groups = match get("groups") {
            Some(v) => self.groups(v),
            None => Vec::new(),
        };
        let tasks = match get("tasks") {
            Some(v) => self.tasks(&dag_id, v, &defaults, &groups, opts),
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
        self.control_flow(&dag_id, &tasks);
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

    /// Unknown upstream ids, self-dependencies and cycles.
    pub(crate) fn dependencies(&mut self, tasks: &[Task], items: &[Node]) {
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

    /// A `branch` chooses among its direct downstream tasks: one without any cannot work, and
    /// a `choose` without template syntax must name them.
    fn control_flow(&mut self, dag_id: &str, tasks: &[Task]) {
        for task in tasks.iter().filter(|t| t.task_type == "branch") {
            let downstream: Vec<&str> = tasks
                .iter()
                .filter(|t| t.depends_on.iter().any(|d| d == &task.task_id))
                .map(|t| t.task_id.as_str())
                .collect();
            if let Some(serde_json::Value::String(choose)) = task.config.get("choose")
                && !downstream.is_empty()
                && !choose.contains("{{")
                && !choose.contains("{%")
            {
                for id in crate::values::branch_choice(choose) {
                    if !downstream.contains(&id.as_str()) {
                        let hint =
                            did_you_mean(&id, downstream.iter().copied()).unwrap_or_else(|| {
                                format!("the choices are {}", downstream.join(", "))
                            });
                        self.error(
                            task.line,
                            Some("choose".into()),
                            format!(
                                "branch task '{}' in DAG '{dag_id}' chooses '{id}', which is not a task directly downstream of it",
                                task.task_id
                            ),
                            Some(hint),
                        );
                    }
                }
            }
            if downstream.is_empty() {
                self.error(
                    task.line,
                    Some("type".into()),
                    format!(
                        "branch task '{}' in DAG '{dag_id}' has no downstream tasks to choose from",
                        task.task_id
                    ),
                    Some(format!(
                        "add `depends_on: [{}]` to the tasks it chooses between",
                        task.task_id
                    )),
                );
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
            Kind::Map(pairs) => return self.asset_schedule(node, pairs),
            _ => {
                self.at(
                    node,
                    "schedule",
                    format!(
                        "'schedule' must be a string, null or {{assets: ...}}, not {}",
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

const ASSETS_HINT: &str = "write assets: [a, b] (all of them), assets: {any: [a, b]}, or nest them: assets: {any: [a, {all: [b, c]}]}";

impl Builder {
    /// `schedule: {assets: ...}`: a DAG that runs when asset events meet the condition.
    fn asset_schedule(&mut self, node: &Node, pairs: &[(Node, Node)]) -> Schedule {
        let mut condition = None;
        for (k, v) in pairs {
            match k.as_str() {
                Some("assets") => condition = self.asset_condition(v, "schedule.assets"),
                other => {
                    let name = other.unwrap_or_default();
                    self.at(
                        k,
                        "schedule",
                        format!("unknown key '{name}' in schedule"),
                        did_you_mean(name, ["assets"].into_iter()).or(Some(ASSETS_HINT.into())),
                    );
                    return Schedule::Never;
                }
            }
        }
        match condition {
            Some(condition) => Schedule::Assets {
                text: format!("assets: {}", condition.text()),
                condition,
            },
            None => {
                if !pairs.iter().any(|(k, _)| k.as_str() == Some("assets")) {
                    self.at(
                        node,
                        "schedule",
                        "a schedule mapping needs the key 'assets'".into(),
                        Some(ASSETS_HINT.into()),
                    );
                }
                Schedule::Never
            }
        }
    }

    /// A list means all of its items; `{all: [...]}` and `{any: [...]}` nest; a string is one asset.
    fn asset_condition(&mut self, node: &Node, field: &str) -> Option<AssetCondition> {
        match &node.kind {
            Kind::Str(name) => {
                let name = name.trim();
                if name.is_empty() {
                    self.at(node, field, "an asset name must not be empty".into(), None);
                    return None;
                }
                Some(AssetCondition::Asset(name.to_string()))
            }
            Kind::Seq(items) => self
                .asset_conditions(node, items, field)
                .map(AssetCondition::All),
            Kind::Map(pairs) if pairs.len() == 1 => {
                let (k, v) = &pairs[0];
                let Kind::Seq(items) = &v.kind else {
                    self.at(
                        v,
                        field,
                        format!(
                            "'{}' in an asset condition takes a list, not {}",
                            k.as_str().unwrap_or_default(),
                            v.type_name()
                        ),
                        Some(ASSETS_HINT.into()),
                    );
                    return None;
                };
                match k.as_str() {
                    Some("all") => self
                        .asset_conditions(v, items, &format!("{field}.all"))
                        .map(AssetCondition::All),
                    Some("any") => self
                        .asset_conditions(v, items, &format!("{field}.any"))
                        .map(AssetCondition::Any),
                    other => {
                        let name = other.unwrap_or_default();
                        self.at(
                            k,
                            field,
                            format!("unknown asset condition '{name}'"),
                            did_you_mean(name, ["all", "any"].into_iter())
                                .or(Some(ASSETS_HINT.into())),
                        );
                        None
                    }
                }
            }
            Kind::Map(pairs) => {
                self.at(
                    node,
                    field,
                    format!(
                        "an asset condition mapping has exactly one key, 'all' or 'any', not {}",
                        pairs.len()
                    ),
                    Some(ASSETS_HINT.into()),
                );
                None
            }
            _ => {
                self.at(
                    node,
                    field,
                    format!(
                        "an asset condition must be an asset name, a list or {{all|any: [...]}}, not {}",
                        node.type_name()
                    ),
                    Some(ASSETS_HINT.into()),
                );
                None
            }
        }
    }

    fn asset_conditions(
        &mut self,
        node: &Node,
        items: &[Node],
        field: &str,
    ) -> Option<Vec<AssetCondition>> {
        if items.is_empty() {
            self.at(
                node,
                field,
                "an asset condition needs at least one asset".into(),
                Some(ASSETS_HINT.into()),
            );
            return None;
        }
        let out: Vec<Option<AssetCondition>> = items
            .iter()
            .map(|item| self.asset_condition(item, field))
            .collect();
        out.into_iter().collect()
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
