//! `--defer --state DIR`: a `ref()` to a node the command does not run resolves to that node's
//! relation in the state manifest (a production run's `target/`) when the node's own relation
//! does not exist in the current target, as dbt defers. The node's `database`, `schema` and
//! `alias` are replaced before the run, so compile resolves refs to the deferred relation.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value as Json;

use crate::project::{Project, ResourceType, Selection, UniqueId, select};
use crate::run::compile::materialized;
use crate::run::{Command, RunError};
use crate::session::Session;

/// One node that now points at the state's relation.
#[derive(Debug, Clone, PartialEq)]
pub struct Deferred {
    pub unique_id: UniqueId,
    /// `schema.alias` in the state manifest.
    pub relation: String,
}

/// The nodes `command` runs of `selection` (those never deferred).
pub fn selected(
    project: &Project,
    selection: &Selection,
    command: Command,
) -> Result<BTreeSet<UniqueId>, RunError> {
    use ResourceType::*;
    let mut selection = selection.clone();
    selection.resource_types = Some(match command {
        Command::Run => vec![Model],
        Command::Test => vec![Test],
        Command::Seed => vec![Seed],
        Command::Snapshot => vec![Snapshot],
        Command::Compile | Command::Build => vec![Model, Seed, Snapshot, Test],
    });
    select(project, &selection).map_err(|e| RunError::Selection(e.to_string()))
}

fn text(v: Option<&Json>) -> Option<String> {
    v.and_then(Json::as_str).map(str::to_string)
}

/// Points every refable node outside `selected` whose relation is missing from the warehouse
/// at its relation in `<state_dir>/manifest.json`.
pub fn defer(
    project: &mut Project,
    selected: &BTreeSet<UniqueId>,
    state_dir: &Path,
) -> Result<Vec<Deferred>, RunError> {
    let path = state_dir.join("manifest.json");
    let manifest: Json = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| {
            RunError::Selection(format!(
                "--defer needs a manifest.json in --state {}: cannot read {}",
                state_dir.display(),
                path.display()
            ))
        })?;
    let candidates: Vec<UniqueId> = project
        .nodes
        .values()
        .filter(|n| {
            n.resource_type.is_refable()
                && materialized(n) != "ephemeral"
                && !selected.contains(&n.unique_id)
        })
        .map(|n| n.unique_id.clone())
        .collect();
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let session = Session::open(project, "defer")?;
    let mut deferred = Vec::new();
    for id in candidates {
        let Some(state_node) = manifest.get("nodes").and_then(|n| n.get(&id)) else {
            continue;
        };
        let Some(node) = project.nodes.get(&id) else {
            continue;
        };
        let alias = node.alias.clone().unwrap_or_else(|| node.name.clone());
        let exists = session
            .adapter
            .relation_kind(
                node.database.as_deref(),
                node.schema.as_deref().unwrap_or_default(),
                &alias,
            )
            .map_err(|e| RunError::Warehouse {
                target: session.target_name.clone(),
                message: e.0,
            })?
            .is_some();
        if exists {
            continue;
        }
        let (Some(schema), Some(state_alias)) = (
            text(state_node.get("schema")),
            text(state_node.get("alias")).or_else(|| text(state_node.get("name"))),
        ) else {
            continue;
        };
        let database = text(state_node.get("database"));
        if let Some(node) = project.nodes.get_mut(&id) {
            deferred.push(Deferred {
                unique_id: id.clone(),
                relation: format!("{schema}.{state_alias}"),
            });
            node.database = database.or(node.database.take());
            node.schema = Some(schema);
            node.alias = Some(state_alias);
        }
    }
    Ok(deferred)
}
