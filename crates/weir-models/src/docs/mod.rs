//! `weir models docs generate`: compiles the project (so the manifest holds rendered configs
//! and dependencies), reads the warehouse's information schema into `target/catalog.json`
//! (`catalog`) and writes the static site `target/index.html` (`site`). `docs serve` (in the
//! binary) only serves that folder.

pub mod catalog;
pub mod site;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::project::{Project, Selection};
use crate::run::{Command, RunError, RunOptions, execute, now_iso};
use crate::session::{Console, Session};

/// What `docs generate` wrote.
#[derive(Debug, Clone)]
pub struct DocsReport {
    pub catalog_path: PathBuf,
    pub index_path: PathBuf,
    /// Relations of the project found in the warehouse.
    pub cataloged: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("the project did not compile:\n{0}")]
    Compile(String),
}

fn write(path: &Path, text: &str) -> Result<(), RunError> {
    let err = |e: std::io::Error| RunError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    std::fs::write(path, text).map_err(err)
}

/// Compiles (unless `compile` is false), writes `catalog.json` and `index.html` into the
/// project's target folder, printing dbt's lines to `out`.
pub fn generate(
    project: &mut Project,
    compile: bool,
    threads: Option<usize>,
    out: Box<dyn Write + Send>,
) -> Result<DocsReport, DocsError> {
    let console = Console::new(out);
    if compile {
        let options = RunOptions {
            command: Command::Compile,
            selection: Selection::default(),
            full_refresh: false,
            threads,
            fail_fast: false,
            empty: false,
        };
        let report = execute(project, &options, Box::new(std::io::sink()))?;
        if !report.success() {
            let messages: Vec<String> = report
                .results
                .iter()
                .filter_map(|r| r.message.clone())
                .collect();
            return Err(DocsError::Compile(messages.join("\n")));
        }
    }
    let session = Session::open(project, "generate")?;
    console.header(
        project,
        threads.unwrap_or(session.threads),
        &session.target_name,
    );
    console.line("Building catalog");
    let generated_at = now_iso();
    let catalog = catalog::catalog_json(project, &session, &generated_at);
    if let Some(Json::Array(errors)) = catalog.get("errors") {
        for e in errors {
            console.line(&format!(
                "warning: the catalog is incomplete: {}",
                e.as_str().unwrap_or_default()
            ));
        }
    }
    let target = project.root.join(&project.settings.target_path);
    if !compile {
        crate::project::write_manifest(project, &target).map_err(|e| RunError::Write {
            path: target.join("manifest.json").display().to_string(),
            message: e.to_string(),
        })?;
    }
    let catalog_path = target.join("catalog.json");
    write(
        &catalog_path,
        &serde_json::to_string_pretty(&catalog).unwrap_or_default(),
    )?;
    let index_path = target.join("index.html");
    write(
        &index_path,
        &site::index_html(project, &catalog, &generated_at),
    )?;
    console.line(&format!("Catalog written to {}", catalog_path.display()));
    let count = |key: &str| {
        catalog
            .get(key)
            .and_then(Json::as_object)
            .map_or(0, |m| m.len())
    };
    Ok(DocsReport {
        catalog_path,
        index_path,
        cataloged: count("nodes") + count("sources"),
    })
}
