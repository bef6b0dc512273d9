//! Config resolution in dbt's order: built-in defaults < `dbt_project.yml` folder configs (the
//! package's own, then the root project's, least to most specific path) < property YAML
//! `config:` < in-file `{{ config(...) }}` (supplied later by the compiler through
//! [`merge_config`]). dbt's merge rules: `tags` and hooks append, `meta`, `docs`, `quoting`,
//! `column_types`, `persist_docs`, `contract` and `grants` merge key by key, the rest replace.

use serde_json::{Map, Value as Json, json};

use super::node::{Config, ResourceType};
use super::yaml::Yaml;

/// Keys dbt accepts without a `+` in `dbt_project.yml` trees; any other plain key is a folder.
const KNOWN_KEYS: &[&str] = &[
    "enabled",
    "materialized",
    "tags",
    "meta",
    "docs",
    "schema",
    "database",
    "alias",
    "pre-hook",
    "post-hook",
    "pre_hook",
    "post_hook",
    "persist_docs",
    "quoting",
    "column_types",
    "full_refresh",
    "unique_key",
    "on_schema_change",
    "on_configuration_change",
    "grants",
    "packages",
    "contract",
    "access",
    "group",
    "incremental_strategy",
    "sql_header",
    "bind",
    "delimiter",
    "quote_columns",
    "strategy",
    "updated_at",
    "check_cols",
    "target_schema",
    "target_database",
    "invalidate_hard_deletes",
    "hard_deletes",
    "snapshot_meta_column_names",
    "dbt_valid_to_current",
    "severity",
    "where",
    "limit",
    "warn_if",
    "error_if",
    "fail_calc",
    "store_failures",
    "store_failures_as",
    "event_time",
    "batch_size",
    "lookback",
    "begin",
    "freshness",
    "loaded_at_field",
    "docs",
    "cluster_by",
    "partition_by",
    "indexes",
];

const APPEND: &[&str] = &["tags", "pre-hook", "post-hook"];
const UPDATE: &[&str] = &[
    "meta",
    "docs",
    "quoting",
    "column_types",
    "persist_docs",
    "contract",
    "snapshot_meta_column_names",
];

/// dbt's built-in defaults for a resource type, as the manifest shows them.
pub fn defaults(resource_type: ResourceType) -> Config {
    // Built once per resource type: `Project::load` asks for every node (10,000 models make
    // building the three `json!` maps each time a tenth of a parse).
    static DEFAULTS: std::sync::LazyLock<Vec<(ResourceType, Config)>> =
        std::sync::LazyLock::new(|| {
            [
                ResourceType::Model,
                ResourceType::Seed,
                ResourceType::Snapshot,
                ResourceType::Test,
                ResourceType::UnitTest,
                ResourceType::Source,
                ResourceType::Analysis,
                ResourceType::Exposure,
            ]
            .into_iter()
            .map(|t| (t, build_defaults(t)))
            .collect()
        });
    DEFAULTS
        .iter()
        .find(|(t, _)| *t == resource_type)
        .map(|(_, config)| config.clone())
        .unwrap_or_else(|| build_defaults(resource_type))
}

fn build_defaults(resource_type: ResourceType) -> Config {
    let common = json!({
        "enabled": true,
        "alias": null,
        "schema": null,
        "database": null,
        "tags": [],
        "meta": {},
    });
    let node = json!({
        "group": null,
        "quoting": {},
        "column_types": {},
        "full_refresh": null,
        "unique_key": null,
        "on_schema_change": "ignore",
        "on_configuration_change": "apply",
        "grants": {},
        "packages": [],
        "docs": {"show": true, "node_color": null},
        "contract": {"enforced": false, "alias_types": true},
        "persist_docs": {},
        "post-hook": [],
        "pre-hook": [],
        "event_time": null,
    });
    let specific = match resource_type {
        ResourceType::Model => json!({"materialized": "view", "access": "protected"}),
        ResourceType::Analysis => json!({"materialized": "view"}),
        ResourceType::Seed => {
            json!({"materialized": "seed", "delimiter": ",", "quote_columns": null})
        }
        ResourceType::Snapshot => json!({
            "materialized": "snapshot",
            "strategy": null,
            "target_schema": null,
            "target_database": null,
            "updated_at": null,
            "check_cols": null,
        }),
        ResourceType::Test => json!({
            "materialized": "test",
            "severity": "ERROR",
            "store_failures": null,
            "store_failures_as": null,
            "where": null,
            "limit": null,
            "fail_calc": "count(*)",
            "warn_if": "!= 0",
            "error_if": "!= 0",
            "schema": "dbt_test__audit",
        }),
        ResourceType::Source | ResourceType::Exposure | ResourceType::UnitTest => json!({}),
    };
    let mut out = Map::new();
    for part in [&common, &specific] {
        if let Json::Object(map) = part {
            out.extend(map.clone());
        }
    }
    if matches!(
        resource_type,
        ResourceType::Model
            | ResourceType::Seed
            | ResourceType::Snapshot
            | ResourceType::Test
            | ResourceType::Analysis
    ) && let Json::Object(map) = node
    {
        for (k, v) in map {
            out.entry(k).or_insert(v);
        }
    }
    if resource_type == ResourceType::Test {
        // Tests carry only dbt's test config fields.
        for key in [
            "grants",
            "packages",
            "contract",
            "persist_docs",
            "docs",
            "access",
            "on_schema_change",
            "on_configuration_change",
            "quoting",
            "column_types",
            "full_refresh",
            "unique_key",
            "post-hook",
            "pre-hook",
        ] {
            out.remove(key);
        }
    }
    if matches!(
        resource_type,
        ResourceType::Source | ResourceType::Exposure | ResourceType::UnitTest
    ) {
        for key in ["alias", "schema", "database"] {
            out.remove(key);
        }
    }
    out
}

/// `pre_hook` → `pre-hook`; a `+` prefix dropped.
pub fn normalize_key(key: &str) -> String {
    let key = key.strip_prefix('+').unwrap_or(key);
    match key {
        "pre_hook" => "pre-hook".to_string(),
        "post_hook" => "post-hook".to_string(),
        other => other.to_string(),
    }
}

fn as_list(value: &Json) -> Vec<Json> {
    match value {
        Json::Array(items) => items.clone(),
        Json::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// Hooks as the manifest writes them: `{sql, transaction, index}` objects.
fn hook_list(value: &Json) -> Vec<Json> {
    as_list(value)
        .into_iter()
        .map(|hook| match hook {
            Json::String(sql) => json!({"sql": sql, "transaction": true, "index": null}),
            other => other,
        })
        .collect()
}

/// Merges one config layer into `base` by dbt's rules.
pub fn merge_config(base: &mut Config, layer: &Map<String, Json>) {
    for (raw_key, value) in layer {
        let key = normalize_key(raw_key);
        if APPEND.contains(&key.as_str()) {
            let mut items = match key.as_str() {
                "tags" => as_list(base.get(&key).unwrap_or(&Json::Null)),
                _ => hook_list(base.get(&key).unwrap_or(&Json::Null)),
            };
            let new = if key == "tags" {
                as_list(value)
            } else {
                hook_list(value)
            };
            for item in new {
                if key != "tags" || !items.contains(&item) {
                    items.push(item);
                }
            }
            base.insert(key, Json::Array(items));
        } else if key == "grants" {
            // Grants merge per privilege; a `+select` key adds grantees instead of replacing.
            let mut merged = match base.get("grants") {
                Some(Json::Object(m)) => m.clone(),
                _ => Map::new(),
            };
            if let Json::Object(grants) = value {
                for (privilege, grantees) in grants {
                    if let Some(name) = privilege.strip_prefix('+') {
                        let mut list = as_list(merged.get(name).unwrap_or(&Json::Null));
                        list.extend(as_list(grantees));
                        merged.insert(name.to_string(), Json::Array(list));
                    } else {
                        merged.insert(privilege.clone(), Json::Array(as_list(grantees)));
                    }
                }
            }
            base.insert(key, Json::Object(merged));
        } else if UPDATE.contains(&key.as_str()) {
            match (base.get_mut(&key), value) {
                (Some(Json::Object(existing)), Json::Object(new)) => {
                    for (k, v) in new {
                        existing.insert(k.clone(), v.clone());
                    }
                }
                _ => {
                    base.insert(key, value.clone());
                }
            }
        } else {
            base.insert(key, value.clone());
        }
    }
}

/// The config layers a `dbt_project.yml` tree gives a node whose fqn is `fqn` (package first),
/// least specific first.
pub fn folder_layers(tree: &Yaml, fqn: &[String]) -> Vec<Map<String, Json>> {
    let mut layers = Vec::new();
    // The top level holds configs for every package plus one subtree per package name.
    let (top, subtrees) = split_level(tree);
    layers.push(top);
    let Some(package) = fqn.first() else {
        return layers;
    };
    let mut current = subtrees
        .into_iter()
        .find(|(k, _)| *k == package)
        .map(|(_, v)| v);
    let mut depth = 1;
    while let Some(level) = current {
        let (configs, children) = split_level(level);
        layers.push(configs);
        let Some(part) = fqn.get(depth) else { break };
        current = children
            .into_iter()
            .find(|(k, _)| *k == part)
            .map(|(_, v)| v);
        depth += 1;
    }
    layers
}

fn split_level(level: &Yaml) -> (Map<String, Json>, Vec<(&String, &Yaml)>) {
    let mut configs = Map::new();
    let mut children = Vec::new();
    for (key, value) in level.as_map() {
        if key.starts_with('+')
            || (KNOWN_KEYS.contains(&key.as_str()) && !value.is_map_of_folders())
        {
            configs.insert(key.clone(), value.to_json());
        } else if value.is_map() {
            children.push((key, value));
        } else {
            configs.insert(key.clone(), value.to_json());
        }
    }
    (configs, children)
}

impl Yaml {
    /// A known config key whose value is a mapping is still a config (`docs: {show: false}`);
    /// this only exists so folder names that collide with config names stay folders when
    /// their values hold `+` keys.
    fn is_map_of_folders(&self) -> bool {
        self.as_map().iter().any(|(k, _)| k.starts_with('+'))
    }
}
