//! dbt's node selection: `--select`/`--exclude` strings (space = union, `,` = intersection,
//! `+`/`N+`/`@` graph operators, `method:value` with wildcards), `selectors.yml` definitions
//! (`union`, `intersection`, `exclude`, `method`/`value`/`parents`/`children`/
//! `indirect_selection`), and indirect selection of tests (eager by default: a test is
//! selected when any of its parents is; cautious: when all are; buildable: when all are selected
//! or ancestors of selected nodes; empty: never).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value as Json;

use super::Project;
use super::error::{ProjectError, ProjectErrorKind};
use super::node::{Node, ResourceType, UniqueId};
use super::state::State;
use super::yaml::{Yaml, YamlValue};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndirectSelection {
    #[default]
    Eager,
    Cautious,
    Buildable,
    Empty,
}

impl IndirectSelection {
    pub fn parse(text: &str) -> Option<IndirectSelection> {
        Some(match text {
            "eager" => IndirectSelection::Eager,
            "cautious" => IndirectSelection::Cautious,
            "buildable" => IndirectSelection::Buildable,
            "empty" => IndirectSelection::Empty,
            _ => return None,
        })
    }
}

/// What a command was asked to select.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `--select` values; empty selects everything.
    pub select: Vec<String>,
    pub exclude: Vec<String>,
    /// `--selector NAME` from selectors.yml (then `select`/`exclude` must be empty).
    pub selector: Option<String>,
    pub indirect_selection: IndirectSelection,
    /// `--state DIR`, for `state:` and `result:` methods.
    pub state: Option<State>,
    /// The command's resource types (`dbt run`: models); `None` keeps every type.
    pub resource_types: Option<Vec<ResourceType>>,
}

/// One `method:value` with graph operators.
#[derive(Debug, Clone, PartialEq)]
pub struct Criteria {
    pub method: String,
    /// `config.materialized` → `["materialized"]`.
    pub method_args: Vec<String>,
    pub value: String,
    pub parents: bool,
    pub parents_depth: Option<usize>,
    pub children: bool,
    pub children_depth: Option<usize>,
    pub childrens_parents: bool,
    pub indirect: Option<IndirectSelection>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    Criteria(Criteria),
    Union(Vec<Spec>, Option<IndirectSelection>),
    Intersection(Vec<Spec>, Option<IndirectSelection>),
    /// The first minus the union of the rest.
    Difference(Box<Spec>, Vec<Spec>, Option<IndirectSelection>),
}

fn bad(text: &str, why: &str) -> ProjectError {
    ProjectError::new(ProjectErrorKind::Selector(text.to_string())).hint(why.to_string())
}

const METHODS: &[&str] = &[
    "fqn",
    "path",
    "file",
    "tag",
    "source",
    "resource_type",
    "config",
    "test_type",
    "test_name",
    "package",
    "state",
    "result",
    "exposure",
    "unit_test",
    "access",
    "group",
    "version",
];

/// Parses one atom such as `2+tag:nightly+1` or `@customers`.
pub fn parse_criteria(text: &str) -> Result<Criteria, ProjectError> {
    let mut rest = text.trim();
    let mut childrens_parents = false;
    if let Some(r) = rest.strip_prefix('@') {
        childrens_parents = true;
        rest = r;
    }
    let mut parents = false;
    let mut parents_depth = None;
    if let Some(plus) = rest.find('+') {
        let prefix = &rest[..plus];
        if prefix.chars().all(|c| c.is_ascii_digit()) {
            parents = true;
            if !prefix.is_empty() {
                parents_depth = prefix.parse().ok();
            }
            rest = &rest[plus + 1..];
        }
    }
    let mut children = false;
    let mut children_depth = None;
    if let Some(plus) = rest.rfind('+') {
        let suffix = &rest[plus + 1..];
        if suffix.chars().all(|c| c.is_ascii_digit()) {
            children = true;
            if !suffix.is_empty() {
                children_depth = suffix.parse().ok();
            }
            rest = &rest[..plus];
        }
    }
    if childrens_parents && (parents || children) {
        return Err(bad(text, "'@' cannot be combined with '+'"));
    }
    if rest.is_empty() {
        return Err(bad(
            text,
            "a selector needs a value, e.g. 'my_model' or 'tag:nightly'",
        ));
    }
    let (method, value) = match rest.split_once(':') {
        Some((method, value)) if !method.contains('/') && !method.contains('\\') => {
            (method.to_string(), value.to_string())
        }
        _ => {
            let method = if rest.contains('/') || rest.contains('\\') {
                "path"
            } else if [".sql", ".py", ".csv"]
                .iter()
                .any(|ext| rest.to_lowercase().ends_with(ext))
            {
                "file"
            } else {
                "fqn"
            };
            (method.to_string(), rest.to_string())
        }
    };
    let mut parts = method.split('.');
    let name = parts.next().unwrap_or_default().to_string();
    let method_args: Vec<String> = parts.map(str::to_string).collect();
    if !METHODS.contains(&name.as_str()) {
        let hint = match super::profile::strsim_best(&name, METHODS) {
            Some(best) => format!("unknown selector method '{name}'; did you mean '{best}'?"),
            None => format!(
                "unknown selector method '{name}'; known: {}",
                METHODS.join(", ")
            ),
        };
        return Err(bad(text, &hint));
    }
    if name == "config" && method_args.is_empty() {
        return Err(bad(
            text,
            "write config.<key>:<value>, e.g. config.materialized:view",
        ));
    }
    Ok(Criteria {
        method: name,
        method_args,
        value,
        parents,
        parents_depth,
        children,
        children_depth,
        childrens_parents,
        indirect: None,
    })
}

/// Parses CLI values: each value's space-separated parts are a union, `,` an intersection.
pub fn parse_cli(values: &[String]) -> Result<Spec, ProjectError> {
    parse_cli_with(values, None)
}

/// `parse_cli` with every criterion's indirect selection fixed (dbt parses `--exclude` eagerly,
/// so excluding a node always excludes its tests).
pub fn parse_cli_with(
    values: &[String],
    indirect: Option<IndirectSelection>,
) -> Result<Spec, ProjectError> {
    let mut union = Vec::new();
    for value in values {
        for part in value.split_whitespace() {
            let mut atoms: Vec<Spec> = part
                .split(',')
                .filter(|a| !a.is_empty())
                .map(|a| {
                    parse_criteria(a).map(|mut c| {
                        c.indirect = indirect.or(c.indirect);
                        Spec::Criteria(c)
                    })
                })
                .collect::<Result<Vec<Spec>, _>>()?;
            union.push(if atoms.len() == 1 {
                atoms.remove(0)
            } else {
                Spec::Intersection(atoms, None)
            });
        }
    }
    Ok(Spec::Union(union, None))
}

/// `selectors.yml`: named definitions, and which one is the default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selectors {
    pub definitions: BTreeMap<String, Yaml>,
    pub default: Option<String>,
    pub file: Option<std::path::PathBuf>,
}

impl Selectors {
    pub fn load(project_dir: &Path) -> Result<Selectors, ProjectError> {
        let file = project_dir.join("selectors.yml");
        let Ok(text) = std::fs::read_to_string(&file) else {
            return Ok(Selectors::default());
        };
        let doc = Yaml::parse(&text, &file)?;
        let mut selectors = Selectors {
            file: Some(file.clone()),
            ..Default::default()
        };
        for entry in doc.at("selectors").as_seq() {
            let Some(name) = entry.at("name").scalar_text() else {
                return Err(
                    ProjectError::invalid("a selector has no 'name'").at(&file, Some(entry.line))
                );
            };
            if entry.get("definition").is_none() {
                return Err(ProjectError::invalid(format!(
                    "selector '{name}' has no 'definition'"
                ))
                .at(&file, Some(entry.line)));
            }
            if entry.at("default").as_bool() == Some(true) {
                selectors.default = Some(name.clone());
            }
            selectors
                .definitions
                .insert(name, entry.at("definition").clone());
        }
        Ok(selectors)
    }

    /// The spec of a named selector (definitions may name other selectors with `selector:`).
    pub fn spec(&self, name: &str) -> Result<Spec, ProjectError> {
        self.spec_inner(name, 0)
    }

    fn spec_inner(&self, name: &str, depth: usize) -> Result<Spec, ProjectError> {
        let Some(definition) = self.definitions.get(name) else {
            let names: Vec<&str> = self.definitions.keys().map(String::as_str).collect();
            let hint = match super::profile::strsim_best(name, &names) {
                Some(best) => format!("did you mean '{best}'?"),
                None => "define it under `selectors:` in selectors.yml".to_string(),
            };
            return Err(ProjectError::new(ProjectErrorKind::Selector(name.to_string())).hint(hint));
        };
        if depth > 20 {
            return Err(bad(name, "selectors refer to each other in a loop"));
        }
        self.definition(definition, depth)
    }

    fn located(&self, error: ProjectError, line: usize) -> ProjectError {
        match &self.file {
            Some(file) if error.location.is_none() => error.at(file, Some(line)),
            _ => error,
        }
    }

    fn definition(&self, definition: &Yaml, depth: usize) -> Result<Spec, ProjectError> {
        match &definition.value {
            YamlValue::Str(text) => {
                parse_cli(std::slice::from_ref(text)).map_err(|e| self.located(e, definition.line))
            }
            YamlValue::Map(entries) => {
                let indirect = definition
                    .at("indirect_selection")
                    .as_str()
                    .and_then(IndirectSelection::parse);
                if let Some(items) = definition.get("union") {
                    let mut include = Vec::new();
                    let mut exclude = Vec::new();
                    for item in items.as_seq() {
                        match item.get("exclude") {
                            Some(excluded) => {
                                for e in excluded.as_seq() {
                                    exclude.push(self.definition(e, depth)?);
                                }
                            }
                            None => include.push(self.definition(item, depth)?),
                        }
                    }
                    let union = Spec::Union(include, indirect);
                    return Ok(if exclude.is_empty() {
                        union
                    } else {
                        Spec::Difference(Box::new(union), exclude, indirect)
                    });
                }
                if let Some(items) = definition.get("intersection") {
                    let mut include = Vec::new();
                    let mut exclude = Vec::new();
                    for item in items.as_seq() {
                        match item.get("exclude") {
                            Some(excluded) => {
                                for e in excluded.as_seq() {
                                    exclude.push(self.definition(e, depth)?);
                                }
                            }
                            None => include.push(self.definition(item, depth)?),
                        }
                    }
                    let intersection = Spec::Intersection(include, indirect);
                    return Ok(if exclude.is_empty() {
                        intersection
                    } else {
                        Spec::Difference(Box::new(intersection), exclude, indirect)
                    });
                }
                if let Some(name) = definition.get("selector").and_then(Yaml::scalar_text) {
                    return self.spec_inner(&name, depth + 1);
                }
                // `method: tag` + `value: x`, or the shorthand `tag: x`.
                let (method, value) = match (definition.get("method"), definition.get("value")) {
                    (Some(m), Some(v)) => (
                        m.scalar_text().unwrap_or_default(),
                        v.scalar_text().unwrap_or_default(),
                    ),
                    _ => match entries.iter().find(|(k, _)| {
                        !matches!(
                            k.as_str(),
                            "parents"
                                | "children"
                                | "parents_depth"
                                | "children_depth"
                                | "childrens_parents"
                                | "indirect_selection"
                                | "exclude"
                                | "description"
                        )
                    }) {
                        Some((k, v)) => (k.clone(), v.scalar_text().unwrap_or_default()),
                        None => {
                            return Err(self.located(
                                bad("definition", "a definition needs `method` and `value`"),
                                definition.line,
                            ));
                        }
                    },
                };
                let mut criteria = parse_criteria(&format!("{method}:{value}"))
                    .map_err(|e| self.located(e, definition.line))?;
                criteria.parents = definition.at("parents").as_bool().unwrap_or(false);
                criteria.children = definition.at("children").as_bool().unwrap_or(false);
                criteria.childrens_parents = definition
                    .at("childrens_parents")
                    .as_bool()
                    .unwrap_or(false);
                if let Some(d) = definition
                    .at("parents_depth")
                    .scalar_text()
                    .and_then(|d| d.parse().ok())
                {
                    criteria.parents = true;
                    criteria.parents_depth = Some(d);
                }
                if let Some(d) = definition
                    .at("children_depth")
                    .scalar_text()
                    .and_then(|d| d.parse().ok())
                {
                    criteria.children = true;
                    criteria.children_depth = Some(d);
                }
                criteria.indirect = indirect;
                let spec = Spec::Criteria(criteria);
                match definition.get("exclude") {
                    Some(excluded) => {
                        let mut exclude = Vec::new();
                        for e in excluded.as_seq() {
                            exclude.push(self.definition(e, depth)?);
                        }
                        Ok(Spec::Difference(Box::new(spec), exclude, indirect))
                    }
                    None => Ok(spec),
                }
            }
            _ => Err(self.located(
                bad("definition", "a definition is a string or a mapping"),
                definition.line,
            )),
        }
    }
}

/// Shell-style wildcard match (`*`, `?`, `[abc]`), as dbt's fnmatch.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some('[') => {
                let Some(close) = p.iter().position(|c| *c == ']') else {
                    return !t.is_empty() && t[0] == '[' && go(&p[1..], &t[1..]);
                };
                let Some(c) = t.first() else { return false };
                let class = &p[1..close];
                let (negate, class) = match class.first() {
                    Some('!') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut matched = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        if class[i] <= *c && *c <= class[i + 2] {
                            matched = true;
                        }
                        i += 3;
                    } else {
                        if class[i] == *c {
                            matched = true;
                        }
                        i += 1;
                    }
                }
                matched != negate && go(&p[close + 1..], &t[1..])
            }
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
}

fn has_wildcard(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// dbt's fqn match: the node's name, or a dotted prefix of its fqn, wildcards allowed.
fn fqn_match(node: &Node, selector: &str) -> bool {
    let fqn = &node.fqn;
    if fqn.is_empty() {
        return false;
    }
    if node.version.is_some() && fqn.len() >= 2 {
        let n = fqn.len();
        if fqn[n - 2] == selector || format!("{}_{}", fqn[n - 2], fqn[n - 1]) == selector {
            return true;
        }
        let parts: Vec<&str> = selector.split('.').collect();
        if parts.len() >= 2
            && parts[parts.len() - 2..] == [fqn[n - 2].as_str(), fqn[n - 1].as_str()]
        {
            return true;
        }
    } else if fqn.last().map(String::as_str) == Some(selector) {
        return true;
    }
    let flat: Vec<&str> = fqn.iter().flat_map(|s| s.split('.')).collect();
    let parts: Vec<&str> = selector.split('.').collect();
    if flat.len() < parts.len() {
        return false;
    }
    for (i, part) in parts.iter().enumerate() {
        if has_wildcard(part) {
            return wildcard_match(&parts[i..].join("."), &flat[i..].join("."));
        }
        if flat[i] != *part {
            return false;
        }
    }
    true
}

fn json_matches(value: &Json, wanted: &str) -> bool {
    match value {
        Json::Array(items) => items.iter().any(|i| json_matches(i, wanted)),
        Json::String(s) => s == wanted || (has_wildcard(wanted) && wildcard_match(wanted, s)),
        Json::Bool(b) => b.to_string() == wanted.to_lowercase(),
        Json::Number(n) => n.to_string() == wanted,
        Json::Null => wanted == "none" || wanted == "null",
        Json::Object(_) => false,
    }
}

fn path_match(node: &Node, value: &str) -> bool {
    let value = value.trim_end_matches('/').trim_start_matches("./");
    let mut candidates = vec![node.original_file_path.as_str()];
    if let Some(patch) = &node.patch_path
        && let Some((_, path)) = patch.split_once("://")
    {
        candidates.push(path);
    }
    // Generic tests are selected through their own path only when named exactly.
    candidates.iter().any(|path| {
        *path == value
            || path.starts_with(&format!("{value}/"))
            || (has_wildcard(value) && wildcard_match(value, path))
    })
}

impl Criteria {
    fn matches(&self, node: &Node, state: Option<&State>) -> Result<bool, ProjectError> {
        let value = self.value.as_str();
        let wild = |candidate: &str| {
            candidate == value || (has_wildcard(value) && wildcard_match(value, candidate))
        };
        Ok(match self.method.as_str() {
            // dbt matches fqns against models, seeds, snapshots, tests, analyses and unit tests;
            // sources and exposures have their own methods.
            "fqn" => {
                !matches!(
                    node.resource_type,
                    ResourceType::Source | ResourceType::Exposure
                ) && (value == "*" || fqn_match(node, value))
            }
            "path" => path_match(node, value),
            "file" => {
                let file = node.original_file_path.rsplit('/').next().unwrap_or("");
                let stem = file.rsplit_once('.').map(|(s, _)| s).unwrap_or(file);
                matches!(
                    node.resource_type,
                    ResourceType::Model
                        | ResourceType::Seed
                        | ResourceType::Snapshot
                        | ResourceType::Analysis
                        | ResourceType::Test
                ) && node.test_metadata.is_none()
                    && (wild(file) || wild(stem))
            }
            "tag" => node.tags().iter().any(|t| wild(t)),
            "source" => {
                let Some(source) = &node.source else {
                    return Ok(false);
                };
                let parts: Vec<&str> = value.split('.').collect();
                match parts.as_slice() {
                    [s] => wild_part(s, &source.source_name),
                    [s, t] => wild_part(s, &source.source_name) && wild_part(t, &node.name),
                    [p, s, t] => {
                        wild_part(p, &node.package_name)
                            && wild_part(s, &source.source_name)
                            && wild_part(t, &node.name)
                    }
                    _ => false,
                }
            }
            "exposure" => {
                node.resource_type == ResourceType::Exposure && (wild(&node.name) || value == "*")
            }
            "unit_test" => {
                node.resource_type == ResourceType::UnitTest
                    && (wild(&node.name) || value == "*" || fqn_match(node, value))
            }
            "resource_type" => {
                node.resource_type.as_str() == value
                    || (value == "unit_test" && node.resource_type == ResourceType::UnitTest)
            }
            "package" => wild(&node.package_name),
            "config" => {
                let mut current: Option<&Json> = node.config.get(&self.method_args[0]);
                for key in &self.method_args[1..] {
                    current = current.and_then(|c| c.get(key));
                }
                current.is_some_and(|v| json_matches(v, value))
            }
            "test_type" => match value {
                "generic" | "schema" => {
                    node.resource_type == ResourceType::Test && node.test_metadata.is_some()
                }
                "singular" | "data" => {
                    node.resource_type == ResourceType::Test && node.test_metadata.is_none()
                }
                "unit" => node.resource_type == ResourceType::UnitTest,
                _ => {
                    return Err(bad(
                        &format!("test_type:{value}"),
                        "test_type is one of generic, singular, unit",
                    ));
                }
            },
            "test_name" => node.test_metadata.as_ref().is_some_and(|m| wild(&m.name)),
            "access" => node.config.get("access").and_then(Json::as_str) == Some(value),
            "group" => node
                .config
                .get("group")
                .and_then(Json::as_str)
                .is_some_and(wild),
            "version" => match value {
                "latest" => node.version.is_some() && node.version == node.latest_version,
                "prerelease" | "old" => {
                    let (Some(v), Some(l)) = (&node.version, &node.latest_version) else {
                        return Ok(false);
                    };
                    let cmp = v
                        .parse::<f64>()
                        .ok()
                        .zip(l.parse::<f64>().ok())
                        .map(|(a, b)| a.total_cmp(&b));
                    matches!(
                        (value, cmp),
                        ("prerelease", Some(std::cmp::Ordering::Greater))
                            | ("old", Some(std::cmp::Ordering::Less))
                    )
                }
                "none" => node.version.is_none(),
                _ => false,
            },
            "state" => {
                let Some(state) = state else {
                    return Err(bad(
                        &format!("state:{value}"),
                        "state selection needs --state DIR holding a manifest.json",
                    ));
                };
                state.matches(node, value, &self.method_args)?
            }
            "result" => {
                let Some(state) = state else {
                    return Err(bad(
                        &format!("result:{value}"),
                        "result selection needs --state DIR holding a run_results.json",
                    ));
                };
                state
                    .result_of(&node.unique_id)
                    .is_some_and(|status| status == value)
            }
            _ => false,
        })
    }
}

fn wild_part(pattern: &str, text: &str) -> bool {
    pattern == text || pattern == "*" || (has_wildcard(pattern) && wildcard_match(pattern, text))
}

struct Selector<'a> {
    project: &'a Project,
    state: Option<&'a State>,
    default_indirect: IndirectSelection,
}

impl Selector<'_> {
    fn collect(&self, criteria: &Criteria) -> Result<BTreeSet<UniqueId>, ProjectError> {
        let graph = &self.project.graph;
        let mut direct = BTreeSet::new();
        for node in self.project.nodes.values() {
            if criteria.matches(node, self.state)? {
                direct.insert(node.unique_id.clone());
            }
        }
        let mut selected = direct.clone();
        if criteria.childrens_parents {
            let descendants = graph.descendants(&direct, None);
            let mut with_children: BTreeSet<UniqueId> =
                direct.union(&descendants).cloned().collect();
            let ancestors = graph.ancestors(&with_children, None);
            with_children.extend(ancestors);
            selected = with_children;
        }
        if criteria.parents {
            selected.extend(graph.ancestors(&direct, criteria.parents_depth));
        }
        if criteria.children {
            selected.extend(graph.descendants(&direct, criteria.children_depth));
        }
        Ok(selected)
    }

    fn can_select_indirectly(&self, id: &str) -> bool {
        self.project
            .nodes
            .get(id)
            .is_some_and(|n| matches!(n.resource_type, ResourceType::Test | ResourceType::UnitTest))
    }

    fn parents_of(&self, id: &str) -> BTreeSet<UniqueId> {
        self.project
            .graph
            .parents
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    /// dbt's `expand_selection`: tests of selected nodes join directly (eager, or all parents
    /// selected) or wait as indirect candidates (cautious/buildable).
    fn expand(
        &self,
        selected: BTreeSet<UniqueId>,
        mode: IndirectSelection,
    ) -> (BTreeSet<UniqueId>, BTreeSet<UniqueId>) {
        let graph = &self.project.graph;
        let mut direct = selected.clone();
        let mut indirect = BTreeSet::new();
        let selected_and_parents: BTreeSet<UniqueId> = if mode == IndirectSelection::Buildable {
            let mut all: BTreeSet<UniqueId> = selected
                .union(&graph.ancestors(&selected, None))
                .cloned()
                .collect();
            all.extend(
                self.project
                    .nodes
                    .values()
                    .filter(|n| n.resource_type == ResourceType::Source)
                    .map(|n| n.unique_id.clone()),
            );
            all
        } else {
            BTreeSet::new()
        };
        for id in graph.descendants(&selected, Some(1)) {
            if !self.can_select_indirectly(&id) {
                continue;
            }
            let parents = self.parents_of(&id);
            match mode {
                IndirectSelection::Empty => {}
                IndirectSelection::Eager => {
                    direct.insert(id);
                }
                _ if parents.is_subset(&selected) => {
                    direct.insert(id);
                }
                IndirectSelection::Buildable if parents.is_subset(&selected_and_parents) => {
                    direct.insert(id);
                }
                _ => {
                    indirect.insert(id);
                }
            }
        }
        (direct, indirect)
    }

    fn incorporate(
        &self,
        direct: BTreeSet<UniqueId>,
        indirect: &BTreeSet<UniqueId>,
        mode: IndirectSelection,
    ) -> BTreeSet<UniqueId> {
        if &direct == indirect {
            return direct;
        }
        let mut selected = direct.clone();
        match mode {
            IndirectSelection::Cautious => {
                for id in indirect {
                    if self.parents_of(id).is_subset(&selected) {
                        selected.insert(id.clone());
                    }
                }
            }
            IndirectSelection::Buildable => {
                let ancestors = self.project.graph.ancestors(&selected, None);
                let with_parents: BTreeSet<UniqueId> =
                    selected.union(&ancestors).cloned().collect();
                for id in indirect {
                    if self.parents_of(id).is_subset(&with_parents) {
                        selected.insert(id.clone());
                    }
                }
            }
            _ => {}
        }
        selected
    }

    fn run(&self, spec: &Spec) -> Result<(BTreeSet<UniqueId>, BTreeSet<UniqueId>), ProjectError> {
        let (parts, combine, indirect): (Vec<&Spec>, u8, Option<IndirectSelection>) = match spec {
            Spec::Criteria(criteria) => {
                let collected = self.collect(criteria)?;
                return Ok(self.expand(
                    collected,
                    criteria.indirect.unwrap_or(self.default_indirect),
                ));
            }
            Spec::Union(items, mode) => (items.iter().collect(), 0, *mode),
            Spec::Intersection(items, mode) => (items.iter().collect(), 1, *mode),
            Spec::Difference(first, rest, mode) => {
                let mut parts = vec![first.as_ref()];
                parts.extend(rest.iter());
                (parts, 2, *mode)
            }
        };
        let mut direct_sets = Vec::new();
        let mut indirect_sets = Vec::new();
        for part in parts {
            let (direct, indirect) = self.run(part)?;
            indirect_sets.push(direct.union(&indirect).cloned().collect::<BTreeSet<_>>());
            direct_sets.push(direct);
        }
        let combine_sets = |sets: Vec<BTreeSet<UniqueId>>| -> BTreeSet<UniqueId> {
            let mut iter = sets.into_iter();
            let Some(first) = iter.next() else {
                return BTreeSet::new();
            };
            match combine {
                0 => iter.fold(first, |acc, s| acc.union(&s).cloned().collect()),
                1 => iter.fold(first, |acc, s| acc.intersection(&s).cloned().collect()),
                _ => {
                    let rest: BTreeSet<UniqueId> = iter.flatten().collect();
                    first.difference(&rest).cloned().collect()
                }
            }
        };
        let initial_direct = combine_sets(direct_sets);
        let indirect_all = combine_sets(indirect_sets);
        let direct = self.incorporate(
            initial_direct,
            &indirect_all,
            indirect.unwrap_or(self.default_indirect),
        );
        Ok((direct, indirect_all))
    }
}

/// The unique ids a selection picks, as `dbt ls --select ... --exclude ...` lists them.
pub fn select(
    project: &Project,
    selection: &Selection,
) -> Result<BTreeSet<UniqueId>, ProjectError> {
    let spec = if let Some(name) = &selection.selector {
        if !selection.select.is_empty() || !selection.exclude.is_empty() {
            return Err(bad(
                name,
                "--selector cannot be combined with --select or --exclude",
            ));
        }
        project.selectors.spec(name)?
    } else if selection.select.is_empty()
        && project.selectors.default.is_some()
        && selection.exclude.is_empty()
    {
        let name = project.selectors.default.clone().unwrap_or_default();
        project.selectors.spec(&name)?
    } else {
        let include = if selection.select.is_empty() {
            parse_cli(&[
                "fqn:*".to_string(),
                "source:*".to_string(),
                "exposure:*".to_string(),
                "unit_test:*".to_string(),
            ])?
        } else {
            parse_cli(&selection.select)?
        };
        if selection.exclude.is_empty() {
            include
        } else {
            Spec::Difference(
                Box::new(include),
                // dbt parses --exclude eagerly: excluding a node always excludes its tests.
                vec![parse_cli_with(
                    &selection.exclude,
                    Some(IndirectSelection::Eager),
                )?],
                None,
            )
        }
    };
    let selector = Selector {
        project,
        state: selection.state.as_ref(),
        default_indirect: selection.indirect_selection,
    };
    let (direct, _) = selector.run(&spec)?;
    Ok(direct
        .into_iter()
        .filter(|id| {
            let Some(node) = project.nodes.get(id) else {
                return false;
            };
            selection
                .resource_types
                .as_ref()
                .is_none_or(|types| types.contains(&node.resource_type))
        })
        .collect())
}
