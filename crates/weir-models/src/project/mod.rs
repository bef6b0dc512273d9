//! Reading a dbt project: settings, profiles, packages, nodes, configs, selection.
//!
//! [`Project::load`] reads `dbt_project.yml`, `profiles.yml`, the installed packages and every
//! model, seed, snapshot, test, unit test, source, analysis, exposure, macro and docs block,
//! resolves configs in dbt's precedence, extracts `ref()`/`source()` statically and builds the
//! [`Graph`]; [`select`] applies dbt's selection grammar to it. Every problem is reported at
//! once, each with `file:line` and a hint.
//!
//! Architecture invariant: no Jinja rendering of models here (only `env_var` in profiles). The
//! compiler consumes this output, applies each model's in-file `{{ config() }}` with
//! [`Project::apply_file_config`] and replaces the static dependency list with
//! [`Project::set_dependencies`].

pub mod config;
pub mod error;
pub mod files;
pub mod graph;
mod load;
pub mod node;
pub mod packages;
pub mod profile;
pub mod properties;
pub mod render;
pub mod scan;
pub mod select;
pub mod settings;
pub mod state;
pub mod test_names;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};

pub use config::merge_config;
pub use error::{Location, ProjectError, ProjectErrorKind, render_errors};
pub use graph::Graph;
pub use node::{
    Checksum, Column, Config, DocBlock, Macro, Node, RefCall, ResourceType, SourceCall,
    TestMetadata, UniqueId,
};
pub use packages::install_local_packages;
pub use profile::Profile;
pub use select::{IndirectSelection, Selection, Selectors, select};
pub use settings::{Dispatch, ProjectSettings};
pub use state::{State, manifest_json, write_manifest};

/// How to load a project: the CLI's `--profiles-dir`, `--target`, `--vars`.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub profiles_dir: Option<PathBuf>,
    pub target: Option<String>,
    /// `--vars`, highest precedence.
    pub vars: Map<String, Json>,
    /// The environment for `env_var()` and `DBT_PROFILES_DIR`/`HOME`; `None` reads the
    /// process environment (tests pass their own).
    pub env: Option<BTreeMap<String, String>>,
    /// Read no profile (`weir models deps`, or listing without a warehouse).
    pub skip_profile: bool,
}

/// An installed package or the root project.
#[derive(Debug, Clone, PartialEq)]
pub struct Package {
    pub name: String,
    pub root: PathBuf,
    pub settings: ProjectSettings,
    pub is_root: bool,
}

/// A loaded dbt project: what the compiler and the CLI work from.
#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub settings: ProjectSettings,
    /// The chosen target of the profile; `None` with `skip_profile`.
    pub profile: Option<Profile>,
    /// The root project and every installed package, by project name.
    pub packages: BTreeMap<String, Package>,
    /// Enabled nodes by unique id.
    pub nodes: BTreeMap<UniqueId, Node>,
    /// Nodes with `enabled: false` (and tests of disabled nodes).
    pub disabled: BTreeMap<UniqueId, Node>,
    pub macros: BTreeMap<UniqueId, Macro>,
    pub docs: BTreeMap<UniqueId, DocBlock>,
    pub selectors: Selectors,
    pub graph: Graph,
    /// Things dbt warns about (a property entry naming no file).
    pub warnings: Vec<String>,
    pub cli_vars: Map<String, Json>,
}

impl Project {
    /// Reads the project in `project_dir`; every problem found is returned at once.
    pub fn load(project_dir: &Path, options: &LoadOptions) -> Result<Project, Vec<ProjectError>> {
        load::load(project_dir, options)
    }

    pub fn root_package(&self) -> &str {
        &self.settings.name
    }

    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// Nodes of one resource type, in unique-id order.
    pub fn nodes_of(&self, resource_type: ResourceType) -> impl Iterator<Item = &Node> {
        self.nodes
            .values()
            .filter(move |n| n.resource_type == resource_type)
    }

    /// The vars a node of `package` sees (`var()`): package defaults < root project < `--vars`.
    pub fn vars_for(&self, package: &str) -> Map<String, Json> {
        let own = self
            .packages
            .get(package)
            .filter(|p| !p.is_root)
            .map(|p| p.settings.vars.clone())
            .unwrap_or_default();
        settings::vars_for(package, &own, &self.settings.vars, &self.cli_vars)
    }

    /// The search order `adapter.dispatch` uses for `namespace`, from `dispatch:` in the root
    /// project (else the root project, then the namespace itself).
    pub fn dispatch_order(&self, namespace: &str) -> Vec<String> {
        if let Some(entry) = self
            .settings
            .dispatch
            .iter()
            .find(|d| d.macro_namespace == namespace)
        {
            return entry.search_order.clone();
        }
        let mut order = vec![self.settings.name.clone()];
        if namespace != self.settings.name {
            order.push(namespace.to_string());
        }
        order
    }

    /// Applies the rendered in-file `{{ config(...) }}` of a node, the last and strongest layer;
    /// it replaces the literal part read at parse time (`Node::static_config`). A node that
    /// becomes disabled leaves `nodes` (with its tests) and the graph is rebuilt.
    pub fn apply_file_config(
        &mut self,
        id: &str,
        layer: &Map<String, Json>,
    ) -> Result<(), ProjectError> {
        let Some(node) = self.nodes.get_mut(id) else {
            return Err(ProjectError::invalid(format!("no enabled node '{id}'")));
        };
        // The rendered layer replaces the statically read one.
        let mut config = node.base_config.clone();
        merge_config(&mut config, layer);
        node.config = config;
        load::set_placeholders(node, self.profile.as_ref());
        if !node.enabled() {
            self.disable(id);
        }
        Ok(())
    }

    fn disable(&mut self, id: &str) {
        if let Some(node) = self.nodes.remove(id) {
            self.disabled.insert(id.to_string(), node);
        }
        let tests: Vec<UniqueId> = self
            .nodes
            .values()
            .filter(|n| {
                n.attached_node.as_deref() == Some(id)
                    || (n.resource_type == ResourceType::UnitTest
                        && n.depends_on.iter().any(|d| d == id))
            })
            .map(|n| n.unique_id.clone())
            .collect();
        for test in tests {
            if let Some(node) = self.nodes.remove(&test) {
                self.disabled.insert(test, node);
            }
        }
        self.graph = Graph::build(self.nodes.values());
    }

    /// Replaces a node's dependencies with what rendering really called, and updates the
    /// graph; a cycle this creates is an error.
    pub fn set_dependencies(
        &mut self,
        id: &str,
        depends_on: Vec<UniqueId>,
    ) -> Result<(), ProjectError> {
        let Some(node) = self.nodes.get_mut(id) else {
            return Err(ProjectError::invalid(format!("no enabled node '{id}'")));
        };
        node.depends_on = depends_on;
        // Only this node's edges change (the compiler calls this once per node: rebuilding
        // the graph each time was quadratic), and only an added parent can close a loop.
        let added = self.graph.set_parents(id, &node.depends_on);
        if added.is_empty() || !self.graph.reaches_any(id, &added) {
            return Ok(());
        }
        match self.graph.find_cycle() {
            Some(cycle) => Err(
                ProjectError::new(ProjectErrorKind::Cycle(cycle.join(" --> ")))
                    .hint("remove one of the ref() calls that close the loop"),
            ),
            None => Ok(()),
        }
    }

    /// The tests (generic, singular, unit) that depend on `id`.
    pub fn tests_of(&self, id: &str) -> Vec<&Node> {
        self.graph
            .children
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|child| self.nodes.get(child))
            .filter(|n| matches!(n.resource_type, ResourceType::Test | ResourceType::UnitTest))
            .collect()
    }

    /// Generic test macros (`test_<name>`) by package, as `{% test %}` blocks define them.
    pub fn generic_tests(&self) -> impl Iterator<Item = &Macro> {
        self.macros.values().filter(|m| m.name.starts_with("test_"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_dependencies_refuses_the_cycle_it_would_close() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("models")).unwrap();
        for (path, text) in [
            ("dbt_project.yml", "name: shop\nprofile: p\n"),
            ("models/a.sql", "select 1 as id"),
            ("models/b.sql", "select * from {{ ref('a') }}"),
            ("models/c.sql", "select * from {{ ref('b') }}"),
        ] {
            std::fs::write(dir.path().join(path), text).unwrap();
        }
        let options = LoadOptions {
            skip_profile: true,
            ..Default::default()
        };
        let mut project = Project::load(dir.path(), &options).unwrap();
        let error = project
            .set_dependencies("model.shop.a", vec!["model.shop.c".into()])
            .unwrap_err();
        assert!(
            matches!(&error.kind, ProjectErrorKind::Cycle(c) if c.contains("model.shop.c")),
            "{error:?}"
        );
        // Dropping the edge lifts the cycle; the graph stays what a rebuild gives.
        project.set_dependencies("model.shop.a", vec![]).unwrap();
        assert!(project.graph.find_cycle().is_none());
        project
            .set_dependencies("model.shop.c", vec!["model.shop.a".into()])
            .unwrap();
        assert_eq!(project.graph, Graph::build(project.nodes.values()));
    }
}
