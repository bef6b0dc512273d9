//! `python`: runs a Python file, or calls `module:function` and keeps its JSON-able return
//! value as the XCom, in a subprocess.

use crate::{OpError, Operator, Plan, PlanContext, ProcessSpec};
use serde::Deserialize;
use serde_json::{Map, Value};
use weir_spec::values::LineXcom;

/// The keys of a `python` task.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PythonConfig {
    /// A Python file relative to the project.
    pub script: Option<String>,
    /// `module:function`, imported with the project's `scripts/` and root on `PYTHONPATH`.
    pub callable: Option<String>,
    /// Positional arguments (templated strings) for the script's argv or the callable.
    #[serde(default)]
    pub args: Vec<Value>,
    /// Keyword arguments for the callable.
    #[serde(default)]
    pub kwargs: Map<String, Value>,
    /// The interpreter (default `python3`).
    pub interpreter: Option<String>,
    /// `last_line`: the last stdout line becomes the XCom value.
    pub xcom: Option<LineXcom>,
}

pub struct Python;

/// Calls the function and writes its return value as JSON to `$WEIR_XCOM`.
const CALL_SHIM: &str = r#"import importlib, json, os, sys
mod_name, func_name = sys.argv[1].split(":", 1)
args = json.loads(sys.argv[2]); kwargs = json.loads(sys.argv[3])
result = getattr(importlib.import_module(mod_name), func_name)(*args, **kwargs)
if result is not None:
    with open(os.environ["WEIR_XCOM"], "w") as f:
        json.dump(result, f)
"#;

impl Operator for Python {
    fn name(&self) -> &'static str {
        "python"
    }

    fn plan(&self, cx: &PlanContext<'_>) -> Result<Plan, OpError> {
        let config: PythonConfig = cx.config()?;
        let interpreter = config
            .interpreter
            .clone()
            .unwrap_or_else(|| "python3".into());
        let args = cx
            .renderer
            .render_value(&Value::Array(config.args.clone()), cx.template);
        let args = args.map_err(|source| OpError::Template {
            task: cx.task.task_id.clone(),
            source,
        })?;
        let kwargs = cx
            .renderer
            .render_value(&Value::Object(config.kwargs.clone()), cx.template);
        let kwargs = kwargs.map_err(|source| OpError::Template {
            task: cx.task.task_id.clone(),
            source,
        })?;
        let python_path = format!(
            "{}:{}",
            cx.project_dir.join("scripts").display(),
            cx.project_dir.display()
        );
        let mut env = vec![("PYTHONUNBUFFERED".to_string(), "1".to_string())];
        env.push((
            "PYTHONPATH".into(),
            match std::env::var("PYTHONPATH") {
                Ok(existing) if !existing.is_empty() => format!("{python_path}:{existing}"),
                _ => python_path,
            },
        ));
        let program_args = match (&config.callable, &config.script) {
            (Some(callable), _) => {
                if !callable.contains(':') {
                    return Err(OpError::Config {
                        task: cx.task.task_id.clone(),
                        message: format!("callable '{callable}' must look like module:function"),
                    });
                }
                vec![
                    "-c".into(),
                    CALL_SHIM.into(),
                    callable.clone(),
                    args.to_string(),
                    kwargs.to_string(),
                ]
            }
            (None, Some(script)) => {
                let mut v = vec![cx.project_dir.join(script).display().to_string()];
                if let Value::Array(items) = args {
                    v.extend(items.into_iter().map(|a| match a {
                        Value::String(s) => s,
                        other => other.to_string(),
                    }));
                }
                v
            }
            (None, None) => {
                return Err(OpError::Config {
                    task: cx.task.task_id.clone(),
                    message: "a python task needs 'script' or 'callable'".into(),
                });
            }
        };
        Ok(Plan::Process(ProcessSpec {
            program: interpreter,
            args: program_args,
            env,
            cwd: cx.project_dir.to_path_buf(),
            xcom: crate::shell::xcom_mode(config.xcom),
            skip_exit_code: Some(99),
        }))
    }
}
