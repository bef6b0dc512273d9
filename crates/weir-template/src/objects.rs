//! `ti`, `var` and `macros`: the objects of Airflow's template context.

use crate::datetime::DateTime;
use minijinja::value::{Kwargs, Object, Value, from_args};
use minijinja::{Error, ErrorKind, State};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// `ti`: `ti.xcom_pull(task_ids=..., key=...)`, `ti.task_id`, `ti.try_number`.
#[derive(Debug)]
pub struct TaskInstance {
    pub task_id: String,
    pub dag_id: String,
    pub run_id: String,
    pub try_number: u32,
    pub xcoms: crate::Xcoms,
}

impl TaskInstance {
    fn pull(&self, task_id: &str, key: &str) -> Value {
        match self.xcoms.get(&(task_id.to_string(), key.to_string())) {
            Some(v) => crate::ser(&v.value()),
            None => Value::from(()),
        }
    }
}

impl Object for TaskInstance {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "task_id" => Value::from(self.task_id.clone()),
            "dag_id" => Value::from(self.dag_id.clone()),
            "run_id" => Value::from(self.run_id.clone()),
            "try_number" => Value::from(self.try_number),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if method != "xcom_pull" {
            return Err(Error::from(ErrorKind::UnknownMethod));
        }
        let (positional, kwargs): (Option<Value>, Kwargs) = from_args(args)?;
        let task_ids: Option<Value> = match positional {
            Some(v) => Some(v),
            None => kwargs.get::<Option<Value>>("task_ids")?,
        };
        let key: Option<String> = kwargs.get("key")?;
        kwargs.assert_all_used()?;
        let key = key.unwrap_or_else(|| "return_value".into());
        let task_ids = task_ids.unwrap_or_else(|| Value::from(self.task_id.clone()));
        if let Some(id) = task_ids.as_str() {
            return Ok(self.pull(id, &key));
        }
        let ids = task_ids.try_iter().map_err(|_| {
            Error::new(
                ErrorKind::InvalidOperation,
                "xcom_pull: task_ids must be a task id or a list of them",
            )
        })?;
        Ok(Value::from(
            ids.map(|id| self.pull(id.as_str().unwrap_or_default(), &key))
                .collect::<Vec<_>>(),
        ))
    }
}

/// `var`: `var.value.KEY`, `var.value.get('KEY', default)`, `var.json.KEY`.
#[derive(Debug)]
pub struct Variables(pub Arc<BTreeMap<String, String>>);

impl Object for Variables {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "value" => Some(Value::from_object(VariableAccess {
                vars: self.0.clone(),
                json: false,
            })),
            "json" => Some(Value::from_object(VariableAccess {
                vars: self.0.clone(),
                json: true,
            })),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct VariableAccess {
    vars: Arc<BTreeMap<String, String>>,
    json: bool,
}

impl VariableAccess {
    fn lookup(&self, key: &str) -> Result<Option<Value>, Error> {
        let Some(text) = self.vars.get(key) else {
            return Ok(None);
        };
        if !self.json {
            return Ok(Some(Value::from(text.clone())));
        }
        let parsed: Json = serde_json::from_str(text).map_err(|e| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("variable '{key}' is not valid JSON: {e}"),
            )
        })?;
        Ok(Some(crate::ser(&parsed)))
    }
}

impl Object for VariableAccess {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.lookup(key.as_str()?).ok().flatten()
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if method != "get" {
            return Err(Error::from(ErrorKind::UnknownMethod));
        }
        let (key, default): (&str, Option<Value>) = from_args(args)?;
        match self.lookup(key)? {
            Some(v) => Ok(v),
            None => default.ok_or_else(|| {
                Error::new(
                    ErrorKind::UndefinedError,
                    format!("variable '{key}' does not exist"),
                )
            }),
        }
    }
}

/// `macros`: `ds_add`, `ds_format`, `datetime`, `timedelta`.
#[derive(Debug)]
pub struct Macros;

fn parse_ds(ds: &str) -> Result<jiff::civil::Date, Error> {
    ds.parse().map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("'{ds}' is not a YYYY-MM-DD date"),
        )
    })
}

impl Object for Macros {
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "ds_add" => {
                let (ds, days): (&str, i64) = from_args(args)?;
                let date = parse_ds(ds)?
                    .checked_add(jiff::Span::new().days(days))
                    .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
                Ok(Value::from(date.to_string()))
            }
            "ds_format" => {
                let (ds, input, output): (&str, &str, &str) = from_args(args)?;
                let parsed = jiff::fmt::strtime::parse(input, ds)
                    .and_then(|p| p.to_date())
                    .map_err(|e| {
                        Error::new(
                            ErrorKind::InvalidOperation,
                            format!("'{ds}' does not match '{input}': {e}"),
                        )
                    })?;
                jiff::fmt::strtime::format(output, parsed)
                    .map(Value::from)
                    .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
            }
            "datetime" => {
                let parts = args
                    .iter()
                    .map(|v| i64::try_from(v.clone()))
                    .collect::<Result<Vec<i64>, _>>()?;
                if !(3..=6).contains(&parts.len()) {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "macros.datetime(year, month, day[, hour, minute, second])",
                    ));
                }
                let part = |i: usize| parts.get(i).copied().unwrap_or(0);
                let civil = jiff::civil::DateTime::new(
                    part(0) as i16,
                    part(1) as i8,
                    part(2) as i8,
                    part(3) as i8,
                    part(4) as i8,
                    part(5) as i8,
                    0,
                )
                .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
                let zoned = civil
                    .to_zoned(jiff::tz::TimeZone::UTC)
                    .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
                Ok(Value::from_object(DateTime(zoned)))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}
