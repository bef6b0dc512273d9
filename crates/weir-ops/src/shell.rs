//! `shell`: runs a bash command (or a script file, rendered as a template) in its own process
//! group. Exit code 99 marks the task skipped, as Airflow's bash operator does.

use crate::{OpError, Operator, Plan, PlanContext, ProcessSpec, XcomMode};
use serde::Deserialize;
use weir_spec::values::LineXcom;

/// The keys of a `shell` task.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShellConfig {
    /// Inline bash, templated.
    pub command: Option<String>,
    /// A script file relative to the project, templated.
    pub script: Option<String>,
    /// Working directory relative to the project (default: the project root).
    pub cwd: Option<String>,
    /// `last_line`: the last stdout line becomes the XCom value.
    pub xcom: Option<LineXcom>,
}

pub struct Shell;

impl Operator for Shell {
    fn name(&self) -> &'static str {
        "shell"
    }

    fn plan(&self, cx: &PlanContext<'_>) -> Result<Plan, OpError> {
        let config: ShellConfig = cx.config()?;
        let script = match (&config.command, &config.script) {
            (Some(command), _) => cx.render(command)?,
            (None, Some(path)) => cx.render_file(path)?,
            (None, None) => {
                return Err(OpError::Config {
                    task: cx.task.task_id.clone(),
                    message: "a shell task needs 'command' or 'script'".into(),
                });
            }
        };
        let cwd = match &config.cwd {
            Some(dir) => cx.project_dir.join(cx.render(dir)?),
            None => cx.project_dir.to_path_buf(),
        };
        Ok(Plan::Process(ProcessSpec {
            program: "bash".into(),
            args: vec!["-c".into(), script],
            env: Vec::new(),
            cwd,
            xcom: xcom_mode(config.xcom),
            skip_exit_code: Some(99),
        }))
    }
}

/// The declared `xcom` value (validation already refused any other) as the worker's mode.
pub(crate) fn xcom_mode(xcom: Option<LineXcom>) -> XcomMode {
    match xcom {
        None | Some(LineXcom::File) => XcomMode::File,
        Some(LineXcom::LastLine) => XcomMode::LastLine,
    }
}
