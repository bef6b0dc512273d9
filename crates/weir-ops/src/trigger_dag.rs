//! `trigger_dag`: starts a run of another DAG with a templated `conf` and logical date, as
//! Airflow's `TriggerDagRunOperator`. Planning renders what to trigger into a [`Trigger`];
//! the worker creates the run through the service layer (it records this task instance as
//! the run's parent) and, with `wait_for_completion`, waits for it as a deferred sensor on
//! the run's state: no slot is held while the child runs.

use crate::sensor::{DEFAULT_POKE_INTERVAL, target_date};
use crate::{OpError, Operator, Plan, PlanContext};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Duration;

pub struct TriggerDag;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    dag_id: String,
    conf: Option<Map<String, Value>>,
    logical_date: Option<String>,
    wait_for_completion: Option<bool>,
    poke_interval: Option<Value>,
    allowed_states: Option<Vec<String>>,
    failed_states: Option<Vec<String>>,
    reset_dag_run: Option<bool>,
    skip_when_already_exists: Option<bool>,
}

/// A rendered `trigger_dag`.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub dag_id: String,
    pub conf: Map<String, Value>,
    /// `None`: now, as Airflow.
    pub logical_date: Option<Timestamp>,
    pub reset_dag_run: bool,
    pub skip_when_already_exists: bool,
    /// With `wait_for_completion`: how often to look, and which run states end the wait.
    pub wait: Option<TriggerWait>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TriggerWait {
    pub poke_interval: Duration,
    pub allowed: Vec<String>,
    pub failed: Vec<String>,
}

impl Operator for TriggerDag {
    fn name(&self) -> &'static str {
        "trigger_dag"
    }

    fn plan(&self, cx: &PlanContext<'_>) -> Result<Plan, OpError> {
        let c: Config = cx.config()?;
        let dag_id = cx.render(&c.dag_id)?.trim().to_string();
        let conf = match &c.conf {
            Some(conf) => match cx.render_value(&Value::Object(conf.clone()))? {
                Value::Object(map) => map,
                _ => Map::new(),
            },
            None => Map::new(),
        };
        let logical_date = c
            .logical_date
            .as_deref()
            .map(|text| target_date(cx, Some(text), None))
            .transpose()?;
        let wait = if c.wait_for_completion.unwrap_or(false) {
            let poke_interval = c
                .poke_interval
                .as_ref()
                .map(|v| {
                    weir_spec::values::duration(v)
                        .map_err(|e| cx.config_error(format!("poke_interval: {e}")))
                })
                .transpose()?
                .unwrap_or(DEFAULT_POKE_INTERVAL);
            Some(TriggerWait {
                poke_interval,
                allowed: c
                    .allowed_states
                    .unwrap_or_else(|| vec!["success".to_string()]),
                failed: c
                    .failed_states
                    .unwrap_or_else(|| vec!["failed".to_string()]),
            })
        } else {
            None
        };
        Ok(Plan::Trigger(Trigger {
            dag_id,
            conf,
            logical_date,
            reset_dag_run: c.reset_dag_run.unwrap_or(false),
            skip_when_already_exists: c.skip_when_already_exists.unwrap_or(false),
            wait,
        }))
    }
}
