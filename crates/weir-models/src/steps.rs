//! A project cut into steps that a scheduler can run one at a time: one step per selected seed,
//! model and snapshot, plus one step per node holding that node's tests, with dependencies that
//! follow the dbt graph as `dbt build` orders it (a node's children wait for its tests).
//!
//! [`plan_steps`] reads the project (no profile, no warehouse), checks every model, snapshot,
//! test and macro file for Jinja syntax errors as `dbt parse` would, and plans the steps.
//! [`fingerprint`] says cheaply whether any file of a project changed since the last plan.
//!
//! Architecture invariant: no warehouse and no scheduling here; the caller turns steps into
//! whatever it runs (the DAG loader: one task per step).

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::Path;

use crate::jinja::{JinjaError, rewrite::rewrite};
use crate::project::{
    LoadOptions, Node, Project, ResourceType, Selection, UniqueId, render_errors, select,
};

/// What a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// One seed, model or snapshot.
    Build,
    /// The tests of one node.
    Test,
}

/// One unit of work: a node, or the tests of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The node's name (`stg_orders`), or `<name>.test` for its tests; unique among steps.
    pub name: String,
    pub kind: StepKind,
    /// The dbt command that runs it: `seed`, `run`, `snapshot` or `test`.
    pub command: &'static str,
    /// The unique ids it runs: the node, or its tests.
    pub nodes: Vec<UniqueId>,
    /// Names of the steps it waits for.
    pub after: Vec<String>,
}

/// What to plan: the `models` task's keys.
#[derive(Debug, Clone, Default)]
pub struct StepOptions {
    /// `build` (default), `run`, `test`, `seed` or `snapshot`.
    pub command: String,
    pub select: Vec<String>,
    pub exclude: Vec<String>,
    pub target: Option<String>,
    /// `--vars` known when planning (configs in dbt_project.yml may read `var()`).
    pub vars: serde_json::Map<String, serde_json::Value>,
}

/// The steps of `project_dir` in build order, or every problem of the project rendered as
/// `weir models` prints them (`error: models/a.sql:3: ...` with hints).
pub fn plan_steps(project_dir: &Path, options: &StepOptions) -> Result<Vec<Step>, String> {
    let load = LoadOptions {
        target: options.target.clone(),
        vars: options.vars.clone(),
        skip_profile: true,
        ..Default::default()
    };
    let project = Project::load(project_dir, &load).map_err(|errors| render_errors(&errors))?;
    check_syntax(&project)?;
    let command = if options.command.is_empty() {
        "build"
    } else {
        options.command.as_str()
    };
    let types: Vec<ResourceType> = match command {
        "run" => vec![ResourceType::Model],
        "seed" => vec![ResourceType::Seed],
        "snapshot" => vec![ResourceType::Snapshot],
        "test" => vec![ResourceType::Test],
        _ => vec![
            ResourceType::Model,
            ResourceType::Seed,
            ResourceType::Snapshot,
            ResourceType::Test,
        ],
    };
    let selection = Selection {
        select: options.select.clone(),
        exclude: options.exclude.clone(),
        resource_types: Some(types),
        ..Default::default()
    };
    let selected = select(&project, &selection).map_err(|e| render_errors(&[e]))?;
    Ok(plan(&project, &selected, command == "build"))
}

fn buildable(node: &Node) -> bool {
    match node.resource_type {
        ResourceType::Seed | ResourceType::Snapshot => true,
        ResourceType::Model => {
            node.config.get("materialized").and_then(|m| m.as_str()) != Some("ephemeral")
        }
        _ => false,
    }
}

fn command_of(node: &Node) -> &'static str {
    match node.resource_type {
        ResourceType::Seed => "seed",
        ResourceType::Snapshot => "snapshot",
        ResourceType::Test => "test",
        _ => "run",
    }
}

fn plan(project: &Project, selected: &BTreeSet<UniqueId>, build: bool) -> Vec<Step> {
    let order = project.graph.topological_order();
    let position: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let node = |id: &str| project.nodes.get(id);
    // The build steps: selected seeds, models and snapshots that are not ephemeral.
    let built: BTreeSet<&str> = selected
        .iter()
        .filter(|id| node(id).is_some_and(buildable))
        .map(String::as_str)
        .collect();
    // The nearest built ancestors of a node, through nodes that are not steps (ephemeral
    // models, unselected nodes), as dbt keeps transitive edges of a subset graph.
    let built_parents = |id: &str| -> BTreeSet<&str> {
        let mut found = BTreeSet::new();
        let mut seen = HashSet::new();
        let mut stack: Vec<&str> = project
            .graph
            .parents
            .get(id)
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        while let Some(p) = stack.pop() {
            if !seen.insert(p) {
                continue;
            }
            if built.contains(p) {
                found.insert(p);
            } else if let Some(pp) = project.graph.parents.get(p) {
                stack.extend(pp.iter().map(String::as_str));
            }
        }
        found
    };
    let mut names = NameTable::new(project, &built);

    // Each test goes to the step of the parent built last; a test whose parents are all
    // outside the plan (a source, an unselected model) goes to its last parent all the same.
    let mut tests: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for id in selected
        .iter()
        .filter(|id| node(id).is_some_and(|n| n.resource_type == ResourceType::Test))
    {
        let parents = project.graph.parents.get(id.as_str());
        let home = parents
            .into_iter()
            .flatten()
            .max_by_key(|p| position.get(p.as_str()).copied().unwrap_or(0))
            .map(String::as_str)
            .unwrap_or(id.as_str());
        tests.entry(home).or_default().push(id.as_str());
    }

    let mut steps: Vec<(usize, Step)> = Vec::new();
    let mut deps: HashMap<String, BTreeSet<String>> = HashMap::new();
    for id in &built {
        let n = &project.nodes[*id];
        let name = names.name(id);
        let after: BTreeSet<String> = built_parents(id)
            .into_iter()
            .map(|p| names.name(p))
            .collect();
        deps.insert(name.clone(), after);
        steps.push((
            position.get(id).copied().unwrap_or(0) * 2,
            Step {
                name,
                kind: StepKind::Build,
                command: command_of(n),
                nodes: vec![id.to_string()],
                after: Vec::new(),
            },
        ));
    }
    for (home, ids) in &tests {
        let name = format!("{}.test", names.name(home));
        let mut after = BTreeSet::new();
        for test in ids {
            for p in built_parents(test) {
                after.insert(names.name(p));
            }
        }
        deps.insert(name.clone(), after);
        steps.push((
            position.get(home).copied().unwrap_or(0) * 2 + 1,
            Step {
                name,
                kind: StepKind::Test,
                command: "test",
                nodes: ids.iter().map(|s| s.to_string()).collect(),
                after: Vec::new(),
            },
        ));
    }
    if build {
        // `dbt build` (dbt-core's `add_test_edges`): a node waits for a test of its ancestors
        // when every parent of that test is one of its ancestors. Only waits that no other
        // dependency implies are written; ancestors come first, so their waits are known.
        for id in order.iter().filter(|id| built.contains(id.as_str())) {
            let child = names.name(id);
            let ancestors = project.graph.ancestors(&BTreeSet::from([id.clone()]), None);
            // The latest homes first: a later test step may imply an earlier one, never
            // the other way round.
            let mut waits: Vec<(usize, String)> = tests
                .iter()
                .filter(|(home, ids)| {
                    ancestors.contains(**home)
                        && ids.iter().any(|t| {
                            project
                                .graph
                                .parents
                                .get(*t)
                                .is_some_and(|ps| ps.iter().all(|p| ancestors.contains(p)))
                        })
                })
                .map(|(home, _)| {
                    (
                        position.get(*home).copied().unwrap_or(0),
                        format!("{}.test", names.name(home)),
                    )
                })
                .collect();
            waits.sort_by(|a, b| b.cmp(a));
            let existing: Vec<String> = deps
                .get(&child)
                .map(|d| d.iter().cloned().collect())
                .unwrap_or_default();
            let mut covered = reachable(&deps, existing.iter().map(String::as_str));
            for (_, wait) in waits {
                if covered.contains(&wait) {
                    continue;
                }
                covered.extend(reachable(&deps, [wait.as_str()]));
                deps.entry(child.clone()).or_default().insert(wait);
            }
        }
    }
    steps.sort_by(|a, b| (a.0, &a.1.name).cmp(&(b.0, &b.1.name)));
    steps
        .into_iter()
        .map(|(_, mut step)| {
            step.after = deps
                .remove(&step.name)
                .unwrap_or_default()
                .into_iter()
                .collect();
            step
        })
        .collect()
}

/// Every step that `from` waits for, directly or not, and `from` itself.
fn reachable<'a>(
    deps: &HashMap<String, BTreeSet<String>>,
    from: impl IntoIterator<Item = &'a str>,
) -> HashSet<String> {
    let mut stack: Vec<String> = from.into_iter().map(str::to_string).collect();
    let mut seen = HashSet::new();
    while let Some(s) = stack.pop() {
        if let Some(next) = deps.get(&s) {
            stack.extend(next.iter().filter(|n| !seen.contains(*n)).cloned());
        }
        seen.insert(s);
    }
    seen
}

/// Step names: the node's name, or `<package>.<name>` when two planned nodes share a name.
struct NameTable<'a> {
    project: &'a Project,
    shared: HashSet<String>,
}

impl<'a> NameTable<'a> {
    fn new(project: &'a Project, built: &BTreeSet<&str>) -> Self {
        let mut count: HashMap<&str, usize> = HashMap::new();
        for id in built {
            *count.entry(project.nodes[*id].name.as_str()).or_default() += 1;
        }
        NameTable {
            project,
            shared: count
                .into_iter()
                .filter(|(_, n)| *n > 1)
                .map(|(name, _)| name.to_string())
                .collect(),
        }
    }

    fn name(&mut self, id: &str) -> String {
        let Some(node) = self.project.nodes.get(id) else {
            return id.to_string();
        };
        if self.shared.contains(&node.name) {
            format!("{}.{}", node.package_name, node.name)
        } else {
            node.name.clone()
        }
    }
}

/// Jinja syntax errors of every model, snapshot, test and macro file, as `dbt parse` reports
/// them (it renders every node while parsing).
fn check_syntax(project: &Project) -> Result<(), String> {
    let env = minijinja::Environment::new();
    let mut errors = Vec::new();
    for node in project.nodes.values().filter(|n| {
        matches!(
            n.resource_type,
            ResourceType::Model | ResourceType::Snapshot | ResourceType::Test
        ) && n.language == "sql"
            && !n.raw_code.is_empty()
    }) {
        let shown = node.original_file_path.clone();
        let source = rewrite(&node.raw_code, false).source;
        if let Err(e) = env.template_from_named_str(&shown, &source) {
            errors.push(format!(
                "error: Compilation Error in {} {} ({shown}): {}\nhint: fix the Jinja syntax on that line",
                node.resource_type.as_str(),
                node.name,
                jinja_message(&e),
            ));
        }
    }
    let mut macro_files: BTreeSet<(String, String)> = BTreeSet::new();
    for m in project.macros.values() {
        macro_files.insert((m.package_name.clone(), m.original_file_path.clone()));
    }
    for (package, path) in macro_files {
        let Some(pkg) = project.packages.get(&package) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(pkg.root.join(&path)) else {
            continue;
        };
        let source = rewrite(&text, true).source;
        if let Err(e) = env.template_from_named_str(&path, &source) {
            errors.push(format!(
                "error: Compilation Error in macro file {path}: {}\nhint: fix the Jinja syntax on that line",
                jinja_message(&e)
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

fn jinja_message(e: &minijinja::Error) -> String {
    match JinjaError::from_minijinja(e) {
        JinjaError::Template { message, location } => format!("{message} (line {})", {
            location.rsplit_once(':').map(|(_, l)| l).unwrap_or("?")
        }),
        other => other.to_string(),
    }
}

/// A hash of the names, sizes and modification times of a project's files (SQL, YAML, CSV,
/// Markdown, Python), skipping hidden folders, `target/`, `logs/` and `skip`: it changes when
/// any file the plan depends on changes, without reading the files.
pub fn fingerprint(project_dir: &Path, skip: &[&str]) -> u64 {
    fn walk(root: &Path, dir: &Path, skip: &[&str], out: &mut Vec<(String, u64, u128)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let path = entry.path();
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                if name.starts_with('.')
                    || (dir == root
                        && (name == "target" || name == "logs" || skip.contains(&name.as_ref())))
                    || skip.iter().any(|s| rel == Path::new(s))
                {
                    continue;
                }
                walk(root, &path, skip, out);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("sql" | "yml" | "yaml" | "csv" | "md" | "py")
            ) {
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                let rel = path.strip_prefix(root).unwrap_or(&path);
                out.push((rel.display().to_string(), meta.len(), mtime));
            }
        }
    }
    let mut files = Vec::new();
    walk(project_dir, project_dir, skip, &mut files);
    files.sort();
    let mut hasher = DefaultHasher::new();
    files.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A project of `files` (path, text) in a temp dir.
    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("dbt_project.yml"),
            "name: p\nversion: '1'\nprofile: p\n",
        )
        .unwrap();
        for (path, text) in files {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        }
        dir
    }

    /// `name <- after, after` per step, in plan order.
    fn shape(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| format!("{} <- {}", s.name, s.after.join(", ")))
            .collect()
    }

    #[test]
    fn steps_follow_the_graph_through_ephemeral_models_and_wait_for_tests_as_dbt_build() {
        // a -> eph (ephemeral) -> d; a -> b; a relationships test on b to a; a -> c.
        let dir = project(&[
            ("models/a.sql", "select 1 as id"),
            (
                "models/eph.sql",
                "{{ config(materialized='ephemeral') }} select * from {{ ref('a') }}",
            ),
            ("models/d.sql", "select * from {{ ref('eph') }}"),
            ("models/b.sql", "select * from {{ ref('a') }}"),
            ("models/c.sql", "select * from {{ ref('a') }}"),
            (
                "models/schema.yml",
                "version: 2\nmodels:\n  - name: a\n    columns:\n      - name: id\n        tests: [not_null]\n  - name: b\n    columns:\n      - name: id\n        tests:\n          - relationships: {to: ref('a'), field: id}\n",
            ),
        ]);
        let steps = plan_steps(dir.path(), &StepOptions::default()).unwrap();
        assert_eq!(
            shape(&steps),
            [
                "a <- ",
                "a.test <- a",
                "b <- a, a.test",
                "b.test <- a, b",
                "c <- a, a.test",
                "d <- a, a.test",
            ]
        );
        let test_step = steps.iter().find(|s| s.name == "b.test").unwrap();
        assert_eq!(test_step.kind, StepKind::Test);
        assert_eq!(test_step.command, "test");
        assert_eq!(test_step.nodes.len(), 1);

        // `run` plans models only; a selection keeps the edges between what it selects.
        let run = StepOptions {
            command: "run".into(),
            select: vec!["d".into(), "a".into()],
            ..Default::default()
        };
        assert_eq!(
            shape(&plan_steps(dir.path(), &run).unwrap()),
            ["a <- ", "d <- a"]
        );
    }

    #[test]
    fn a_broken_project_reports_dbt_errors_with_file_and_line() {
        let dir = project(&[
            ("models/a.sql", "select 1"),
            ("models/b.sql", "select *\nfrom {{ ref('a' }}"),
        ]);
        let error = plan_steps(dir.path(), &StepOptions::default()).unwrap_err();
        assert!(
            error.contains("Compilation Error in model b (models/b.sql)")
                && error.contains("line 2"),
            "{error}"
        );
        let dir = project(&[("models/a.sql", "select * from {{ ref('nope') }}")]);
        let error = plan_steps(dir.path(), &StepOptions::default()).unwrap_err();
        assert!(
            error.contains("depends on a node named 'nope' which was not found"),
            "{error}"
        );
    }

    #[test]
    fn the_fingerprint_changes_with_project_files_only() {
        let dir = project(&[("models/a.sql", "select 1")]);
        let first = fingerprint(dir.path(), &[]);
        std::fs::create_dir_all(dir.path().join("target")).unwrap();
        std::fs::write(dir.path().join("target/run_results.json"), "{}").unwrap();
        std::fs::write(dir.path().join("dev.duckdb"), "x").unwrap();
        assert_eq!(fingerprint(dir.path(), &[]), first);
        std::fs::write(dir.path().join("models/b.sql"), "select 2").unwrap();
        assert_ne!(fingerprint(dir.path(), &[]), first);
    }
}
