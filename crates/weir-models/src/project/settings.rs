//! `dbt_project.yml`: name, profile, the resource folders, vars, hooks, quoting, dispatch and
//! the folder-level config trees (`models:`, `seeds:`, ...) kept as YAML for config resolution.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};

use super::error::{ProjectError, ProjectErrorKind};
use super::yaml::Yaml;

/// One `dispatch:` entry: where `adapter.dispatch` looks for a namespace's macros.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatch {
    pub macro_namespace: String,
    pub search_order: Vec<String>,
}

/// A package's `dbt_project.yml`, read.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectSettings {
    /// The directory holding `dbt_project.yml`.
    pub root: PathBuf,
    pub name: String,
    pub version: Option<String>,
    pub profile: Option<String>,
    pub model_paths: Vec<String>,
    pub seed_paths: Vec<String>,
    pub snapshot_paths: Vec<String>,
    pub test_paths: Vec<String>,
    pub macro_paths: Vec<String>,
    pub analysis_paths: Vec<String>,
    /// `None` when unset: dbt then looks for docs blocks in every resource folder.
    pub docs_paths: Option<Vec<String>>,
    pub target_path: String,
    pub packages_install_path: String,
    pub require_dbt_version: Vec<String>,
    /// `vars:` as written: global values and maps keyed by package name.
    pub vars: Map<String, Json>,
    pub on_run_start: Vec<String>,
    pub on_run_end: Vec<String>,
    pub quoting: Map<String, Json>,
    pub dispatch: Vec<Dispatch>,
    /// `models:`, `seeds:`, `snapshots:`, `tests:`/`data_tests:`, `sources:`, `unit_tests:`,
    /// `analyses:`, `exposures:` trees, for folder-level configs.
    pub resource_configs: BTreeMap<String, Yaml>,
    /// The `dbt_project.yml` file read (seeds' `column_types` are plain configs in
    /// `resource_configs`).
    pub file: PathBuf,
}

fn paths(doc: &Yaml, key: &str, default: &[&str]) -> Vec<String> {
    match doc.get(key) {
        Some(value) if !value.is_null() => value.string_list(),
        _ => default.iter().map(|s| s.to_string()).collect(),
    }
}

fn map_of(value: Option<&Yaml>) -> Map<String, Json> {
    match value.map(Yaml::to_json) {
        Some(Json::Object(map)) => map,
        _ => Map::new(),
    }
}

impl ProjectSettings {
    /// Reads `<dir>/dbt_project.yml`.
    pub fn load(dir: &Path) -> Result<ProjectSettings, ProjectError> {
        let file = dir.join("dbt_project.yml");
        let text = std::fs::read_to_string(&file).map_err(|e| {
            ProjectError::new(ProjectErrorKind::Io {
                path: file.clone(),
                reason: e.to_string(),
            })
            .hint("run weir models from a dbt project directory, or pass --project-dir")
        })?;
        Self::parse(&text, dir, &file)
    }

    pub fn parse(text: &str, dir: &Path, file: &Path) -> Result<ProjectSettings, ProjectError> {
        let doc = Yaml::parse(text, file)?;
        if !doc.is_map() {
            return Err(ProjectError::invalid(format!(
                "dbt_project.yml must be a mapping, got {}",
                doc.type_name()
            ))
            .at(file, Some(doc.line)));
        }
        let name = match doc.get("name").and_then(Yaml::as_str) {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => {
                return Err(ProjectError::invalid("dbt_project.yml has no 'name'")
                    .at(file, Some(doc.line))
                    .hint("add `name: my_project` at the top"));
            }
        };
        let hooks =
            |key: &str| -> Vec<String> { doc.get(key).map(Yaml::string_list).unwrap_or_default() };
        let mut dispatch = Vec::new();
        for entry in doc.at("dispatch").as_seq() {
            let Some(namespace) = entry.at("macro_namespace").as_str() else {
                return Err(
                    ProjectError::invalid("a dispatch entry has no 'macro_namespace'")
                        .at(file, Some(entry.line)),
                );
            };
            dispatch.push(Dispatch {
                macro_namespace: namespace.to_string(),
                search_order: entry.at("search_order").string_list(),
            });
        }
        let mut resource_configs = BTreeMap::new();
        for section in [
            "models",
            "seeds",
            "snapshots",
            "tests",
            "data_tests",
            "sources",
            "unit_tests",
            "analyses",
            "exposures",
        ] {
            if let Some(tree) = doc.get(section) {
                if !tree.is_null() && !tree.is_map() {
                    return Err(ProjectError::invalid(format!(
                        "'{section}' in dbt_project.yml must be a mapping, got {}",
                        tree.type_name()
                    ))
                    .at(file, Some(tree.line)));
                }
                resource_configs.insert(section.to_string(), tree.clone());
            }
        }
        let require = match doc.get("require-dbt-version") {
            Some(v) => v.string_list(),
            None => Vec::new(),
        };
        Ok(ProjectSettings {
            root: dir.to_path_buf(),
            name,
            version: doc.get("version").and_then(Yaml::scalar_text),
            profile: doc.get("profile").and_then(Yaml::scalar_text),
            model_paths: paths(&doc, "model-paths", &["models"]),
            seed_paths: paths(&doc, "seed-paths", &["seeds"]),
            snapshot_paths: paths(&doc, "snapshot-paths", &["snapshots"]),
            test_paths: paths(&doc, "test-paths", &["tests"]),
            macro_paths: paths(&doc, "macro-paths", &["macros"]),
            analysis_paths: paths(&doc, "analysis-paths", &["analyses"]),
            docs_paths: doc
                .get("docs-paths")
                .filter(|v| !v.is_null())
                .map(Yaml::string_list),
            target_path: doc
                .get("target-path")
                .and_then(Yaml::scalar_text)
                .unwrap_or_else(|| "target".to_string()),
            packages_install_path: doc
                .get("packages-install-path")
                .and_then(Yaml::scalar_text)
                .unwrap_or_else(|| "dbt_packages".to_string()),
            require_dbt_version: require,
            vars: map_of(doc.get("vars")),
            on_run_start: hooks("on-run-start"),
            on_run_end: hooks("on-run-end"),
            quoting: map_of(doc.get("quoting")),
            dispatch,
            resource_configs,
            file: file.to_path_buf(),
        })
    }

    /// Every folder dbt searches for docs blocks.
    pub fn all_docs_paths(&self) -> Vec<String> {
        if let Some(paths) = &self.docs_paths {
            return paths.clone();
        }
        let mut all = Vec::new();
        for group in [
            &self.model_paths,
            &self.seed_paths,
            &self.snapshot_paths,
            &self.test_paths,
            &self.analysis_paths,
            &self.macro_paths,
        ] {
            for path in group {
                if !all.contains(path) {
                    all.push(path.clone());
                }
            }
        }
        all
    }
}

/// The vars a node of `package` sees, as dbt's `vars_for`: the package's own `vars:` (for a
/// dependency), then the root project's, each with its block for `package` on top (the
/// block itself also stays visible as a var of that name, as in dbt), then `--vars`.
pub fn vars_for(
    package: &str,
    package_vars: &Map<String, Json>,
    root_vars: &Map<String, Json>,
    cli_vars: &Map<String, Json>,
) -> Map<String, Json> {
    let mut out = Map::new();
    for vars in [package_vars, root_vars] {
        for (key, value) in vars {
            out.insert(key.clone(), value.clone());
        }
        if let Some(Json::Object(scoped)) = vars.get(package) {
            for (key, value) in scoped {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    for (key, value) in cli_vars {
        out.insert(key.clone(), value.clone());
    }
    out
}
