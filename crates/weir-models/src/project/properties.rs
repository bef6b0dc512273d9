//! Property YAML (`models/*.yml`): patches of models, seeds, snapshots and analyses
//! (description, columns, config, docs, versions), and the nodes YAML defines itself: sources,
//! generic tests, unit tests, exposures and YAML snapshots.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use super::error::ProjectError;
use super::files::FoundFile;
use super::node::{
    Checksum, Column, ExposureDetails, Node, ResourceType, SourceDetails, TestMetadata,
    UnitTestDetails,
};
use super::scan::{scan_calls, scan_reference};
use super::test_names::{synthesize_names, test_hash};
use super::yaml::Yaml;

/// Keys of a test definition that are configs, not macro arguments.
const TEST_CONFIG_ARGS: &[&str] = &[
    "enabled",
    "severity",
    "tags",
    "warn_if",
    "error_if",
    "fail_calc",
    "where",
    "limit",
    "alias",
    "database",
    "schema",
    "group",
    "meta",
    "store_failures",
    "store_failures_as",
    "quoting",
    "sql_header",
];

/// What a patch of a model/seed/snapshot/analysis says.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    pub resource_type: ResourceType,
    pub package: String,
    pub name: String,
    pub file: String,
    pub line: usize,
    pub description: Option<String>,
    pub columns: BTreeMap<String, Column>,
    pub config: Map<String, Json>,
    pub docs: Option<Json>,
    pub versions: Vec<VersionSpec>,
    pub latest_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VersionSpec {
    pub v: String,
    pub defined_in: Option<String>,
    pub config: Map<String, Json>,
    pub line: usize,
}

/// The outcome of reading one property file.
#[derive(Debug, Default)]
pub struct Properties {
    pub patches: Vec<Patch>,
    /// Nodes defined in YAML, each with its YAML `config:` layer.
    pub nodes: Vec<(Node, Map<String, Json>)>,
    /// Generic tests declared on patched nodes, built once the patch target is known.
    pub tests: Vec<PendingTest>,
    /// Unknown keys (dbt warns about them too), with a did-you-mean.
    pub warnings: Vec<String>,
}

const TOP_KEYS: &[&str] = &[
    "version",
    "models",
    "seeds",
    "snapshots",
    "analyses",
    "sources",
    "exposures",
    "unit_tests",
    "macros",
    "metrics",
    "semantic_models",
    "saved_queries",
    "groups",
    "data_tests",
];
const PATCH_KEYS: &[&str] = &[
    "name",
    "description",
    "config",
    "columns",
    "data_tests",
    "tests",
    "docs",
    "meta",
    "tags",
    "versions",
    "latest_version",
    "access",
    "constraints",
    "deprecation_date",
    "group",
    "time_spine",
    "relation",
    "quote_columns",
    "arguments",
];
const COLUMN_KEYS: &[&str] = &[
    "name",
    "description",
    "data_type",
    "data_tests",
    "tests",
    "constraints",
    "meta",
    "tags",
    "quote",
    "policy_tags",
    "granularity",
    "config",
    "docs",
];
const SOURCE_KEYS: &[&str] = &[
    "name",
    "description",
    "database",
    "schema",
    "loader",
    "loaded_at_field",
    "loaded_at_query",
    "freshness",
    "quoting",
    "tables",
    "meta",
    "tags",
    "config",
    "overrides",
    "event_time",
];
const TABLE_KEYS: &[&str] = &[
    "name",
    "identifier",
    "description",
    "columns",
    "tests",
    "data_tests",
    "loaded_at_field",
    "loaded_at_query",
    "freshness",
    "quoting",
    "meta",
    "tags",
    "config",
    "external",
    "docs",
    "event_time",
];
const EXPOSURE_KEYS: &[&str] = &[
    "name",
    "label",
    "type",
    "owner",
    "depends_on",
    "description",
    "maturity",
    "url",
    "meta",
    "tags",
    "config",
];
const UNIT_TEST_KEYS: &[&str] = &[
    "name",
    "model",
    "given",
    "expect",
    "overrides",
    "config",
    "description",
    "versions",
];

/// A generic test declared on something; `attached` is resolved after patches are applied.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingTest {
    pub node: Node,
    pub config: Map<String, Json>,
    /// (resource type, package, name, version) of the node the test hangs on; sources use
    /// `Source` with `name` = `source.table`.
    pub target: (ResourceType, String, String, Option<String>),
}

fn config_map(value: &Yaml) -> Map<String, Json> {
    match value.to_json() {
        Json::Object(map) => map,
        _ => Map::new(),
    }
}

fn text(value: &Yaml) -> Option<String> {
    value.scalar_text()
}

fn columns(list: &Yaml) -> BTreeMap<String, Column> {
    let mut out = BTreeMap::new();
    for column in list.as_seq() {
        let Some(name) = text(column.at("name")) else {
            continue;
        };
        let data_type = text(column.at("data_type"));
        out.insert(
            name.clone(),
            Column {
                name,
                description: text(column.at("description")).unwrap_or_default(),
                data_type,
                meta: match column.at("meta").to_json() {
                    Json::Null => Json::Object(Map::new()),
                    other => other,
                },
                tags: column.at("tags").string_list(),
                constraints: column
                    .at("constraints")
                    .as_seq()
                    .iter()
                    .map(Yaml::to_json)
                    .collect(),
                quote: column.at("quote").as_bool(),
            },
        );
    }
    out
}

fn tests_of(value: &Yaml) -> Vec<&Yaml> {
    let mut all: Vec<&Yaml> = value.at("data_tests").as_seq().iter().collect();
    all.extend(value.at("tests").as_seq().iter());
    all
}

/// Reader of one property file of `package`.
pub struct PropertyReader<'a> {
    pub package: &'a str,
    pub file: &'a FoundFile,
    /// The file as messages name it (relative to the project directory).
    pub shown_file: std::path::PathBuf,
    pub errors: &'a mut Vec<ProjectError>,
    /// Target database and schema, for source placeholders.
    pub target_database: Option<String>,
}

impl PropertyReader<'_> {
    fn path(&self) -> String {
        self.file.original_file_path()
    }

    fn error(&mut self, line: usize, message: String, hint: Option<&str>) {
        let mut error = ProjectError::invalid(message).at(&self.shown_file, Some(line));
        if let Some(hint) = hint {
            error = error.hint(hint);
        }
        self.errors.push(error);
    }

    /// Notes keys of `node` outside `known`, suggesting the closest known one.
    fn check_keys(&self, node: &Yaml, what: &str, known: &[&str], out: &mut Properties) {
        for (key, value) in node.as_map() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let suggestion = match super::profile::strsim_best(key, known) {
                Some(best) => format!(" (did you mean '{best}'?)"),
                None => String::new(),
            };
            out.warnings.push(format!(
                "{}:{}: unknown key '{key}' in {what}{suggestion}",
                self.shown_file.display(),
                value.line
            ));
        }
    }

    pub fn read(&mut self, doc: &Yaml) -> Properties {
        let mut out = Properties::default();
        if doc.is_null() {
            return out;
        }
        if !doc.is_map() {
            self.error(
                doc.line,
                format!("a property file must be a mapping, got {}", doc.type_name()),
                None,
            );
            return out;
        }
        self.check_keys(doc, "a property file", TOP_KEYS, &mut out);
        for (key, resource_type) in [
            ("models", ResourceType::Model),
            ("seeds", ResourceType::Seed),
            ("snapshots", ResourceType::Snapshot),
            ("analyses", ResourceType::Analysis),
        ] {
            for entry in doc.at(key).as_seq() {
                self.read_patch(entry, resource_type, key, &mut out);
            }
        }
        for source in doc.at("sources").as_seq() {
            self.read_source(source, &mut out);
        }
        for exposure in doc.at("exposures").as_seq() {
            self.read_exposure(exposure, &mut out);
        }
        for unit_test in doc.at("unit_tests").as_seq() {
            self.read_unit_test(unit_test, &mut out);
        }
        out
    }

    fn read_patch(
        &mut self,
        entry: &Yaml,
        resource_type: ResourceType,
        key: &str,
        out: &mut Properties,
    ) {
        let Some(name) = text(entry.at("name")) else {
            self.error(
                entry.line,
                format!("an entry of '{key}' has no 'name'"),
                Some("add `name:` with the file name of the node, without extension"),
            );
            return;
        };
        let what = format!("{} '{name}'", resource_type.as_str());
        self.check_keys(entry, &what, PATCH_KEYS, out);
        for column in entry.at("columns").as_seq() {
            let column_name = text(column.at("name")).unwrap_or_default();
            self.check_keys(
                column,
                &format!("column '{column_name}' of {what}"),
                COLUMN_KEYS,
                out,
            );
        }
        let mut config = config_map(entry.at("config"));
        // Top-level meta/tags/docs of a property entry are config too, as in dbt.
        for (top, into) in [("meta", "meta"), ("tags", "tags")] {
            if let Some(v) = entry.get(top)
                && !config.contains_key(into)
            {
                config.insert(into.to_string(), v.to_json());
            }
        }
        if let Some(docs) = entry.get("docs") {
            config.entry("docs".to_string()).or_insert(docs.to_json());
        }
        if resource_type == ResourceType::Snapshot && entry.get("relation").is_some() {
            self.read_yaml_snapshot(entry, &name, config, out);
            return;
        }
        let mut versions = Vec::new();
        for version in entry.at("versions").as_seq() {
            let Some(v) = text(version.at("v")) else {
                self.error(
                    version.line,
                    format!("a version of '{name}' has no 'v'"),
                    None,
                );
                continue;
            };
            versions.push(VersionSpec {
                v,
                defined_in: text(version.at("defined_in")),
                config: config_map(version.at("config")),
                line: version.line,
            });
        }
        let patch = Patch {
            resource_type,
            package: self.package.to_string(),
            name: name.clone(),
            file: self.path(),
            line: entry.line,
            description: text(entry.at("description")),
            columns: columns(entry.at("columns")),
            config,
            docs: entry.get("docs").map(Yaml::to_json),
            latest_version: text(entry.at("latest_version")),
            versions: versions.clone(),
        };
        let version_names: Vec<Option<String>> = if versions.is_empty() {
            vec![None]
        } else {
            versions.iter().map(|v| Some(v.v.clone())).collect()
        };
        for version in version_names {
            let target = (
                resource_type,
                self.package.to_string(),
                name.clone(),
                version.clone(),
            );
            for test in tests_of(entry) {
                self.generic_test(test, &target, None, key, out);
            }
            for column in entry.at("columns").as_seq() {
                let Some(column_name) = text(column.at("name")) else {
                    continue;
                };
                let quoted = if column.at("quote").as_bool() == Some(true) {
                    format!("\"{column_name}\"")
                } else {
                    column_name
                };
                for test in tests_of(column) {
                    self.generic_test(test, &target, Some(&quoted), key, out);
                }
            }
        }
        out.patches.push(patch);
    }

    fn read_yaml_snapshot(
        &mut self,
        entry: &Yaml,
        name: &str,
        config: Map<String, Json>,
        out: &mut Properties,
    ) {
        let relation = text(entry.at("relation")).unwrap_or_default();
        let raw = format!("select * from {{{{ {relation} }}}}");
        let calls = scan_calls(&raw);
        let mut node = Node::new(ResourceType::Snapshot, self.package, name);
        node.path = self.file.relative.clone();
        node.original_file_path = self.path();
        node.line = Some(entry.line);
        node.fqn = self.fqn(name);
        node.raw_code = raw;
        node.refs = calls.refs;
        node.sources = calls.sources;
        node.description = text(entry.at("description")).unwrap_or_default();
        node.columns = columns(entry.at("columns"));
        node.patch_path = Some(format!("{}://{}", self.package, self.path()));
        out.nodes.push((node, config));
        let target = (
            ResourceType::Snapshot,
            self.package.to_string(),
            name.to_string(),
            None,
        );
        for test in tests_of(entry) {
            self.generic_test(test, &target, None, "snapshots", out);
        }
        for column in entry.at("columns").as_seq() {
            let Some(column_name) = text(column.at("name")) else {
                continue;
            };
            for test in tests_of(column) {
                self.generic_test(test, &target, Some(&column_name), "snapshots", out);
            }
        }
    }

    fn fqn(&self, name: &str) -> Vec<String> {
        let mut fqn = vec![self.package.to_string()];
        fqn.extend(self.file.folders());
        fqn.push(name.to_string());
        fqn
    }

    fn read_source(&mut self, source: &Yaml, out: &mut Properties) {
        let Some(source_name) = text(source.at("name")) else {
            self.error(source.line, "a source has no 'name'".to_string(), None);
            return;
        };
        self.check_keys(source, &format!("source '{source_name}'"), SOURCE_KEYS, out);
        let source_config = config_map(source.at("config"));
        for table in source.at("tables").as_seq() {
            let Some(table_name) = text(table.at("name")) else {
                self.error(
                    table.line,
                    format!("a table of source '{source_name}' has no 'name'"),
                    None,
                );
                continue;
            };
            let what = format!("table '{table_name}' of source '{source_name}'");
            self.check_keys(table, &what, TABLE_KEYS, out);
            for column in table.at("columns").as_seq() {
                let column_name = text(column.at("name")).unwrap_or_default();
                self.check_keys(
                    column,
                    &format!("column '{column_name}' of {what}"),
                    COLUMN_KEYS,
                    out,
                );
            }
            let mut node = Node::new(
                ResourceType::Source,
                self.package,
                &format!("{source_name}.{table_name}"),
            );
            node.name = table_name.clone();
            node.path = self.path();
            node.original_file_path = self.path();
            node.line = Some(table.line);
            let mut fqn = vec![self.package.to_string()];
            fqn.extend(self.file.folders());
            fqn.push(source_name.clone());
            fqn.push(table_name.clone());
            node.fqn = fqn;
            node.description = text(table.at("description")).unwrap_or_default();
            node.columns = columns(table.at("columns"));
            node.database = text(source.at("database")).or(self.target_database.clone());
            node.schema = Some(text(source.at("schema")).unwrap_or_else(|| source_name.clone()));
            let identifier = text(table.at("identifier")).unwrap_or_else(|| table_name.clone());
            node.alias = Some(identifier.clone());
            let freshness = match table.get("freshness") {
                Some(f) => f.to_json(),
                None => source.at("freshness").to_json(),
            };
            let mut quoting = match source.at("quoting").to_json() {
                Json::Object(m) => m,
                _ => Map::new(),
            };
            if let Json::Object(m) = table.at("quoting").to_json() {
                quoting.extend(m);
            }
            node.source = Some(SourceDetails {
                source_name: source_name.clone(),
                source_description: text(source.at("description")).unwrap_or_default(),
                identifier,
                loader: text(source.at("loader")).unwrap_or_default(),
                loaded_at_field: text(table.at("loaded_at_field"))
                    .or_else(|| text(source.at("loaded_at_field"))),
                freshness,
                quoting: Json::Object(quoting),
                source_meta: source.at("meta").to_json(),
            });
            let mut config = source_config.clone();
            for (k, v) in config_map(table.at("config")) {
                config.insert(k, v);
            }
            if let Some(meta) = table.get("meta") {
                config.entry("meta".to_string()).or_insert(meta.to_json());
            }
            if let Some(tags) = table.get("tags") {
                let mut all = source.at("tags").string_list();
                all.extend(tags.string_list());
                config.insert("tags".to_string(), Json::from(all));
            } else if let Some(tags) = source.get("tags") {
                config.insert("tags".to_string(), tags.to_json());
            }
            out.nodes.push((node, config));
            let target = (
                ResourceType::Source,
                self.package.to_string(),
                format!("{source_name}.{table_name}"),
                None,
            );
            for test in tests_of(table) {
                self.generic_test(test, &target, None, "sources", out);
            }
            for column in table.at("columns").as_seq() {
                let Some(column_name) = text(column.at("name")) else {
                    continue;
                };
                for test in tests_of(column) {
                    self.generic_test(test, &target, Some(&column_name), "sources", out);
                }
            }
        }
    }

    fn read_exposure(&mut self, exposure: &Yaml, out: &mut Properties) {
        let Some(name) = text(exposure.at("name")) else {
            self.error(exposure.line, "an exposure has no 'name'".to_string(), None);
            return;
        };
        self.check_keys(exposure, &format!("exposure '{name}'"), EXPOSURE_KEYS, out);
        let mut node = Node::new(ResourceType::Exposure, self.package, &name);
        node.path = self.file.relative.clone();
        node.original_file_path = self.path();
        node.line = Some(exposure.line);
        node.fqn = self.fqn(&name);
        node.description = text(exposure.at("description")).unwrap_or_default();
        for dep in exposure.at("depends_on").as_seq() {
            if let Some(reference) = dep.as_str() {
                let calls = scan_reference(reference);
                node.refs.extend(calls.refs);
                node.sources.extend(calls.sources);
            }
        }
        node.exposure = Some(ExposureDetails {
            exposure_type: text(exposure.at("type")).unwrap_or_default(),
            owner: exposure.at("owner").to_json(),
            label: text(exposure.at("label")),
            maturity: text(exposure.at("maturity")),
            url: text(exposure.at("url")),
        });
        let mut config = config_map(exposure.at("config"));
        if let Some(tags) = exposure.get("tags") {
            config.entry("tags".to_string()).or_insert(tags.to_json());
        }
        if let Some(meta) = exposure.get("meta") {
            config.entry("meta".to_string()).or_insert(meta.to_json());
        }
        out.nodes.push((node, config));
    }

    fn read_unit_test(&mut self, unit_test: &Yaml, out: &mut Properties) {
        let Some(name) = text(unit_test.at("name")) else {
            self.error(
                unit_test.line,
                "a unit test has no 'name'".to_string(),
                None,
            );
            return;
        };
        let Some(model) = text(unit_test.at("model")) else {
            self.error(
                unit_test.line,
                format!("unit test '{name}' has no 'model'"),
                Some("add `model:` naming the model it tests"),
            );
            return;
        };
        self.check_keys(
            unit_test,
            &format!("unit test '{name}'"),
            UNIT_TEST_KEYS,
            out,
        );
        let mut node = Node::new(
            ResourceType::UnitTest,
            self.package,
            &format!("{model}.{name}"),
        );
        node.name = name.clone();
        node.path = self.file.relative.clone();
        node.original_file_path = self.path();
        node.line = Some(unit_test.line);
        let mut fqn = vec![self.package.to_string()];
        fqn.extend(self.file.folders());
        fqn.push(model.clone());
        fqn.push(name.clone());
        node.fqn = fqn;
        node.description = text(unit_test.at("description")).unwrap_or_default();
        node.refs.push(super::node::RefCall {
            package: None,
            name: model.clone(),
            version: None,
        });
        node.unit_test = Some(UnitTestDetails {
            model,
            given: unit_test.at("given").to_json(),
            expect: unit_test.at("expect").to_json(),
            overrides: unit_test.at("overrides").to_json(),
        });
        out.nodes.push((node, config_map(unit_test.at("config"))));
    }

    /// Builds one generic test node declared on `target` (and `column`).
    fn generic_test(
        &mut self,
        definition: &Yaml,
        target: &(ResourceType, String, String, Option<String>),
        column: Option<&str>,
        file_key: &str,
        out: &mut Properties,
    ) {
        let (full_test_name, body): (String, Option<&Yaml>) =
            if let Some(name) = definition.as_str() {
                (name.to_string(), None)
            } else if let Some(name) = definition.get("test_name").and_then(Yaml::as_str) {
                (name.to_string(), Some(definition))
            } else if let [(name, body)] = definition.as_map() {
                (name.clone(), Some(body))
            } else {
                self.error(
                    definition.line,
                    format!(
                        "a test definition must be a name or a mapping with one key, got {}",
                        definition.type_name()
                    ),
                    Some("write `- unique` or `- accepted_values: {values: [...]}`"),
                );
                return;
            };
        let (namespace, macro_name) = match full_test_name.split_once('.') {
            Some((ns, name)) => (Some(ns.to_string()), name.to_string()),
            None => (None, full_test_name.clone()),
        };
        let mut kwargs: BTreeMap<String, Json> = BTreeMap::new();
        let mut config = Map::new();
        let mut custom_name = None;
        let mut description = String::new();
        if let Some(body) = body {
            for (key, value) in body.as_map() {
                match key.as_str() {
                    "test_name" => {}
                    "name" => custom_name = text(value),
                    "description" => description = text(value).unwrap_or_default(),
                    "config" => config.extend(config_map(value)),
                    "arguments" => {
                        for (arg, arg_value) in value.as_map() {
                            if TEST_CONFIG_ARGS.contains(&arg.as_str()) {
                                config.insert(arg.clone(), arg_value.to_json());
                            } else {
                                kwargs.insert(arg.clone(), arg_value.to_json());
                            }
                        }
                    }
                    k if TEST_CONFIG_ARGS.contains(&k) => {
                        config.insert(k.to_string(), value.to_json());
                    }
                    _ => {
                        kwargs.insert(key.clone(), value.to_json());
                    }
                }
            }
        }
        if kwargs.contains_key("model") {
            self.error(
                definition.line,
                format!("test '{full_test_name}' has an argument named 'model', which is reserved"),
                Some("rename the argument"),
            );
            return;
        }
        let (resource_type, package, name, version) = target;
        let (model_string, target_name, prefix) = if *resource_type == ResourceType::Source {
            let (source_name, table) = name.split_once('.').unwrap_or((name.as_str(), ""));
            (
                format!("source('{source_name}', '{table}')"),
                format!("{source_name}_{table}"),
                format!("source_{macro_name}"),
            )
        } else {
            match version {
                Some(v) => (
                    format!("ref('{name}', version='{v}')"),
                    format!("{name}_v{v}"),
                    macro_name.clone(),
                ),
                None => (format!("ref('{name}')"), name.clone(), macro_name.clone()),
            }
        };
        let test_type = match &namespace {
            Some(ns) => format!("{ns}_{prefix}"),
            None => prefix,
        };
        if let Some(column) = column {
            kwargs.insert("column_name".to_string(), Json::String(column.to_string()));
        }
        let (short_name, full_name) = match &custom_name {
            Some(custom) => (custom.clone(), custom.clone()),
            None => {
                // The name leaves `model` out, so it is synthesized before `model` is added.
                synthesize_names(&test_type, &target_name, &kwargs)
            }
        };
        kwargs.insert(
            "model".to_string(),
            Json::String(format!("{{{{ get_where_subquery({model_string}) }}}}")),
        );
        let hash = test_hash(&full_name, &macro_name, namespace.as_deref(), &kwargs);
        let mut node = Node::new(ResourceType::Test, self.package, &full_name);
        node.unique_id = format!("test.{}.{}.{}", self.package, full_name, hash);
        let folders = self.file.folders();
        node.path = if folders.is_empty() {
            format!("{short_name}.sql")
        } else {
            format!("{}/{short_name}.sql", folders.join("/"))
        };
        node.original_file_path = self.path();
        node.line = Some(definition.line);
        node.fqn = self.fqn(&full_name);
        node.alias = Some(short_name);
        node.description = description;
        let call = match &namespace {
            Some(ns) => format!("{ns}.test_{macro_name}"),
            None => format!("test_{macro_name}"),
        };
        node.raw_code = format!("{{{{ {call}(**_dbt_generic_test_kwargs) }}}}");
        node.checksum = Checksum::none();
        node.column_name = column.map(str::to_string);
        node.file_key_name = Some(format!(
            "{file_key}.{}",
            name.split('.').next().unwrap_or(name)
        ));
        // A test depends on what its other arguments reference (relationships' `to:`).
        for (arg, value) in &kwargs {
            if arg == "model" {
                continue;
            }
            for text in json_strings(value) {
                let calls = scan_reference(&text);
                for call in calls.refs {
                    if !node.refs.contains(&call) {
                        node.refs.push(call);
                    }
                }
                for call in calls.sources {
                    if !node.sources.contains(&call) {
                        node.sources.push(call);
                    }
                }
            }
        }
        node.test_metadata = Some(TestMetadata {
            name: macro_name,
            namespace,
            kwargs,
        });
        let _ = package;
        out.tests.push(PendingTest {
            node,
            config,
            target: target.clone(),
        });
    }
}

fn json_strings(value: &Json) -> Vec<String> {
    match value {
        Json::String(s) => vec![s.clone()],
        Json::Array(items) => items.iter().flat_map(json_strings).collect(),
        Json::Object(map) => map.values().flat_map(json_strings).collect(),
        _ => Vec::new(),
    }
}
