//! State comparison for `state:` and `result:` selection: a previous run's `manifest.json`
//! (dbt's v12 shape) and `run_results.json` read from `--state DIR`, and a manifest writer in
//! the same shape so weir's own runs leave a state to compare against.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value as Json, json};

use super::Project;
use super::error::{ProjectError, ProjectErrorKind};
use super::node::{DocBlock, Macro, Node, ResourceType, UniqueId};

/// What a previous manifest says about one node, the fields dbt's `same_contents` compares.
#[derive(Debug, Clone, PartialEq)]
pub struct StateNode {
    pub resource_type: String,
    pub checksum: String,
    pub config: Json,
    pub fqn: Json,
    pub relation: (Json, Json, Json),
    /// Sources and exposures have no file checksum; their YAML fields are compared instead.
    pub yaml_body: Json,
}

/// A previous run: its manifest's nodes and the status of each result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub nodes: BTreeMap<UniqueId, StateNode>,
    pub results: BTreeMap<UniqueId, String>,
}

fn state_error(path: &Path, reason: String) -> ProjectError {
    ProjectError::new(ProjectErrorKind::Io {
        path: path.to_path_buf(),
        reason,
    })
}

impl State {
    /// Reads `<dir>/manifest.json` (required) and `<dir>/run_results.json` (optional).
    pub fn load(dir: &Path) -> Result<State, ProjectError> {
        let manifest_path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
            state_error(&manifest_path, e.to_string()).hint(
                "--state must name the target folder of an earlier run (it holds manifest.json)",
            )
        })?;
        let manifest: Json = serde_json::from_str(&text)
            .map_err(|e| state_error(&manifest_path, format!("not a manifest: {e}")))?;
        let mut state = State::default();
        for section in ["nodes", "sources", "exposures", "unit_tests"] {
            let Some(Json::Object(nodes)) = manifest.get(section) else {
                continue;
            };
            for (id, node) in nodes {
                state.nodes.insert(id.clone(), state_node_of(node));
            }
        }
        let results_path = dir.join("run_results.json");
        if let Ok(text) = std::fs::read_to_string(&results_path) {
            let results: Json = serde_json::from_str(&text)
                .map_err(|e| state_error(&results_path, format!("not run results: {e}")))?;
            for result in results
                .get("results")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
            {
                if let (Some(id), Some(status)) = (
                    result.get("unique_id").and_then(Json::as_str),
                    result.get("status").and_then(Json::as_str),
                ) {
                    state.results.insert(id.to_string(), status.to_string());
                }
            }
        }
        Ok(state)
    }

    pub fn result_of(&self, id: &str) -> Option<&str> {
        self.results.get(id).map(String::as_str)
    }

    /// `state:new`, `state:old`, `state:modified` (and `.body`, `.configs`, `.relation`),
    /// `state:unmodified`.
    pub fn matches(&self, node: &Node, value: &str, args: &[String]) -> Result<bool, ProjectError> {
        let (value, sub) = match value.split_once('.') {
            Some((v, s)) => (v, Some(s.to_string())),
            None => (value, args.first().cloned()),
        };
        let old = self.nodes.get(&node.unique_id);
        let current = state_node_of(&node_json(node));
        let modified = |old: &StateNode, sub: Option<&str>| -> bool {
            let body = old.checksum != current.checksum || old.yaml_body != current.yaml_body;
            let configs = old.config != current.config;
            let relation = old.relation != current.relation;
            match sub {
                Some("body") => body,
                Some("configs") => configs,
                Some("relation") => relation,
                _ => body || configs || relation || old.fqn != current.fqn,
            }
        };
        Ok(match value {
            "new" => old.is_none(),
            "old" => old.is_some(),
            "modified" => old.is_none_or(|old| modified(old, sub.as_deref())),
            "unmodified" => old.is_some_and(|old| !modified(old, sub.as_deref())),
            other => {
                return Err(ProjectError::new(ProjectErrorKind::Selector(format!(
                    "state:{other}"
                )))
                .hint("state is one of new, old, modified, unmodified"));
            }
        })
    }
}

/// Keys of config whose values are not part of what dbt compares for `state:modified`.
fn comparable_config(config: &Json) -> Json {
    let Json::Object(map) = config else {
        return config.clone();
    };
    // Unset keys (null, empty list or map) are dropped so that a manifest written by dbt-core,
    // whose configs list more defaults than weir's, compares equal for the same project.
    let map = map
        .iter()
        .filter(|(key, value)| {
            let unset = match value {
                Json::Null => true,
                Json::Array(a) => a.is_empty(),
                Json::Object(o) => o.is_empty(),
                _ => false,
            };
            // dbt-core 1.11 writes microbatch's default `lookback: 1` into every config.
            let default_lookback = key.as_str() == "lookback" && value.as_i64() == Some(1);
            key.as_str() != "docs" && !unset && !default_lookback
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Json::Object(map)
}

fn state_node_of(node: &Json) -> StateNode {
    let get = |key: &str| node.get(key).cloned().unwrap_or(Json::Null);
    let mut yaml_body = Map::new();
    for key in [
        "freshness",
        "loaded_at_field",
        "identifier",
        "quoting",
        "columns",
        "test_metadata",
        "depends_on",
        "given",
        "expect",
        "owner",
        "type",
    ] {
        if let Some(value) = node.get(key) {
            yaml_body.insert(key.to_string(), value.clone());
        }
    }
    // Columns only count for nodes without a file body (sources); a model's columns change its
    // docs, which dbt compares only with persist_docs.
    if node
        .get("checksum")
        .and_then(|c| c.get("name"))
        .and_then(Json::as_str)
        == Some("sha256")
    {
        yaml_body.remove("columns");
        yaml_body.remove("depends_on");
    }
    yaml_body.remove("depends_on");
    StateNode {
        resource_type: get("resource_type")
            .as_str()
            .unwrap_or_default()
            .to_string(),
        checksum: node
            .get("checksum")
            .and_then(|c| c.get("checksum"))
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string(),
        config: comparable_config(&get("config")),
        fqn: get("fqn"),
        relation: (get("database"), get("schema"), get("alias")),
        yaml_body: Json::Object(yaml_body),
    }
}

/// One node in the manifest v12 shape (the fields known before compilation).
pub fn node_json(node: &Node) -> Json {
    let mut out = json!({
        "database": node.database,
        "schema": node.schema,
        "name": node.name,
        "resource_type": node.resource_type.as_str(),
        "package_name": node.package_name,
        "path": node.path,
        "original_file_path": node.original_file_path,
        "unique_id": node.unique_id,
        "fqn": node.fqn,
        "description": node.description,
        "meta": node.config.get("meta").cloned().unwrap_or(json!({})),
        "tags": node.tags(),
        "config": node.config,
        "patch_path": node.patch_path,
        "unrendered_config": {},
    });
    let Json::Object(map) = &mut out else {
        return out;
    };
    let columns: Map<String, Json> = node
        .columns
        .iter()
        .map(|(name, c)| {
            (
                name.clone(),
                json!({
                    "name": c.name, "description": c.description, "meta": c.meta,
                    "data_type": c.data_type, "constraints": c.constraints, "quote": c.quote,
                    "tags": c.tags,
                }),
            )
        })
        .collect();
    map.insert("columns".to_string(), Json::Object(columns));
    match node.resource_type {
        ResourceType::Source => {
            if let Some(source) = &node.source {
                map.insert("source_name".into(), json!(source.source_name));
                map.insert(
                    "source_description".into(),
                    json!(source.source_description),
                );
                map.insert("identifier".into(), json!(source.identifier));
                map.insert("loader".into(), json!(source.loader));
                map.insert("loaded_at_field".into(), json!(source.loaded_at_field));
                map.insert("freshness".into(), source.freshness.clone());
                map.insert("quoting".into(), source.quoting.clone());
                map.insert("source_meta".into(), source.source_meta.clone());
                map.insert("relation_name".into(), Json::Null);
            }
        }
        ResourceType::Exposure => {
            if let Some(exposure) = &node.exposure {
                map.insert("type".into(), json!(exposure.exposure_type));
                map.insert("owner".into(), exposure.owner.clone());
                map.insert("label".into(), json!(exposure.label));
                map.insert("maturity".into(), json!(exposure.maturity));
                map.insert("url".into(), json!(exposure.url));
            }
            map.insert(
                "depends_on".into(),
                json!({"macros": [], "nodes": node.depends_on}),
            );
            map.insert("refs".into(), refs_json(node));
            map.insert("sources".into(), sources_json(node));
        }
        ResourceType::UnitTest => {
            if let Some(unit) = &node.unit_test {
                map.insert("model".into(), json!(unit.model));
                map.insert("given".into(), unit.given.clone());
                map.insert("expect".into(), unit.expect.clone());
                map.insert("overrides".into(), unit.overrides.clone());
            }
            map.insert(
                "depends_on".into(),
                json!({"macros": [], "nodes": node.depends_on}),
            );
        }
        _ => {
            map.insert("alias".into(), json!(node.alias));
            map.insert("checksum".into(), json!(node.checksum));
            map.insert("raw_code".into(), json!(node.raw_code));
            map.insert("language".into(), json!(node.language));
            map.insert(
                "docs".into(),
                node.config
                    .get("docs")
                    .cloned()
                    .unwrap_or(json!({"show": true, "node_color": null})),
            );
            map.insert("refs".into(), refs_json(node));
            map.insert("sources".into(), sources_json(node));
            map.insert("metrics".into(), json!([]));
            map.insert(
                "depends_on".into(),
                json!({"macros": node.depends_on_macros, "nodes": node.depends_on}),
            );
            map.insert("build_path".into(), Json::Null);
            map.insert("compiled_path".into(), Json::Null);
            if node.resource_type == ResourceType::Seed {
                // dbt's SeedNode has no code-related fields (its schema forbids them).
                for key in ["language", "refs", "sources", "metrics", "compiled_path"] {
                    map.remove(key);
                }
                map.insert(
                    "depends_on".into(),
                    json!({"macros": node.depends_on_macros}),
                );
            }
            if node.resource_type == ResourceType::Model {
                map.insert("version".into(), json!(node.version));
                map.insert("latest_version".into(), json!(node.latest_version));
                map.insert(
                    "access".into(),
                    node.config
                        .get("access")
                        .cloned()
                        .unwrap_or(json!("protected")),
                );
                map.insert("constraints".into(), json!([]));
                map.insert(
                    "contract".into(),
                    node.config
                        .get("contract")
                        .cloned()
                        .unwrap_or(json!({"enforced": false})),
                );
            }
            if node.resource_type == ResourceType::Test {
                if let Some(metadata) = &node.test_metadata {
                    map.insert("test_metadata".into(), json!({"name": metadata.name, "kwargs": metadata.kwargs, "namespace": metadata.namespace}));
                }
                map.insert("column_name".into(), json!(node.column_name));
                map.insert("file_key_name".into(), json!(node.file_key_name));
                map.insert("attached_node".into(), json!(node.attached_node));
            }
        }
    }
    out
}

fn refs_json(node: &Node) -> Json {
    Json::Array(
        node.refs
            .iter()
            .map(|r| json!({"name": r.name, "package": r.package, "version": r.version}))
            .collect(),
    )
}

fn sources_json(node: &Node) -> Json {
    Json::Array(
        node.sources
            .iter()
            .map(|s| json!([s.source, s.table]))
            .collect(),
    )
}

/// The manifest section a node is listed in.
fn section_of(resource_type: ResourceType) -> &'static str {
    match resource_type {
        ResourceType::Source => "sources",
        ResourceType::Exposure => "exposures",
        ResourceType::UnitTest => "unit_tests",
        _ => "nodes",
    }
}

fn macro_json(m: &Macro) -> Json {
    json!({
        "name": m.name, "resource_type": "macro", "package_name": m.package_name,
        "path": m.path, "original_file_path": m.original_file_path, "unique_id": m.unique_id,
        "macro_sql": m.macro_sql, "depends_on": {"macros": []}, "description": "",
        "meta": {}, "docs": {"show": true, "node_color": null}, "patch_path": null,
        "arguments": m.arguments.iter().map(|a| json!({"name": a, "type": null, "description": ""})).collect::<Vec<_>>(),
    })
}

fn doc_json(d: &DocBlock) -> Json {
    json!({
        "name": d.name, "resource_type": "doc", "package_name": d.package_name,
        "path": d.path, "original_file_path": d.original_file_path,
        "unique_id": d.unique_id, "block_contents": d.block_contents,
    })
}

fn metadata_json(project: &Project, generated_at: &str) -> Json {
    json!({
        "dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json",
        "dbt_version": "1.11.0",
        "generated_at": generated_at,
        "invocation_id": null,
        "env": {},
        "project_name": project.settings.name,
        "adapter_type": project.profile.as_ref().map(|p| p.adapter_type.clone()),
    })
}

/// The top-level keys of the manifest, in dbt's order.
const MANIFEST_KEYS: &[&str] = &[
    "metadata",
    "nodes",
    "sources",
    "macros",
    "docs",
    "exposures",
    "metrics",
    "groups",
    "selectors",
    "disabled",
    "parent_map",
    "child_map",
    "group_map",
    "saved_queries",
    "semantic_models",
    "unit_tests",
];

/// A manifest of `project` in dbt's v12 shape (nodes, sources, exposures, unit tests, macros,
/// docs, disabled, parent and child maps), as written to `target/manifest.json`.
pub fn manifest_json(project: &Project, generated_at: &str) -> Json {
    let manifest = Manifest {
        project,
        generated_at,
    };
    Json::Object(
        MANIFEST_KEYS
            .iter()
            .map(|key| (key.to_string(), manifest.entry(key).to_json()))
            .collect(),
    )
}

/// Writes `manifest.json` into `dir` (created if missing).
pub fn write_manifest(project: &Project, dir: &Path) -> Result<(), ProjectError> {
    std::fs::create_dir_all(dir).map_err(|e| state_error(dir, e.to_string()))?;
    let path = dir.join("manifest.json");
    let file = std::fs::File::create(&path).map_err(|e| state_error(&path, e.to_string()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
    write_manifest_to(project, &now_rfc3339(), &mut out)
        .map_err(|e| state_error(&path, e.to_string()))?;
    out.flush().map_err(|e| state_error(&path, e.to_string()))
}

/// Writes what `manifest_json` returns, pretty-printed, one node at a time: the whole tree of
/// 10,000 models (and the text of it) was most of parsing them, in allocation and page faults.
pub fn write_manifest_to(
    project: &Project,
    generated_at: &str,
    out: impl std::io::Write,
) -> serde_json::Result<()> {
    let mut serializer = serde_json::Serializer::pretty(out);
    Manifest {
        project,
        generated_at,
    }
    .serialize(&mut serializer)
}

struct Manifest<'a> {
    project: &'a Project,
    generated_at: &'a str,
}

/// One top-level entry of the manifest, serialized on demand.
enum Entry<'a> {
    Value(Json),
    Nodes(&'a Project, &'static str),
    Macros(&'a BTreeMap<UniqueId, Macro>),
    Docs(&'a BTreeMap<UniqueId, DocBlock>),
    Disabled(&'a BTreeMap<UniqueId, Node>),
    Edges(&'a BTreeMap<UniqueId, BTreeSet<UniqueId>>),
}

impl<'a> Manifest<'a> {
    fn entry(&self, key: &'static str) -> Entry<'a> {
        let project = self.project;
        match key {
            "metadata" => Entry::Value(metadata_json(project, self.generated_at)),
            "nodes" | "sources" | "exposures" | "unit_tests" => Entry::Nodes(project, key),
            "macros" => Entry::Macros(&project.macros),
            "docs" => Entry::Docs(&project.docs),
            "disabled" => Entry::Disabled(&project.disabled),
            "parent_map" => Entry::Edges(&project.graph.parents),
            "child_map" => Entry::Edges(&project.graph.children),
            _ => Entry::Value(Json::Object(Map::new())),
        }
    }
}

impl Entry<'_> {
    fn to_json(&self) -> Json {
        match self {
            Entry::Value(value) => value.clone(),
            Entry::Nodes(project, section) => Json::Object(
                project
                    .nodes
                    .iter()
                    .filter(|(_, n)| section_of(n.resource_type) == *section)
                    .map(|(id, n)| (id.clone(), node_json(n)))
                    .collect(),
            ),
            Entry::Macros(macros) => Json::Object(
                macros
                    .iter()
                    .map(|(id, m)| (id.clone(), macro_json(m)))
                    .collect(),
            ),
            Entry::Docs(docs) => Json::Object(
                docs.iter()
                    .map(|(id, d)| (id.clone(), doc_json(d)))
                    .collect(),
            ),
            Entry::Disabled(nodes) => Json::Object(
                nodes
                    .iter()
                    .map(|(id, n)| (id.clone(), json!([node_json(n)])))
                    .collect(),
            ),
            Entry::Edges(edges) => {
                Json::Object(edges.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
            }
        }
    }
}

impl Serialize for Manifest<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(MANIFEST_KEYS.len()))?;
        for key in MANIFEST_KEYS {
            map.serialize_entry(key, &self.entry(key))?;
        }
        map.end()
    }
}

impl Serialize for Entry<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        fn entries<S: Serializer, K: Serialize, V: Serialize>(
            serializer: S,
            items: impl Iterator<Item = (K, V)> + Clone,
        ) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(Some(items.clone().count()))?;
            for (key, value) in items {
                map.serialize_entry(&key, &value)?;
            }
            map.end()
        }
        match self {
            Entry::Value(value) => value.serialize(serializer),
            Entry::Nodes(project, section) => entries(
                serializer,
                project
                    .nodes
                    .iter()
                    .filter(|(_, n)| section_of(n.resource_type) == *section)
                    .map(|(id, n)| (id, Lazy(n, node_json))),
            ),
            Entry::Macros(macros) => entries(
                serializer,
                macros.iter().map(|(id, m)| (id, Lazy(m, macro_json))),
            ),
            Entry::Docs(docs) => entries(
                serializer,
                docs.iter().map(|(id, d)| (id, Lazy(d, doc_json))),
            ),
            Entry::Disabled(nodes) => entries(
                serializer,
                nodes.iter().map(|(id, n)| (id, [Lazy(n, node_json)])),
            ),
            Entry::Edges(edges) => entries(serializer, edges.iter()),
        }
    }
}

/// A value turned into JSON only when serialized (and dropped right after).
#[derive(Clone, Copy)]
struct Lazy<'a, T>(&'a T, fn(&T) -> Json);

impl<T> Serialize for Lazy<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (self.1)(self.0).serialize(serializer)
    }
}

/// UTC now as `2026-01-02T03:04:05.000000Z`, without a date crate.
fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        now.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::LoadOptions;

    #[test]
    fn the_streamed_manifest_is_the_pretty_printed_manifest_json() {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in [
            (
                "dbt_project.yml",
                "name: shop\nprofile: p\nmodels:\n  shop:\n    +materialized: view\n    legacy:\n      +enabled: false\n",
            ),
            ("models/a.sql", "select 1 as id"),
            (
                "models/b.sql",
                "{{ config(tags=['x']) }}\nselect * from {{ ref('a') }}",
            ),
            ("models/legacy/old.sql", "select 2 as id"),
            (
                "models/schema.yml",
                "version: 2\nmodels:\n  - name: b\n    description: \"b\"\n    columns:\n      - name: id\n        data_tests: [unique]\nsources:\n  - name: raw\n    tables: [{name: t}]\n",
            ),
            ("macros/m.sql", "{% macro m(x) %}{{ x }}{% endmacro %}"),
            ("docs/d.md", "{% docs d %}text{% enddocs %}"),
            ("seeds/s.csv", "id\n1\n"),
        ] {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let options = LoadOptions {
            skip_profile: true,
            ..Default::default()
        };
        let project = Project::load(dir.path(), &options).unwrap();
        assert!(!project.disabled.is_empty() && !project.macros.is_empty());
        let mut streamed = Vec::new();
        write_manifest_to(&project, "2026-01-02T03:04:05.000000Z", &mut streamed).unwrap();
        let whole =
            serde_json::to_string_pretty(&manifest_json(&project, "2026-01-02T03:04:05.000000Z"))
                .unwrap();
        assert_eq!(String::from_utf8(streamed).unwrap(), whole);
    }
}
