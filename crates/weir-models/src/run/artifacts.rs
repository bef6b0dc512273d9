//! `target/run_results.json` (v6) and `target/manifest.json` (v12 with the compiled fields).

use std::path::Path;

use serde_json::{Value as Json, json};

use super::{RunError, RunOptions, RunReport};
use crate::project::{Project, manifest_json};

const DBT_VERSION: &str = "1.11.0";

fn write_json(path: &Path, value: &Json) -> Result<(), RunError> {
    let err = |e: String| RunError::Write {
        path: path.display().to_string(),
        message: e,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| err(e.to_string()))?;
    }
    let text = serde_json::to_string_pretty(value).map_err(|e| err(e.to_string()))?;
    std::fs::write(path, text).map_err(|e| err(e.to_string()))
}

/// `run_results.json` of a report.
/// The `metadata` of run_results.json, sources.json and catalog.json: `schema` is the
/// artifact's schema, as `run-results/v6`.
pub(crate) fn artifact_metadata(schema: &str, generated_at: &str) -> Json {
    json!({
        "dbt_schema_version": format!("https://schemas.getdbt.com/dbt/{schema}.json"),
        "dbt_version": DBT_VERSION,
        "generated_at": generated_at,
        "invocation_id": null,
        "invocation_started_at": null,
        "env": {},
    })
}

pub fn run_results(report: &RunReport, options: &RunOptions, generated_at: &str) -> Json {
    let results: Vec<Json> = report
        .results
        .iter()
        .map(|r| {
            json!({
                "status": r.status.as_str(),
                "timing": [
                    {"name": "compile", "started_at": r.started_at, "completed_at": r.compiled_at},
                    {"name": "execute", "started_at": r.compiled_at, "completed_at": r.completed_at},
                ],
                "thread_id": r.thread_id,
                "execution_time": r.execution_time,
                "adapter_response": r.adapter_response,
                "message": r.message,
                "failures": r.failures,
                "unique_id": r.unique_id,
                "compiled": r.compiled.is_some(),
                "compiled_code": r.compiled.as_ref().map(|c| c.sql.clone()),
                "relation_name": r.relation_name,
                "batch_results": null,
            })
        })
        .collect();
    json!({
        "metadata": artifact_metadata("run-results/v6", generated_at),
        "results": results,
        "elapsed_time": report.elapsed,
        "args": {
            "which": options.command.as_str(),
            "select": options.selection.select,
            "exclude": options.selection.exclude,
            "selector": options.selection.selector,
            "full_refresh": options.full_refresh,
            "threads": options.threads,
            "fail_fast": options.fail_fast,
            "empty": options.empty,
        },
    })
}

/// Writes both artifacts into `target_dir`.
pub fn write(
    project: &Project,
    report: &RunReport,
    options: &RunOptions,
    target_dir: &Path,
) -> Result<(), RunError> {
    let generated_at = super::now_iso();
    let mut manifest = manifest_json(project, &generated_at);
    if let Some(Json::Object(nodes)) = manifest.get_mut("nodes") {
        for r in &report.results {
            let (Some(c), Some(Json::Object(node))) = (&r.compiled, nodes.get_mut(&r.unique_id))
            else {
                continue;
            };
            node.insert("compiled".into(), json!(true));
            node.insert("compiled_code".into(), json!(c.sql));
            node.insert("extra_ctes_injected".into(), json!(true));
            node.insert(
                "extra_ctes".into(),
                Json::Array(
                    c.extra_ctes
                        .iter()
                        .map(|(id, sql)| json!({"id": id, "sql": sql}))
                        .collect(),
                ),
            );
            if let Some(pn) = project.nodes.get(&r.unique_id) {
                let path = super::compiled_rel_path(pn);
                node.insert(
                    "compiled_path".into(),
                    json!(
                        Path::new(&project.settings.target_path)
                            .join("compiled")
                            .join(path)
                            .display()
                            .to_string()
                    ),
                );
            }
            if let Some(rel) = &r.relation_name {
                node.insert("relation_name".into(), json!(rel));
            }
        }
    }
    write_json(&target_dir.join("manifest.json"), &manifest)?;
    if options.command != super::Command::Compile || !report.results.is_empty() {
        write_json(
            &target_dir.join("run_results.json"),
            &run_results(report, options, &generated_at),
        )?;
    }
    Ok(())
}
