//! Task groups: `group: extract` on a task and DAG-level `groups: {extract: {default_args,
//! depends_on}}`. A group is a label (task ids stay as written); its `default_args` come
//! between the task's own keys and the DAG's; `depends_on: [group:extract]` stands for every
//! task of the group; a group's `depends_on` applies to its tasks with no upstream inside it.
//! All of it is resolved here, so the `Dag` holds plain task dependencies.

use crate::build::{Builder, did_you_mean, field_node, valid_id};
use crate::keys::DEFAULT_ARGS_KEYS;
use crate::yaml::{Kind, Node};
use std::collections::{BTreeMap, BTreeSet};
use weir_core::Task;

/// How a dependency on a whole group is written.
pub const GROUP_PREFIX: &str = "group:";

/// One group declared under `groups:`.
pub(crate) struct GroupSpec {
    pub name: String,
    /// Its entry, for messages.
    pub node: Node,
    pub defaults: Vec<(Node, Node)>,
    pub depends_on: Vec<String>,
}

impl Builder {
    /// The groups declared under `groups:`.
    pub(crate) fn groups(&mut self, node: &Node) -> Vec<GroupSpec> {
        let Some(pairs) = self.mapping(node, "groups", "groups") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in pairs {
            let name = k.scalar_text().unwrap_or_default();
            let field = format!("groups.{name}");
            if !valid_id(&name) {
                self.at(
                    k,
                    &field,
                    format!(
                        "group name '{name}' may only contain letters, digits, '_', '-' and '.'"
                    ),
                    None,
                );
            }
            let mut group = GroupSpec {
                name: name.clone(),
                node: k.clone(),
                defaults: Vec::new(),
                depends_on: Vec::new(),
            };
            if matches!(v.kind, Kind::Null) {
                out.push(group);
                continue;
            }
            let Some(keys) = self.mapping(v, &field, "a group") else {
                continue;
            };
            self.unknown_keys(
                keys,
                &["default_args", "depends_on", "doc"],
                &format!("in group '{name}'"),
                &field,
            );
            for (key, value) in keys {
                match key.as_str() {
                    Some("default_args") => {
                        let f = format!("{field}.default_args");
                        if let Some(args) = self.mapping(value, &f, "default_args") {
                            let allowed: Vec<&str> = DEFAULT_ARGS_KEYS
                                .iter()
                                .map(|k| k.name)
                                .filter(|n| *n != "group")
                                .collect();
                            self.unknown_keys(
                                args,
                                &allowed,
                                &format!("in the default_args of group '{name}'"),
                                &f,
                            );
                            group.defaults = args.to_vec();
                        }
                    }
                    Some("depends_on") => {
                        group.depends_on = self.string_list(value, &format!("{field}.depends_on"));
                    }
                    Some("doc") => {
                        self.string(value, &format!("{field}.doc"));
                    }
                    _ => {}
                }
            }
            out.push(group);
        }
        out
    }

    /// Checks group names and replaces dependencies on groups with their tasks: `group:x` in
    /// a task's `depends_on`, and each group's own `depends_on` for its tasks that have no
    /// upstream inside the group.
    pub(crate) fn resolve_groups(
        &mut self,
        dag_id: &str,
        tasks: &mut [Task],
        groups: &[GroupSpec],
        items: &[Node],
    ) {
        let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for task in tasks.iter() {
            if let Some(group) = &task.group {
                members
                    .entry(group.clone())
                    .or_default()
                    .push(task.task_id.clone());
            }
        }
        let declared: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        let node_of = |task: &Task, key: &str| -> Node {
            items
                .iter()
                .find(|n| {
                    n.line <= task.line
                        && field_node(n, "id")
                            .is_some_and(|id| id.as_str() == Some(task.task_id.as_str()))
                })
                .and_then(|n| field_node(n, key))
                .cloned()
                .unwrap_or(Node {
                    line: task.line,
                    col: 0,
                    kind: Kind::Null,
                })
        };
        if !declared.is_empty() {
            for task in tasks.iter() {
                if let Some(group) = task.group.as_deref().filter(|g| !declared.contains(g)) {
                    let hint = did_you_mean(group, declared.iter().copied()).unwrap_or_else(|| {
                        format!(
                            "the groups declared under `groups:` are {}; declare '{group}' there too",
                            declared.join(", ")
                        )
                    });
                    self.at(
                        &node_of(task, "group"),
                        "group",
                        format!(
                            "task '{}' in DAG '{dag_id}' is in unknown group '{group}'",
                            task.task_id
                        ),
                        Some(hint),
                    );
                }
            }
        }
        let known: BTreeSet<&str> = declared
            .iter()
            .copied()
            .chain(members.keys().map(String::as_str))
            .collect();
        let group_of: BTreeMap<&str, &str> = tasks
            .iter()
            .filter_map(|t| t.group.as_deref().map(|g| (t.task_id.as_str(), g)))
            .collect();
        let ids: BTreeSet<&str> = tasks.iter().map(|t| t.task_id.as_str()).collect();

        // A group's depends_on: check its names, and look for cycles between groups.
        let mut group_deps: Vec<(usize, Vec<String>)> = Vec::new();
        let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (gi, group) in groups.iter().enumerate() {
            let mut expanded = Vec::new();
            for dep in &group.depends_on {
                let target = match dep.strip_prefix(GROUP_PREFIX) {
                    Some(other) if !known.contains(other) => {
                        let hint = did_you_mean(other, known.iter().copied())
                            .unwrap_or_else(|| format!("the groups are {}", join(&known)));
                        self.at(
                            &group.node,
                            &format!("groups.{}.depends_on", group.name),
                            format!(
                                "group '{}' in DAG '{dag_id}' depends on unknown group '{other}'",
                                group.name
                            ),
                            Some(hint),
                        );
                        continue;
                    }
                    Some(other) => {
                        expanded.extend(members.get(other).cloned().unwrap_or_default());
                        Some(other)
                    }
                    None if !ids.contains(dep.as_str()) => {
                        let hint = did_you_mean(dep, ids.iter().copied())
                            .unwrap_or_else(|| format!("the tasks are {}", join(&ids)));
                        self.at(
                            &group.node,
                            &format!("groups.{}.depends_on", group.name),
                            format!(
                                "group '{}' in DAG '{dag_id}' depends on unknown task '{dep}'",
                                group.name
                            ),
                            Some(hint),
                        );
                        continue;
                    }
                    None => {
                        expanded.push(dep.clone());
                        group_of.get(dep.as_str()).copied()
                    }
                };
                if let Some(target) = target {
                    edges
                        .entry(group.name.as_str())
                        .or_default()
                        .push(known.get(target).copied().unwrap_or(target));
                }
            }
            group_deps.push((gi, expanded));
        }
        let cycle = find_group_cycle(&edges);
        if let Some(cycle) = &cycle {
            let first = groups
                .iter()
                .find(|g| g.name == cycle[0])
                .map(|g| g.node.clone())
                .unwrap_or(Node {
                    line: 1,
                    col: 0,
                    kind: Kind::Null,
                });
            let message = if cycle.len() == 2 {
                format!(
                    "group '{}' in DAG '{dag_id}' depends on its own tasks",
                    cycle[0]
                )
            } else {
                format!(
                    "task groups form a dependency cycle in DAG '{dag_id}': {}",
                    cycle.join(" -> ")
                )
            };
            self.at(
                &first,
                &format!("groups.{}.depends_on", cycle[0]),
                message,
                Some(
                    "a group cannot wait for itself; remove one of these groups' depends_on".into(),
                ),
            );
        }

        // Dependencies of tasks on whole groups.
        for task in tasks.iter_mut() {
            if !task.depends_on.iter().any(|d| d.starts_with(GROUP_PREFIX)) {
                continue;
            }
            let mut resolved: Vec<String> = Vec::new();
            for dep in std::mem::take(&mut task.depends_on) {
                let Some(group) = dep.strip_prefix(GROUP_PREFIX) else {
                    resolved.push(dep);
                    continue;
                };
                if !known.contains(group) {
                    let hint = did_you_mean(group, known.iter().copied()).unwrap_or_else(|| {
                        if known.is_empty() {
                            "no task has a `group:`; put tasks in a group with group: NAME".into()
                        } else {
                            format!("the groups are {}", join(&known))
                        }
                    });
                    self.at(
                        &node_of(task, "depends_on"),
                        "depends_on",
                        format!(
                            "task '{}' in DAG '{dag_id}' depends on unknown group '{group}'",
                            task.task_id
                        ),
                        Some(hint),
                    );
                } else if task.group.as_deref() == Some(group) {
                    self.at(
                        &node_of(task, "depends_on"),
                        "depends_on",
                        format!(
                            "task '{}' in DAG '{dag_id}' depends on its own group '{group}'",
                            task.task_id
                        ),
                        Some("depend on the tasks of the group it needs by their ids".into()),
                    );
                } else {
                    resolved.extend(members.get(group).cloned().unwrap_or_default());
                }
            }
            task.depends_on = dedup(resolved);
        }

        // A group's depends_on, for its tasks that wait for nothing inside the group.
        if cycle.is_none() {
            for (gi, expanded) in group_deps {
                let group = &groups[gi];
                let inside = members.get(&group.name).cloned().unwrap_or_default();
                for task in tasks
                    .iter_mut()
                    .filter(|t| t.group.as_deref() == Some(group.name.as_str()))
                {
                    if task.depends_on.iter().any(|d| inside.contains(d)) {
                        continue;
                    }
                    let mut deps = std::mem::take(&mut task.depends_on);
                    deps.extend(expanded.iter().cloned());
                    task.depends_on = dedup(deps);
                }
            }
        }
    }
}

fn join(names: &BTreeSet<&str>) -> String {
    names.iter().copied().collect::<Vec<_>>().join(", ")
}

fn dedup(items: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    items
        .into_iter()
        .filter(|d| seen.insert(d.clone()))
        .collect()
}

/// A cycle among groups as names, the first repeated at the end.
fn find_group_cycle(edges: &BTreeMap<&str, Vec<&str>>) -> Option<Vec<String>> {
    fn visit<'a>(
        at: &'a str,
        edges: &BTreeMap<&'a str, Vec<&'a str>>,
        done: &mut BTreeSet<&'a str>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = stack.iter().position(|g| *g == at) {
            let mut cycle: Vec<String> = stack[start..].iter().map(|g| g.to_string()).collect();
            cycle.push(at.to_string());
            return Some(cycle);
        }
        if !done.insert(at) {
            return None;
        }
        stack.push(at);
        for next in edges.get(at).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    for start in edges.keys() {
        if let Some(cycle) = visit(start, edges, &mut done, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}
