//! `Project::load`: reads the root project and its installed packages into nodes, resolves
//! their configs, resolves `ref()`/`source()` to unique ids, and builds the graph, collecting
//! every problem on the way.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};

use super::config::{defaults, folder_layers, merge_config};
use super::error::{ProjectError, ProjectErrorKind};
use super::files::{FoundFile, walk};
use super::graph::Graph;
use super::node::{Checksum, DocBlock, Macro, Node, RefCall, ResourceType, UniqueId};
use super::packages::declared_packages;
use super::profile::{Profile, load_profile, profiles_dir, strsim_best};
use super::properties::{Patch, PendingTest, PropertyReader};
use super::render::ParseRenderer;
use super::scan::{BlockKind, scan_blocks, scan_calls, scan_config};
use super::settings::{ProjectSettings, vars_for};
use super::yaml::Yaml;
use super::{LoadOptions, Package, Project};

/// Seeds at least this large are identified by path, not hashed (dbt's MAXIMUM_SEED_SIZE).
const MAXIMUM_SEED_SIZE: u64 = 1024 * 1024;

/// dbt's built-in generic tests, defined in its internal `dbt` package.
const BUILTIN_TESTS: &[&str] = &["unique", "not_null", "accepted_values", "relationships"];

struct Loader {
    project_dir: PathBuf,
    /// Each package's folder relative to the project directory (empty for the root).
    package_roots: BTreeMap<String, PathBuf>,
    root_name: String,
    errors: Vec<ProjectError>,
    warnings: Vec<String>,
    nodes: Vec<Node>,
    /// YAML `config:` layers of nodes by unique id (property config, or a test's own config).
    yaml_config: HashMap<UniqueId, Map<String, Json>>,
    patches: Vec<Patch>,
    tests: Vec<PendingTest>,
    macros: BTreeMap<UniqueId, Macro>,
    docs: BTreeMap<UniqueId, DocBlock>,
    target_database: Option<String>,
}

/// `target` as dbt_project.yml sees it: the profile output plus `name`, `target_name`,
/// `profile_name`, `type`, `schema`, `database`, `threads`.
fn target_context(profile: &Profile) -> Map<String, Json> {
    let mut target = profile.output.clone();
    target.insert("name".into(), Json::String(profile.target_name.clone()));
    target.insert(
        "target_name".into(),
        Json::String(profile.target_name.clone()),
    );
    target.insert(
        "profile_name".into(),
        Json::String(profile.profile_name.clone()),
    );
    target.insert("type".into(), Json::String(profile.adapter_type.clone()));
    target.insert("schema".into(), Json::String(profile.schema()));
    target.insert(
        "database".into(),
        profile.database().map(Json::String).unwrap_or(Json::Null),
    );
    target.insert("threads".into(), Json::from(profile.threads));
    target
}

/// A node's file as messages show it.
fn node_file(roots: &BTreeMap<String, PathBuf>, node: &Node) -> PathBuf {
    match roots.get(&node.package_name) {
        Some(root) => root.join(&node.original_file_path),
        None => PathBuf::from(&node.original_file_path),
    }
}

/// A file's path as messages show it: relative to the project directory (packages included).
fn shown(project_dir: &Path, package_root: &Path, file: &FoundFile) -> PathBuf {
    let full = package_root.join(file.original_file_path());
    full.strip_prefix(project_dir)
        .map(Path::to_path_buf)
        .unwrap_or(full)
}

fn python_strip(text: &str) -> &str {
    text.trim()
}

fn read_text(file: &FoundFile, errors: &mut Vec<ProjectError>) -> Option<String> {
    match std::fs::read_to_string(&file.absolute) {
        Ok(text) => Some(text),
        Err(e) => {
            errors.push(ProjectError::new(ProjectErrorKind::Io {
                path: file.absolute.clone(),
                reason: e.to_string(),
            }));
            None
        }
    }
}

impl Loader {
    fn read_package(&mut self, package: &Package) {
        let settings = &package.settings;
        let name = settings.name.as_str();
        let root = &package.root;

        // Macros, generic tests (`{% test %}` in macro paths or `<test-path>/generic/`) and
        // materializations.
        let mut macro_files = walk(root, &settings.macro_paths);
        macro_files.extend(
            walk(root, &settings.test_paths)
                .into_iter()
                .filter(|f| f.relative.starts_with("generic/")),
        );
        for file in macro_files.iter().filter(|f| f.extension() == "sql") {
            let Some(text) = read_text(file, &mut self.errors) else {
                continue;
            };
            match scan_blocks(&text) {
                Ok(blocks) => {
                    for block in blocks {
                        if !matches!(
                            block.kind,
                            BlockKind::Macro | BlockKind::Test | BlockKind::Materialization
                        ) {
                            continue;
                        }
                        let unique_id = format!("macro.{name}.{}", block.name);
                        self.macros.insert(
                            unique_id.clone(),
                            Macro {
                                unique_id,
                                name: block.name,
                                package_name: name.to_string(),
                                path: file.original_file_path(),
                                original_file_path: file.original_file_path(),
                                line: block.line,
                                macro_sql: block.full,
                                arguments: block.arguments,
                            },
                        );
                    }
                }
                Err((line, message)) => self.errors.push(
                    ProjectError::invalid(message)
                        .at(shown(&self.project_dir, root, file), Some(line)),
                ),
            }
        }

        // Docs blocks.
        for file in walk(root, &settings.all_docs_paths())
            .iter()
            .filter(|f| f.extension() == "md")
        {
            let Some(text) = read_text(file, &mut self.errors) else {
                continue;
            };
            match scan_blocks(&text) {
                Ok(blocks) => {
                    for block in blocks.into_iter().filter(|b| b.kind == BlockKind::Docs) {
                        let unique_id = format!("doc.{name}.{}", block.name);
                        self.docs.insert(
                            unique_id.clone(),
                            DocBlock {
                                unique_id,
                                name: block.name,
                                package_name: name.to_string(),
                                path: file.relative.clone(),
                                original_file_path: file.original_file_path(),
                                block_contents: block.body.trim().to_string(),
                            },
                        );
                    }
                }
                Err((line, message)) => self.errors.push(
                    ProjectError::invalid(message)
                        .at(shown(&self.project_dir, root, file), Some(line)),
                ),
            }
        }

        let mut property_files: Vec<FoundFile> = Vec::new();
        let mut seen_property = BTreeSet::new();
        let mut add_property = |file: &FoundFile, list: &mut Vec<FoundFile>| {
            if matches!(file.extension(), "yml" | "yaml")
                && seen_property.insert(file.absolute.clone())
            {
                list.push(file.clone());
            }
        };

        // Models.
        for file in walk(root, &settings.model_paths) {
            add_property(&file, &mut property_files);
            match file.extension() {
                "sql" => self.sql_node(ResourceType::Model, name, &file),
                "py" => self.errors.push(
                    ProjectError::new(ProjectErrorKind::PythonModel)
                        .at(shown(&self.project_dir, root, &file), None)
                        .hint("rewrite it as a .sql model; weir runs SQL models only"),
                ),
                _ => {}
            }
        }
        // Analyses.
        for file in walk(root, &settings.analysis_paths) {
            add_property(&file, &mut property_files);
            if file.extension() == "sql" {
                self.sql_node(ResourceType::Analysis, name, &file);
            }
        }
        // Seeds.
        for file in walk(root, &settings.seed_paths) {
            add_property(&file, &mut property_files);
            if file.extension() == "csv" {
                self.seed(name, &file);
            }
        }
        // Snapshots.
        for file in walk(root, &settings.snapshot_paths) {
            add_property(&file, &mut property_files);
            if file.extension() == "sql" {
                self.snapshots(name, root, &file);
            }
        }
        // Singular tests.
        for file in walk(root, &settings.test_paths) {
            add_property(&file, &mut property_files);
            if file.extension() == "sql" && !file.relative.starts_with("generic/") {
                self.sql_node(ResourceType::Test, name, &file);
            }
        }
        for file in walk(root, &settings.macro_paths) {
            add_property(&file, &mut property_files);
        }

        for file in &property_files {
            let Some(text) = read_text(file, &mut self.errors) else {
                continue;
            };
            let doc = match Yaml::parse(&text, &shown(&self.project_dir, root, file)) {
                Ok(doc) => doc,
                Err(e) => {
                    self.errors.push(e);
                    continue;
                }
            };
            let mut reader = PropertyReader {
                package: name,
                shown_file: shown(&self.project_dir, root, file),
                file,
                errors: &mut self.errors,
                target_database: self.target_database.clone(),
            };
            let properties = reader.read(&doc);
            self.warnings.extend(properties.warnings);
            self.patches.extend(properties.patches);
            for (node, config) in properties.nodes {
                self.yaml_config.insert(node.unique_id.clone(), config);
                self.nodes.push(node);
            }
            self.tests.extend(properties.tests);
        }
    }

    fn sql_node(&mut self, resource_type: ResourceType, package: &str, file: &FoundFile) {
        let Ok(bytes) = std::fs::read(&file.absolute) else {
            read_text(file, &mut self.errors);
            return;
        };
        let text = String::from_utf8_lossy(&bytes);
        let stripped = python_strip(&text);
        let name = file.stem();
        let mut node = Node::new(resource_type, package, &name);
        node.path = file.relative.clone();
        if resource_type == ResourceType::Analysis {
            node.path = format!("analysis/{}", file.relative);
        }
        node.original_file_path = file.original_file_path();
        let mut fqn = vec![package.to_string()];
        if resource_type == ResourceType::Analysis {
            fqn.push("analysis".to_string());
        }
        fqn.extend(file.folders());
        fqn.push(name);
        node.fqn = fqn;
        node.checksum = Checksum::sha256(stripped.as_bytes());
        node.raw_code = stripped.to_string();
        let calls = scan_calls(stripped);
        node.refs = calls.refs;
        node.sources = calls.sources;
        let config = scan_config(stripped);
        node.static_config = config.config;
        node.static_config_complete = config.complete;
        self.nodes.push(node);
    }

    fn seed(&mut self, package: &str, file: &FoundFile) {
        let name = file.stem();
        let mut node = Node::new(ResourceType::Seed, package, &name);
        node.path = file.relative.clone();
        node.original_file_path = file.original_file_path();
        let mut fqn = vec![package.to_string()];
        fqn.extend(file.folders());
        fqn.push(name);
        node.fqn = fqn;
        let size = std::fs::metadata(&file.absolute)
            .map(|m| m.len())
            .unwrap_or(0);
        node.checksum = if size >= MAXIMUM_SEED_SIZE {
            Checksum {
                name: "path".to_string(),
                checksum: node.original_file_path.clone(),
            }
        } else {
            match std::fs::read(&file.absolute) {
                Ok(bytes) => {
                    Checksum::sha256(python_strip(&String::from_utf8_lossy(&bytes)).as_bytes())
                }
                Err(_) => {
                    read_text(file, &mut self.errors);
                    return;
                }
            }
        };
        self.nodes.push(node);
    }

    fn snapshots(&mut self, package: &str, root: &Path, file: &FoundFile) {
        let Some(text) = read_text(file, &mut self.errors) else {
            return;
        };
        let blocks = match scan_blocks(&text) {
            Ok(blocks) => blocks,
            Err((line, message)) => {
                self.errors.push(
                    ProjectError::invalid(message)
                        .at(shown(&self.project_dir, root, file), Some(line)),
                );
                return;
            }
        };
        let checksum = Checksum::sha256(python_strip(&text).as_bytes());
        for block in blocks.into_iter().filter(|b| b.kind == BlockKind::Snapshot) {
            let mut node = Node::new(ResourceType::Snapshot, package, &block.name);
            node.path = file.relative.clone();
            node.original_file_path = file.original_file_path();
            node.line = Some(block.line);
            let mut fqn = vec![package.to_string()];
            fqn.extend(file.folders());
            fqn.push(file.stem());
            fqn.push(block.name.clone());
            node.fqn = fqn;
            node.checksum = checksum.clone();
            node.raw_code = block.body.clone();
            let calls = scan_calls(&block.body);
            node.refs = calls.refs;
            node.sources = calls.sources;
            let config = scan_config(&block.body);
            node.static_config = config.config;
            node.static_config_complete = config.complete;
            self.nodes.push(node);
        }
    }

    /// Applies property patches to the file nodes they describe; versioned models are renamed
    /// to `model.<pkg>.<name>.v<v>`.
    fn apply_patches(&mut self) {
        let patches = std::mem::take(&mut self.patches);
        // Nodes by unique id (the first of duplicates, as a linear search found it): one
        // patch per model made the search quadratic, a fifth of parsing 10,000 models.
        let mut index: HashMap<UniqueId, usize> = HashMap::with_capacity(self.nodes.len());
        for (i, node) in self.nodes.iter().enumerate() {
            index.entry(node.unique_id.clone()).or_insert(i);
        }
        for patch in patches {
            if patch.versions.is_empty() {
                let id = format!(
                    "{}.{}.{}",
                    patch.resource_type.as_str(),
                    patch.package,
                    patch.name
                );
                let Some(node) = index.get(&id).map(|&i| &mut self.nodes[i]) else {
                    self.warnings.push(format!(
                        "{}:{}: did not find a {} named '{}' for this entry",
                        patch.file, patch.line, patch.resource_type, patch.name
                    ));
                    continue;
                };
                apply_patch(node, &patch, &mut self.yaml_config, None);
                continue;
            }
            let latest = patch.latest_version.clone().or_else(|| {
                patch
                    .versions
                    .iter()
                    .map(|v| v.v.clone())
                    .max_by(|a, b| version_order(a, b))
            });
            for version in &patch.versions {
                let file_name = version
                    .defined_in
                    .clone()
                    .unwrap_or_else(|| format!("{}_v{}", patch.name, version.v));
                let id = format!("model.{}.{}", patch.package, file_name);
                let Some(&position) = index.get(&id) else {
                    self.errors.push(
                        ProjectError::invalid(format!(
                            "version {} of model '{}' has no file '{file_name}.sql'",
                            version.v, patch.name
                        ))
                        .at(&patch.file, Some(version.line))
                        .hint("name the file <model>_v<version>.sql or set `defined_in:`"),
                    );
                    continue;
                };
                let node = &mut self.nodes[position];
                node.name = patch.name.clone();
                node.unique_id = format!("model.{}.{}.v{}", patch.package, patch.name, version.v);
                // Renamed: keep the index what a search in list order would find.
                let renamed = node.unique_id.clone();
                let first = index.entry(renamed).or_insert(position);
                *first = (*first).min(position);
                if index.get(&id) == Some(&position) {
                    index.remove(&id);
                    if let Some(next) = self.nodes.iter().position(|n| n.unique_id == id) {
                        index.insert(id.clone(), next);
                    }
                }
                let node = &mut self.nodes[position];
                node.version = Some(version.v.clone());
                node.latest_version = latest.clone();
                if let Some(last) = node.fqn.last_mut() {
                    *last = patch.name.clone();
                }
                node.fqn.push(format!("v{}", version.v));
                node.alias = Some(format!("{}_v{}", patch.name, version.v));
                apply_patch(node, &patch, &mut self.yaml_config, Some(&version.config));
            }
        }
    }

    /// Turns pending generic tests into nodes attached to what they test.
    fn attach_tests(&mut self) {
        let tests = std::mem::take(&mut self.tests);
        let known: BTreeSet<UniqueId> = self.nodes.iter().map(|n| n.unique_id.clone()).collect();
        let test_macros: BTreeSet<(String, String)> = self
            .macros
            .values()
            .filter(|m| m.name.starts_with("test_"))
            .map(|m| (m.package_name.clone(), m.name.clone()))
            .collect();
        for pending in tests {
            let mut node = pending.node;
            let (resource_type, package, name, version) = &pending.target;
            let attached = match (resource_type, version) {
                (ResourceType::Source, _) => format!("source.{package}.{name}"),
                (_, Some(v)) => format!("{}.{package}.{name}.v{v}", resource_type.as_str()),
                (_, None) => format!("{}.{package}.{name}", resource_type.as_str()),
            };
            if !known.contains(&attached) {
                // dbt skips tests of missing nodes (the patch already produced a warning).
                continue;
            }
            node.attached_node = Some(attached.clone());
            node.depends_on.push(attached);
            if let Some(metadata) = &node.test_metadata {
                let macro_name = format!("test_{}", metadata.name);
                let macro_id = match &metadata.namespace {
                    Some(ns) => Some(format!("macro.{ns}.{macro_name}")),
                    None => [self.root_name.as_str(), node.package_name.as_str()]
                        .iter()
                        .find(|p| test_macros.contains(&(p.to_string(), macro_name.clone())))
                        .map(|p| format!("macro.{p}.{macro_name}"))
                        .or_else(|| {
                            test_macros
                                .iter()
                                .find(|(_, m)| *m == macro_name)
                                .map(|(p, m)| format!("macro.{p}.{m}"))
                        })
                        .or_else(|| {
                            BUILTIN_TESTS
                                .contains(&metadata.name.as_str())
                                .then(|| format!("macro.dbt.{macro_name}"))
                        }),
                };
                match macro_id {
                    Some(id) if id.starts_with("macro.dbt.") || self.macros.contains_key(&id) => {
                        node.depends_on_macros.push(id)
                    }
                    _ => {
                        let mut names: Vec<String> =
                            BUILTIN_TESTS.iter().map(|s| s.to_string()).collect();
                        names.extend(test_macros.iter().map(|(p, m)| {
                            let bare = m.trim_start_matches("test_");
                            if *p == self.root_name {
                                bare.to_string()
                            } else {
                                format!("{p}.{bare}")
                            }
                        }));
                        let wanted = match &metadata.namespace {
                            Some(ns) => format!("{ns}.{}", metadata.name),
                            None => metadata.name.clone(),
                        };
                        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                        let mut error = ProjectError::invalid(format!(
                            "unknown generic test '{wanted}' on '{}'",
                            node.attached_node.clone().unwrap_or_default()
                        ))
                        .at(node_file(&self.package_roots, &node), node.line);
                        error = match strsim_best(&wanted, &refs) {
                            Some(best) => error.hint(format!("did you mean '{best}'?")),
                            None => error.hint("define it with {% test name(model, column_name) %} in macros/, or install the package that has it"),
                        };
                        self.errors.push(error);
                        continue;
                    }
                }
            }
            self.yaml_config
                .insert(node.unique_id.clone(), pending.config);
            self.nodes.push(node);
        }
    }

    fn resolve_configs(
        &mut self,
        packages: &BTreeMap<String, Package>,
        profile: Option<&Profile>,
        renderers: &BTreeMap<String, ParseRenderer>,
    ) {
        let root = packages.get(&self.root_name).map(|p| &p.settings);
        let mut errors = Vec::new();
        for node in &mut self.nodes {
            let mut config = defaults(node.resource_type);
            let mut trees: Vec<&Yaml> = Vec::new();
            let own = packages.get(&node.package_name).map(|p| &p.settings);
            for settings in [own, root].into_iter().flatten() {
                for section in node.resource_type.project_section() {
                    if let Some(tree) = settings.resource_configs.get(*section) {
                        trees.push(tree);
                    }
                }
                if own.map(|s| &s.name) == root.map(|s| &s.name) {
                    break;
                }
            }
            for tree in trees {
                for layer in folder_layers(tree, &node.fqn) {
                    merge_config(&mut config, &layer);
                }
            }
            if let Some(layer) = self.yaml_config.get(&node.unique_id) {
                let mut layer = layer.clone();
                if let Some(renderer) = renderers.get(&node.package_name)
                    && let Err(detail) = renderer.render_config(&mut layer)
                {
                    errors.push(
                        ProjectError::invalid(format!(
                            "cannot render the config of {}: {detail}",
                            node.unique_id
                        ))
                        .at(node_file(&self.package_roots, node), node.line),
                    );
                }
                merge_config(&mut config, &layer);
            }
            node.base_config = config.clone();
            merge_config(&mut config, &node.static_config);
            node.config = config;
            if node.resource_type == ResourceType::Source
                && let Some(renderer) = renderers.get(&node.package_name)
            {
                // dbt renders a source's database, schema and identifier
                // (`schema: "{{ var('raw_schema', 'raw') }}"`).
                render_source_names(node, renderer, &self.package_roots, &mut errors);
            }
            set_placeholders(node, profile);
        }
        self.errors.extend(errors);
    }
}

fn render_source_names(
    node: &mut Node,
    renderer: &ParseRenderer,
    roots: &BTreeMap<String, PathBuf>,
    errors: &mut Vec<ProjectError>,
) {
    let mut failed = None;
    let mut render = |value: &mut Option<String>| {
        if let Some(text) = value.as_mut() {
            match renderer.render_str(text) {
                Ok(Json::String(s)) => *text = s,
                Ok(other) => *text = other.to_string(),
                Err(detail) => failed = Some(detail),
            }
        }
    };
    render(&mut node.database);
    render(&mut node.schema);
    render(&mut node.alias);
    if let Some(details) = node.source.as_mut() {
        let mut identifier = Some(std::mem::take(&mut details.identifier));
        render(&mut identifier);
        details.identifier = identifier.unwrap_or_default();
    }
    if let Some(detail) = failed {
        errors.push(
            ProjectError::invalid(format!(
                "cannot render the names of {}: {detail}",
                node.unique_id
            ))
            .at(node_file(roots, node), node.line),
        );
    }
}

/// The database/schema/alias a node would get from dbt's default `generate_*_name` macros;
/// the compiler replaces them when a project overrides those macros.
pub(crate) fn set_placeholders(node: &mut Node, profile: Option<&Profile>) {
    if node.resource_type == ResourceType::Source {
        if let Some(Json::String(db)) = node.config.get("database") {
            node.database = Some(db.clone());
        }
        if let Some(Json::String(schema)) = node.config.get("schema") {
            node.schema = Some(schema.clone());
        }
        return;
    }
    if matches!(
        node.resource_type,
        ResourceType::Exposure | ResourceType::UnitTest
    ) {
        return;
    }
    let target_schema = profile.map(Profile::schema);
    node.database = match node.config.get("database") {
        Some(Json::String(db)) => Some(db.clone()),
        _ => profile.and_then(Profile::database),
    };
    let custom = node
        .config
        .get("schema")
        .and_then(Json::as_str)
        .map(str::to_string);
    let snapshot_target = node
        .config
        .get("target_schema")
        .and_then(Json::as_str)
        .map(str::to_string);
    node.schema = match (snapshot_target, custom, target_schema) {
        (Some(t), _, _) => Some(t),
        (None, Some(custom), Some(base)) => Some(format!("{base}_{}", custom.trim())),
        (None, Some(custom), None) => Some(custom),
        (None, None, base) => base,
    };
    node.alias = match node.config.get("alias") {
        Some(Json::String(alias)) => Some(alias.clone()),
        _ => node.alias.clone().or_else(|| Some(node.name.clone())),
    };
    // A generic test with a long name runs under a hashed short name, which dbt also writes
    // into its config's alias (and `state:modified` compares configs).
    if node.resource_type == ResourceType::Test
        && node.config.get("alias").is_none_or(Json::is_null)
        && let Some(alias) = node.alias.clone().filter(|a| *a != node.name)
    {
        node.config.insert("alias".to_string(), Json::String(alias));
    }
}

fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        _ => a.cmp(b),
    }
}

fn apply_patch(
    node: &mut Node,
    patch: &Patch,
    yaml_config: &mut HashMap<UniqueId, Map<String, Json>>,
    version_config: Option<&Map<String, Json>>,
) {
    if let Some(description) = &patch.description {
        node.description = description.clone();
    }
    node.columns = patch.columns.clone();
    node.patch_path = Some(format!("{}://{}", patch.package, patch.file));
    if let Some(docs) = &patch.docs {
        node.docs = docs.clone();
    }
    let mut layer = patch.config.clone();
    if let Some(version_config) = version_config {
        let mut merged = crate::project::node::Config::new();
        merge_config(&mut merged, &layer);
        merge_config(&mut merged, version_config);
        layer = merged;
    }
    yaml_config.insert(node.unique_id.clone(), layer);
}

/// Where a ref may resolve, in dbt's order: the named package only, else the root project,
/// the calling node's package, then any package.
fn resolve_ref<'a>(
    call: &RefCall,
    from_package: &str,
    root: &str,
    index: &'a BTreeMap<(String, String), Vec<&'a Node>>,
) -> Option<&'a Node> {
    let pick = |candidates: &'a Vec<&'a Node>| -> Option<&'a Node> {
        match &call.version {
            Some(v) => candidates
                .iter()
                .copied()
                .find(|n| n.version.as_deref() == Some(v)),
            None => candidates
                .iter()
                .copied()
                .find(|n| n.version.is_none() || n.version == n.latest_version),
        }
    };
    if let Some(package) = &call.package {
        return index
            .get(&(package.clone(), call.name.clone()))
            .and_then(pick);
    }
    for package in [root, from_package] {
        if let Some(found) = index
            .get(&(package.to_string(), call.name.clone()))
            .and_then(pick)
        {
            return Some(found);
        }
    }
    index
        .iter()
        .filter(|((_, name), _)| *name == call.name)
        .find_map(|(_, candidates)| pick(candidates))
}

pub(crate) fn load(
    project_dir: &Path,
    options: &LoadOptions,
) -> Result<Project, Vec<ProjectError>> {
    let root_settings = ProjectSettings::load(project_dir).map_err(|e| vec![e])?;
    let root_name = root_settings.name.clone();
    let mut loader = Loader {
        project_dir: project_dir.to_path_buf(),
        package_roots: BTreeMap::new(),
        root_name: root_name.clone(),
        errors: Vec::new(),
        warnings: Vec::new(),
        nodes: Vec::new(),
        yaml_config: HashMap::new(),
        patches: Vec::new(),
        tests: Vec::new(),
        macros: BTreeMap::new(),
        docs: BTreeMap::new(),
        target_database: None,
    };

    let env: BTreeMap<String, String> = options
        .env
        .clone()
        .unwrap_or_else(|| std::env::vars().collect());
    // The profile.
    let profile = if options.skip_profile {
        None
    } else {
        let lookup = |name: &str| env.get(name).cloned();
        let dir = profiles_dir(options.profiles_dir.as_deref(), project_dir, &lookup);
        match &root_settings.profile {
            Some(profile_name) => {
                match load_profile(
                    &dir,
                    profile_name,
                    options.target.as_deref(),
                    &env,
                    &options.vars,
                ) {
                    Ok(profile) => Some(profile),
                    Err(e) => {
                        loader.errors.push(e);
                        None
                    }
                }
            }
            None => {
                loader.errors.push(
                    ProjectError::invalid("dbt_project.yml names no 'profile'")
                        .at(&root_settings.file, None)
                        .hint("add `profile: <name>` naming a profile in profiles.yml"),
                );
                None
            }
        }
    };
    loader.target_database = profile.as_ref().and_then(Profile::database);

    // Packages: everything installed, and every declared package must be installed.
    let install_dir = project_dir.join(&root_settings.packages_install_path);
    let mut packages: BTreeMap<String, Package> = BTreeMap::new();
    packages.insert(
        root_name.clone(),
        Package {
            name: root_name.clone(),
            root: project_dir.to_path_buf(),
            settings: root_settings.clone(),
            is_root: true,
        },
    );
    let mut installed_dirs: BTreeMap<String, PathBuf> = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(&install_dir) {
        let mut dirs: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        dirs.sort();
        for dir in dirs {
            if !dir.join("dbt_project.yml").is_file() {
                continue;
            }
            match ProjectSettings::load(&dir) {
                Ok(settings) => {
                    if let Some(folder) = dir.file_name() {
                        installed_dirs.insert(folder.to_string_lossy().to_string(), dir.clone());
                    }
                    if settings.name == root_name {
                        continue;
                    }
                    packages.insert(
                        settings.name.clone(),
                        Package {
                            name: settings.name.clone(),
                            root: dir.clone(),
                            settings,
                            is_root: false,
                        },
                    );
                }
                Err(e) => loader.errors.push(e),
            }
        }
    }
    match declared_packages(project_dir) {
        Ok(declared) => {
            for package in declared {
                let name = package.install_name(project_dir);
                if !packages.contains_key(&name) && !installed_dirs.contains_key(&name) {
                    loader.errors.push(
                        ProjectError::new(ProjectErrorKind::MissingPackage(name))
                            .at(
                                package
                                    .file
                                    .strip_prefix(project_dir)
                                    .unwrap_or(&package.file),
                                Some(package.line),
                            )
                            .hint("run `weir models deps` to install the project's packages"),
                    );
                }
            }
        }
        Err(errors) => loader.errors.extend(errors),
    }

    // Without its packages a project only yields follow-on errors (refs into them).
    if loader
        .errors
        .iter()
        .any(|e| matches!(e.kind, ProjectErrorKind::MissingPackage(_)))
    {
        return Err(loader.errors);
    }
    for (name, package) in &packages {
        let shown = package
            .root
            .strip_prefix(project_dir)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| package.root.clone());
        loader.package_roots.insert(name.clone(), shown);
    }
    let roots = &loader.package_roots.clone();
    // dbt renders `env_var()`, `var()` and `target` in dbt_project.yml config trees.
    let target = profile.as_ref().map(target_context);
    let mut renderers: BTreeMap<String, ParseRenderer> = BTreeMap::new();
    for (name, package) in packages.iter_mut() {
        let own = if package.is_root {
            Map::new()
        } else {
            package.settings.vars.clone()
        };
        let vars = vars_for(name, &own, &root_settings.vars, &options.vars);
        let renderer = ParseRenderer::new(env.clone(), vars, target.clone());
        let file = package
            .settings
            .file
            .strip_prefix(project_dir)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| package.settings.file.clone());
        for tree in package.settings.resource_configs.values_mut() {
            for (line, detail) in renderer.render_yaml(tree) {
                loader
                    .errors
                    .push(ProjectError::invalid(detail).at(&file, Some(line)));
            }
        }
        renderers.insert(name.clone(), renderer);
    }
    let package_list: Vec<Package> = packages.values().cloned().collect();
    for package in &package_list {
        loader.read_package(package);
    }
    loader.apply_patches();
    loader.attach_tests();
    loader.resolve_configs(&packages, profile.as_ref(), &renderers);

    // Duplicates: refable names per package, and identical unique ids.
    let mut by_id: BTreeMap<UniqueId, &Node> = BTreeMap::new();
    let mut by_name: BTreeMap<(String, String, Option<String>), &Node> = BTreeMap::new();
    let mut duplicate_errors = Vec::new();
    for node in loader.nodes.iter().filter(|n| n.enabled()) {
        if node.resource_type.is_refable() {
            let key = (
                node.package_name.clone(),
                node.name.clone(),
                node.version.clone(),
            );
            if let Some(first) = by_name.get(&key) {
                let kind = if first.resource_type == node.resource_type {
                    format!("{}s", node.resource_type)
                } else {
                    "resources".to_string()
                };
                duplicate_errors.push(
                    ProjectError::new(ProjectErrorKind::Duplicate(format!(
                        "dbt found two {kind} with the name '{}': {} ({}) and {} ({})",
                        node.name,
                        first.unique_id,
                        first.location(),
                        node.unique_id,
                        node.location()
                    )))
                    .at(node_file(roots, node), node.line)
                    .hint("rename one of them: ref() could not tell them apart"),
                );
                continue;
            }
            by_name.insert(key, node);
        }
        if let Some(first) = by_id.get(&node.unique_id) {
            if !node.resource_type.is_refable() {
                duplicate_errors.push(
                    ProjectError::new(ProjectErrorKind::Duplicate(format!(
                        "dbt found two {}s with the name '{}': {} ({}) and {} ({})",
                        node.resource_type,
                        node.name,
                        first.unique_id,
                        first.location(),
                        node.unique_id,
                        node.location()
                    )))
                    .at(node_file(roots, node), node.line)
                    .hint("give one of them a different `name:`"),
                );
            }
            continue;
        }
        by_id.insert(node.unique_id.clone(), node);
    }
    loader.errors.extend(duplicate_errors);

    // Split enabled and disabled, keeping the first of duplicate ids.
    let mut nodes: BTreeMap<UniqueId, Node> = BTreeMap::new();
    let mut disabled: BTreeMap<UniqueId, Node> = BTreeMap::new();
    for node in std::mem::take(&mut loader.nodes) {
        let map = if node.enabled() {
            &mut nodes
        } else {
            &mut disabled
        };
        map.entry(node.unique_id.clone()).or_insert(node);
    }
    // Tests of a disabled node are disabled with it.
    let orphans: Vec<UniqueId> = nodes
        .values()
        .filter(|n| {
            n.attached_node
                .as_ref()
                .is_some_and(|a| !nodes.contains_key(a))
        })
        .map(|n| n.unique_id.clone())
        .collect();
    for id in orphans {
        if let Some(node) = nodes.remove(&id) {
            disabled.insert(id, node);
        }
    }

    resolve_dependencies(&mut nodes, &disabled, &root_name, roots, &mut loader.errors);
    let graph = Graph::build(nodes.values());
    if let Some(cycle) = graph.find_cycle() {
        loader.errors.push(
            ProjectError::new(ProjectErrorKind::Cycle(cycle.join(" --> ")))
                .hint("remove one of the ref() calls that close the loop"),
        );
    }

    let selectors = super::select::Selectors::load(project_dir);
    let selectors = match selectors {
        Ok(s) => s,
        Err(e) => {
            loader.errors.push(e);
            Default::default()
        }
    };
    if !loader.errors.is_empty() {
        return Err(loader.errors);
    }
    let settings = packages
        .get(&root_name)
        .map(|p| p.settings.clone())
        .unwrap_or(root_settings);
    Ok(Project {
        root: project_dir.to_path_buf(),
        settings,
        profile,
        packages,
        nodes,
        disabled,
        macros: loader.macros,
        docs: loader.docs,
        selectors,
        graph,
        warnings: loader.warnings,
        cli_vars: options.vars.clone(),
    })
}

/// Fills `depends_on` of every node from its refs and sources, reporting missing targets with
/// a did-you-mean.
pub(crate) fn resolve_dependencies(
    nodes: &mut BTreeMap<UniqueId, Node>,
    disabled: &BTreeMap<UniqueId, Node>,
    root_name: &str,
    roots: &BTreeMap<String, PathBuf>,
    errors: &mut Vec<ProjectError>,
) {
    let mut index: BTreeMap<(String, String), Vec<&Node>> = BTreeMap::new();
    for node in nodes.values().filter(|n| n.resource_type.is_refable()) {
        index
            .entry((node.package_name.clone(), node.name.clone()))
            .or_default()
            .push(node);
    }
    let source_ids: BTreeSet<&str> = nodes
        .values()
        .filter(|n| n.resource_type == ResourceType::Source)
        .map(|n| n.unique_id.as_str())
        .collect();
    let refable_names: Vec<&str> = {
        let mut names: Vec<&str> = index.keys().map(|(_, n)| n.as_str()).collect();
        names.dedup();
        names
    };
    let source_names: Vec<String> = nodes
        .values()
        .filter_map(|n| {
            n.source
                .as_ref()
                .map(|s| format!("{}.{}", s.source_name, n.name))
        })
        .collect();
    let mut resolved: BTreeMap<UniqueId, Vec<UniqueId>> = BTreeMap::new();
    for node in nodes.values() {
        let mut parents: Vec<UniqueId> = node.depends_on.clone();
        for call in &node.refs {
            match resolve_ref(call, &node.package_name, root_name, &index) {
                Some(target) => {
                    if !parents.contains(&target.unique_id) {
                        parents.push(target.unique_id.clone());
                    }
                }
                None => {
                    let is_disabled = disabled
                        .values()
                        .any(|d| d.resource_type.is_refable() && d.name == call.name);
                    let target = match (&call.package, &call.version) {
                        (Some(p), _) => format!("{p}.{}", call.name),
                        (None, Some(v)) => format!("{} (version {v})", call.name),
                        (None, None) => call.name.clone(),
                    };
                    let mut error = ProjectError::new(ProjectErrorKind::MissingRef {
                        node: node.unique_id.clone(),
                        target,
                    })
                    .at(node_file(roots, node), node.line);
                    error = if is_disabled {
                        error.hint(format!(
                            "'{}' is disabled: enable it or remove the ref",
                            call.name
                        ))
                    } else if let Some(best) = strsim_best(&call.name, &refable_names) {
                        error.hint(format!("did you mean '{best}'?"))
                    } else {
                        error.hint("create the model, seed or snapshot, or fix the name in ref()")
                    };
                    errors.push(error);
                }
            }
        }
        for call in &node.sources {
            let id = format!(
                "source.{}.{}.{}",
                node.package_name, call.source, call.table
            );
            let found = if source_ids.contains(id.as_str()) {
                Some(id)
            } else {
                source_ids
                    .iter()
                    .find(|s| s.ends_with(&format!(".{}.{}", call.source, call.table)))
                    .map(|s| s.to_string())
            };
            match found {
                Some(id) => {
                    if !parents.contains(&id) {
                        parents.push(id);
                    }
                }
                None => {
                    let wanted = format!("{}.{}", call.source, call.table);
                    let refs: Vec<&str> = source_names.iter().map(String::as_str).collect();
                    let mut error = ProjectError::new(ProjectErrorKind::MissingSource {
                        node: node.unique_id.clone(),
                        table: wanted.clone(),
                    })
                    .at(node_file(roots, node), node.line);
                    error = match strsim_best(&wanted, &refs) {
                        Some(best) => error.hint(format!("did you mean '{best}'?")),
                        None => error
                            .hint("declare it under `sources:` in a .yml file of the model paths"),
                    };
                    errors.push(error);
                }
            }
        }
        resolved.insert(node.unique_id.clone(), parents);
    }
    for (id, parents) in resolved {
        if let Some(node) = nodes.get_mut(&id) {
            node.depends_on = parents;
        }
    }
}
