//! `weir models retry`: the command of the previous `target/run_results.json` again, over the
//! nodes that errored, failed or were skipped there, with that command's flags (dbt's
//! `RETRYABLE_STATUSES`; `--threads` may be given again).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value as Json;

use crate::project::{Selection, State};
use crate::run::{Command, RunOptions};

/// The statuses dbt retries.
const RETRYABLE: &[&str] = &[
    "error",
    "fail",
    "skipped",
    "runtime error",
    "partial success",
];

/// The status retried nodes are given in the selection's state (`result:retry` selects them).
const RETRY_STATUS: &str = "retry";

#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error(
        "Could not find previous run in '{0}' target directory\nhint: run a command first (weir models build), then retry it"
    )]
    NoPreviousRun(String),
    #[error("{path} is not run results: {message}")]
    Unreadable { path: String, message: String },
    #[error(
        "the previous command was '{0}', which weir models cannot retry\nhint: retry works after compile, run, test, seed, snapshot and build"
    )]
    NotRetryable(String),
}

/// What to run again.
#[derive(Debug, Clone)]
pub struct Retry {
    pub options: RunOptions,
    /// The unique ids to retry, in run_results order.
    pub unique_ids: Vec<String>,
}

fn command(which: &str) -> Option<Command> {
    Some(match which {
        "compile" => Command::Compile,
        "run" => Command::Run,
        "test" => Command::Test,
        "seed" => Command::Seed,
        "snapshot" => Command::Snapshot,
        "build" => Command::Build,
        _ => return None,
    })
}

/// Reads `<state_dir>/run_results.json` (`shown` names the folder in messages) and plans the
/// retry; `threads` overrides the previous run's.
pub fn plan(state_dir: &Path, shown: &str, threads: Option<usize>) -> Result<Retry, RetryError> {
    let path = state_dir.join("run_results.json");
    let text =
        std::fs::read_to_string(&path).map_err(|_| RetryError::NoPreviousRun(shown.to_string()))?;
    let results: Json = serde_json::from_str(&text).map_err(|e| RetryError::Unreadable {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let args = results.get("args").cloned().unwrap_or(Json::Null);
    let which = args
        .get("which")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    let command = command(&which).ok_or(RetryError::NotRetryable(which))?;
    let unique_ids: Vec<String> = results
        .get("results")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter(|r| {
            r.get("status")
                .and_then(Json::as_str)
                .is_some_and(|s| RETRYABLE.contains(&s))
        })
        .filter_map(|r| r.get("unique_id").and_then(Json::as_str))
        .filter(|id| !id.starts_with("operation."))
        .map(str::to_string)
        .collect();
    let state = State {
        nodes: BTreeMap::new(),
        results: unique_ids
            .iter()
            .map(|id| (id.clone(), RETRY_STATUS.to_string()))
            .collect(),
    };
    let flag = |k: &str| args.get(k).and_then(Json::as_bool).unwrap_or(false);
    let options = RunOptions {
        command,
        selection: Selection {
            select: vec![format!("result:{RETRY_STATUS}")],
            state: Some(state),
            ..Default::default()
        },
        full_refresh: flag("full_refresh"),
        threads: threads.or_else(|| {
            args.get("threads")
                .and_then(Json::as_u64)
                .map(|t| t as usize)
        }),
        fail_fast: flag("fail_fast"),
        empty: flag("empty"),
    };
    Ok(Retry {
        options,
        unique_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_takes_the_failed_and_skipped_nodes_and_the_previous_flags() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("run_results.json"),
            r#"{"args": {"which": "build", "full_refresh": true, "threads": 2},
                "results": [
                  {"unique_id": "model.p.a", "status": "success"},
                  {"unique_id": "model.p.b", "status": "error"},
                  {"unique_id": "test.p.t", "status": "fail"},
                  {"unique_id": "model.p.c", "status": "skipped"}]}"#,
        )
        .unwrap();
        let retry = plan(dir.path(), "target", None).unwrap();
        assert_eq!(retry.unique_ids, ["model.p.b", "test.p.t", "model.p.c"]);
        assert_eq!(retry.options.command, Command::Build);
        assert!(retry.options.full_refresh);
        assert_eq!(retry.options.threads, Some(2));
        assert_eq!(
            plan(dir.path(), "target", Some(1)).unwrap().options.threads,
            Some(1)
        );
    }

    #[test]
    fn retry_without_run_results_names_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let e = plan(dir.path(), "target", None).unwrap_err().to_string();
        assert!(
            e.starts_with("Could not find previous run in 'target' target directory"),
            "{e}"
        );
    }
}
