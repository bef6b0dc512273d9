//! The nodes of a project as dbt's manifest names them: one `Node` per model, seed, snapshot,
//! test, unit test, source, analysis and exposure, plus macros and docs blocks on the side.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value as Json};

/// A dbt unique id such as `model.jaffle_shop.customers`.
pub type UniqueId = String;

/// A resolved config: dbt's keys (`materialized`, `tags`, `pre-hook`, ...) to values.
pub type Config = Map<String, Json>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    Model,
    Seed,
    Snapshot,
    Test,
    UnitTest,
    Source,
    Analysis,
    Exposure,
}

impl ResourceType {
    /// The prefix of unique ids and the `resource_type:` selector value.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Model => "model",
            ResourceType::Seed => "seed",
            ResourceType::Snapshot => "snapshot",
            ResourceType::Test => "test",
            ResourceType::UnitTest => "unit_test",
            ResourceType::Source => "source",
            ResourceType::Analysis => "analysis",
            ResourceType::Exposure => "exposure",
        }
    }

    pub fn parse(text: &str) -> Option<ResourceType> {
        Some(match text {
            "model" => ResourceType::Model,
            "seed" => ResourceType::Seed,
            "snapshot" => ResourceType::Snapshot,
            "test" => ResourceType::Test,
            "unit_test" => ResourceType::UnitTest,
            "source" => ResourceType::Source,
            "analysis" => ResourceType::Analysis,
            "exposure" => ResourceType::Exposure,
            _ => return None,
        })
    }

    /// Models, seeds and snapshots: what `ref()` can point at.
    pub fn is_refable(self) -> bool {
        matches!(
            self,
            ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot
        )
    }

    /// The `dbt_project.yml` section holding this type's folder configs.
    pub fn project_section(self) -> &'static [&'static str] {
        match self {
            ResourceType::Model => &["models"],
            ResourceType::Seed => &["seeds"],
            ResourceType::Snapshot => &["snapshots"],
            ResourceType::Test => &["tests", "data_tests"],
            ResourceType::UnitTest => &["unit_tests"],
            ResourceType::Source => &["sources"],
            ResourceType::Analysis => &["analyses"],
            ResourceType::Exposure => &["exposures"],
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// dbt's file checksum: `sha256` of the file, `path` for seeds too large to hash, `none` for
/// nodes defined inside YAML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checksum {
    pub name: String,
    pub checksum: String,
}

impl Checksum {
    pub fn sha256(bytes: &[u8]) -> Checksum {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(bytes);
        Checksum {
            name: "sha256".to_string(),
            checksum: hex(&digest),
        }
    }

    pub fn none() -> Checksum {
        Checksum {
            name: "none".to_string(),
            checksum: String::new(),
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A `ref()` call as written: `ref('x')`, `ref('pkg', 'x')`, `ref('x', v=2)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RefCall {
    pub package: Option<String>,
    pub name: String,
    pub version: Option<String>,
}

/// A `source('s', 't')` call.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SourceCall {
    pub source: String,
    pub table: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Column {
    pub name: String,
    pub description: String,
    pub data_type: Option<String>,
    pub meta: Json,
    pub tags: Vec<String>,
    pub constraints: Vec<Json>,
    pub quote: Option<bool>,
}

/// `test_metadata` of a generic test: the macro, its namespace and its keyword arguments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestMetadata {
    pub name: String,
    pub namespace: Option<String>,
    pub kwargs: BTreeMap<String, Json>,
}

/// Fields only sources have.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct SourceDetails {
    pub source_name: String,
    pub source_description: String,
    pub identifier: String,
    pub loader: String,
    pub loaded_at_field: Option<String>,
    pub freshness: Json,
    pub quoting: Json,
    pub source_meta: Json,
}

/// Fields only unit tests have: the tested model and its given/expect rows as written.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct UnitTestDetails {
    pub model: String,
    pub given: Json,
    pub expect: Json,
    pub overrides: Json,
}

/// Fields only exposures have.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ExposureDetails {
    pub exposure_type: String,
    pub owner: Json,
    pub label: Option<String>,
    pub maturity: Option<String>,
    pub url: Option<String>,
}

/// One node of the manifest with the fields dbt's parser fills before Jinja runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub unique_id: UniqueId,
    pub resource_type: ResourceType,
    pub package_name: String,
    pub name: String,
    /// Relative to the resource folder (`staging/stg_orders.sql`), as dbt's `path`.
    pub path: String,
    /// Relative to the package root (`models/staging/stg_orders.sql`).
    pub original_file_path: String,
    /// The line of the definition inside `original_file_path`, for YAML-defined nodes.
    pub line: Option<usize>,
    pub fqn: Vec<String>,
    pub checksum: Checksum,
    pub raw_code: String,
    pub language: String,
    /// Placeholders from the target until the compiler renders `generate_*_name`.
    pub database: Option<String>,
    pub schema: Option<String>,
    pub alias: Option<String>,
    pub description: String,
    pub columns: BTreeMap<String, Column>,
    pub meta: Json,
    pub docs: Json,
    pub config: Config,
    /// The config before the in-file `{{ config() }}` layer, so that the compiler's rendered
    /// layer replaces the statically read one instead of stacking on it.
    #[serde(skip)]
    pub base_config: Config,
    /// The literal part of the in-file `{{ config(...) }}`, read statically and applied at
    /// parse time (`enabled=false`, `materialized=`, `tags=` work before compilation).
    #[serde(skip)]
    pub static_config: Config,
    /// False when some `config()` argument was not a literal: the compiler must render it.
    #[serde(skip)]
    pub static_config_complete: bool,
    /// The property-YAML file that described this node (`jaffle_shop://models/schema.yml`).
    pub patch_path: Option<String>,
    pub refs: Vec<RefCall>,
    pub sources: Vec<SourceCall>,
    /// Resolved parents (unique ids), from the static scan until the compiler replaces it.
    pub depends_on: Vec<UniqueId>,
    /// Macro names the code calls, when known (generic tests name theirs).
    pub depends_on_macros: Vec<UniqueId>,
    pub version: Option<String>,
    pub latest_version: Option<String>,
    pub test_metadata: Option<TestMetadata>,
    pub column_name: Option<String>,
    /// The node a generic test is attached to.
    pub attached_node: Option<UniqueId>,
    /// `models`, `sources`, `seeds` or `snapshots`: the YAML key a generic test came from.
    pub file_key_name: Option<String>,
    pub source: Option<SourceDetails>,
    pub unit_test: Option<UnitTestDetails>,
    pub exposure: Option<ExposureDetails>,
}

impl Node {
    pub fn new(resource_type: ResourceType, package_name: &str, name: &str) -> Node {
        Node {
            unique_id: format!("{}.{}.{}", resource_type.as_str(), package_name, name),
            resource_type,
            package_name: package_name.to_string(),
            name: name.to_string(),
            path: String::new(),
            original_file_path: String::new(),
            line: None,
            fqn: Vec::new(),
            checksum: Checksum::none(),
            raw_code: String::new(),
            language: "sql".to_string(),
            database: None,
            schema: None,
            alias: None,
            description: String::new(),
            columns: BTreeMap::new(),
            meta: Json::Object(Map::new()),
            docs: Json::Object(Map::new()),
            config: Config::new(),
            base_config: Config::new(),
            static_config: Config::new(),
            static_config_complete: true,
            patch_path: None,
            refs: Vec::new(),
            sources: Vec::new(),
            depends_on: Vec::new(),
            depends_on_macros: Vec::new(),
            version: None,
            latest_version: None,
            test_metadata: None,
            column_name: None,
            attached_node: None,
            file_key_name: None,
            source: None,
            unit_test: None,
            exposure: None,
        }
    }

    pub fn tags(&self) -> Vec<String> {
        match self.config.get("tags") {
            Some(Json::Array(items)) => items
                .iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect(),
            Some(Json::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    }

    pub fn enabled(&self) -> bool {
        !matches!(self.config.get("enabled"), Some(Json::Bool(false)))
    }

    pub fn materialized(&self) -> Option<&str> {
        self.config.get("materialized").and_then(Json::as_str)
    }

    /// The name `dbt ls` prints: the fqn joined by dots, prefixed by `source:`, `exposure:`
    /// or `unit_test:` for those types.
    pub fn ls_name(&self) -> String {
        let joined = self.fqn.join(".");
        match self.resource_type {
            ResourceType::Source => match &self.source {
                Some(source) => format!(
                    "source:{}.{}.{}",
                    self.package_name, source.source_name, self.name
                ),
                None => format!("source:{joined}"),
            },
            ResourceType::Exposure => format!("exposure:{joined}"),
            ResourceType::UnitTest => format!("unit_test:{joined}"),
            _ => joined,
        }
    }

    /// Where the node is defined, for messages: `models/customers.sql` or `models/schema.yml:12`.
    pub fn location(&self) -> String {
        match self.line {
            Some(line) => format!("{}:{}", self.original_file_path, line),
            None => self.original_file_path.clone(),
        }
    }
}

/// A macro found in a package's macro paths (or a `{% test %}` block, named `test_<name>`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Macro {
    pub unique_id: UniqueId,
    pub name: String,
    pub package_name: String,
    pub path: String,
    pub original_file_path: String,
    pub line: usize,
    /// The whole `{% macro %}...{% endmacro %}` text.
    pub macro_sql: String,
    pub arguments: Vec<String>,
}

/// A `{% docs name %}` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocBlock {
    pub unique_id: UniqueId,
    pub name: String,
    pub package_name: String,
    pub path: String,
    pub original_file_path: String,
    pub block_contents: String,
}
