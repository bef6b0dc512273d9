//! weir-template: the Jinja environment for DAG templates, with Airflow's context and macros.
//!
//! Owns [`Renderer`] (a configured minijinja environment with strict undefined values),
//! [`TemplateContext`] (what a try of a task sees: `ds`, `ts`, data intervals, `params`,
//! `conf`, `var`, `ti.xcom_pull`, `macros`), and the datetime values that render and format
//! like Airflow's (pendulum) datetimes. Values equal Airflow's for the same dates, except `ds`
//! and `ds_nodash`, which are the logical date in the DAG's time zone.
//!
//! Must not know about the metadata database, files or processes: callers pass values in.

mod datetime;
mod objects;

pub use datetime::DateTime;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use minijinja::value::Value;
use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What one try of a task sees in its templates.
#[derive(Debug, Clone)]
pub struct TemplateContext {
    pub dag_id: String,
    pub task_id: String,
    pub run_id: String,
    pub try_number: u32,
    /// IANA name of the DAG's time zone.
    pub timezone: String,
    pub logical_date: Timestamp,
    pub data_interval_start: Timestamp,
    pub data_interval_end: Timestamp,
    /// For `prev_ds`; `None` renders as none.
    pub prev_logical_date: Option<Timestamp>,
    /// For `next_ds`; `None` renders as none.
    pub next_logical_date: Option<Timestamp>,
    /// Already merged: DAG params, then task params, then the run's conf.
    pub params: Map<String, Json>,
    pub conf: Map<String, Json>,
    /// `var.value.KEY` and `var.json.KEY`.
    pub variables: BTreeMap<String, String>,
    /// `conn.ID.host`, `.login`, `.password`, `.port`, `.schema`, `.extra_dejson`, ...
    pub connections: Map<String, Json>,
    /// `(task_id, key)` → value, for `ti.xcom_pull`; the default key is `return_value`.
    pub xcoms: Xcoms,
    /// Exposed as `task`.
    pub task: Json,
    /// Exposed as `dag`.
    pub dag: Json,
    /// `map_index`: the item's index in a mapped task, -1 otherwise.
    pub map_index: i64,
    /// `item`: the item of a mapped task's instance; undefined (an error) otherwise.
    pub item: Option<Json>,
    /// Exposed as `triggering_asset_events`: asset name -> the events an asset-triggered run
    /// consumed, oldest first, each `{asset, source_dag_id, source_run_id, source_task_id,
    /// source_map_index, timestamp, extra}`; empty for other runs.
    pub triggering_asset_events: Map<String, Json>,
}

/// What a task's template context needs of its run (a stored `dag_run` row).
pub struct RunFacts<'a> {
    pub run_id: &'a str,
    /// Micros since the epoch, as the store keeps them.
    pub logical_date: i64,
    pub data_interval_start: i64,
    pub data_interval_end: i64,
    pub conf: &'a Map<String, Json>,
}

/// The template context of `task` in a run, at try `try_number` (0: before any try, as
/// `map_over` renders): what `{{ ds }}` and friends see. No connections, not mapped, no
/// asset events: callers that have them set those fields.
pub fn task_context(
    dag: &weir_core::Dag,
    task: &weir_core::Task,
    run: RunFacts<'_>,
    try_number: u32,
    variables: BTreeMap<String, String>,
    xcoms: Xcoms,
) -> TemplateContext {
    use weir_core::{Timetable, timestamp};
    let logical_date = timestamp(run.logical_date);
    let (prev, next) = match Timetable::new(&dag.schedule, dag.tz()) {
        Ok(tt) if tt.is_periodic() => (
            Some(tt.manual_interval(logical_date).start),
            Some(timestamp(run.data_interval_end)),
        ),
        _ => (None, None),
    };
    let mut params = dag.params.clone();
    params.extend(task.params.clone());
    params.extend(run.conf.clone());
    TemplateContext {
        dag_id: dag.dag_id.clone(),
        task_id: task.task_id.clone(),
        run_id: run.run_id.to_string(),
        try_number,
        timezone: dag.timezone.clone(),
        logical_date,
        data_interval_start: timestamp(run.data_interval_start),
        data_interval_end: timestamp(run.data_interval_end),
        prev_logical_date: prev,
        next_logical_date: next,
        params,
        conf: run.conf.clone(),
        variables,
        connections: Map::new(),
        xcoms,
        task: serde_json::json!({
            "task_id": task.task_id, "task_type": task.task_type, "owner": dag.owner,
            "retries": task.retries, "queue": task.queue, "pool": task.pool,
        }),
        dag: serde_json::json!({
            "dag_id": dag.dag_id, "owner": dag.owner, "tags": dag.tags,
            "timezone": dag.timezone, "description": dag.description,
        }),
        map_index: -1,
        item: None,
        triggering_asset_events: Map::new(),
    }
}

/// A run's XComs as `ti.xcom_pull` reads them, by (task id, key), each kept as its stored
/// JSON text and parsed only when a template pulls it: a try reads its run's XComs before it
/// knows what its templates pull, and parsing them all made each of 10,000 mapped tries parse
/// the 10,000-item list they were mapped over. Shared, not copied, by every render of a try.
pub type Xcoms = std::sync::Arc<BTreeMap<(String, String), StoredXcom>>;

/// One entry of [`Xcoms`].
#[derive(Debug, Clone, PartialEq)]
pub enum StoredXcom {
    /// An unmapped task's value.
    One(String),
    /// A mapped task's values in `map_index` order, pulled as one list (as Airflow does).
    Mapped(Vec<String>),
}

impl StoredXcom {
    /// The value a pull gives.
    pub fn value(&self) -> Json {
        match self {
            StoredXcom::One(text) => weir_core::xcom_value(text),
            StoredXcom::Mapped(texts) => {
                Json::Array(texts.iter().map(|t| weir_core::xcom_value(t)).collect())
            }
        }
    }
}

/// [`Xcoms`] from `(task_id, map_index, key, text)` rows in `map_index` order.
pub fn pulled_xcoms(rows: Vec<(String, i64, String, String)>) -> Xcoms {
    let mut out: BTreeMap<(String, String), StoredXcom> = BTreeMap::new();
    for (task_id, map_index, key, text) in rows {
        let slot = (task_id, key);
        if map_index < 0 {
            out.insert(slot, StoredXcom::One(text));
        } else if let StoredXcom::Mapped(items) = out
            .entry(slot)
            .or_insert_with(|| StoredXcom::Mapped(Vec::new()))
        {
            items.push(text);
        }
    }
    std::sync::Arc::new(out)
}

/// Why a template could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot render template '{excerpt}': {detail}")]
    Render { excerpt: String, detail: String },
}

/// A configured Jinja environment; build once, render many.
pub struct Renderer {
    env: Environment<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::new()
    }
}

impl Renderer {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_global("macros", Value::from_object(objects::Macros));
        Renderer { env }
    }

    /// Renders one template string. Undefined names are errors.
    pub fn render_str(
        &self,
        template: &str,
        ctx: &TemplateContext,
    ) -> Result<String, TemplateError> {
        if !template.contains("{{") && !template.contains("{%") && !template.contains("{#") {
            return Ok(template.to_string());
        }
        self.env
            .render_str(template, context_value(ctx))
            .map_err(|e| TemplateError::Render {
                excerpt: excerpt(template),
                detail: describe(&e),
            })
    }

    /// Renders every string inside a JSON value (objects and arrays, recursively).
    pub fn render_value(&self, value: &Json, ctx: &TemplateContext) -> Result<Json, TemplateError> {
        Ok(match value {
            Json::String(s) => Json::String(self.render_str(s, ctx)?),
            Json::Array(items) => Json::Array(
                items
                    .iter()
                    .map(|v| self.render_value(v, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            Json::Object(map) => Json::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_value(v, ctx)?)))
                    .collect::<Result<_, TemplateError>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Renders a template to a JSON value: a template that is one expression
    /// (`{{ ti.xcom_pull(task_ids='a') }}`) gives that expression's value as it is (a list
    /// stays a list); anything else renders to text, read as JSON when it parses (so
    /// `{{ x | tojson }}` works too), else kept as a string.
    pub fn render_json(
        &self,
        template: &str,
        ctx: &TemplateContext,
    ) -> Result<Json, TemplateError> {
        let error = |e: minijinja::Error| TemplateError::Render {
            excerpt: excerpt(template),
            detail: describe(&e),
        };
        let trimmed = template.trim();
        let single = trimmed
            .strip_prefix("{{")
            .and_then(|t| t.strip_suffix("}}"))
            .filter(|inner| !inner.contains("{{") && !inner.contains("}}"));
        let value = match single {
            Some(expr) => {
                let value = self
                    .env
                    .compile_expression(expr.trim())
                    .and_then(|e| e.eval(context_value(ctx)))
                    .map_err(error)?;
                serde_json::to_value(&value).map_err(|e| TemplateError::Render {
                    excerpt: excerpt(template),
                    detail: format!("the value is not JSON: {e}"),
                })?
            }
            None => Json::String(self.render_str(template, ctx)?),
        };
        Ok(match value {
            Json::String(text) => serde_json::from_str(text.trim()).unwrap_or(Json::String(text)),
            other => other,
        })
    }

    /// The context as flat strings, for `WEIR_*` environment variables.
    pub fn context_strings(ctx: &TemplateContext) -> Vec<(&'static str, String)> {
        let t = Times::of(ctx);
        vec![
            ("ds", t.ds.clone()),
            ("ds_nodash", t.ds.replace('-', "")),
            ("ts", t.logical.isoformat()),
            ("ts_nodash", t.logical.ts_nodash()),
            ("logical_date", t.logical.to_string()),
            ("data_interval_start", t.start.to_string()),
            ("data_interval_end", t.end.to_string()),
            ("run_id", ctx.run_id.clone()),
            ("dag_id", ctx.dag_id.clone()),
            ("task_id", ctx.task_id.clone()),
            ("try_number", ctx.try_number.to_string()),
        ]
    }
}

/// Checks a template's syntax only: `Err((message, line within the template))`.
pub fn check_syntax(template: &str) -> Result<(), (String, u32)> {
    if !template.contains("{{") && !template.contains("{%") && !template.contains("{#") {
        return Ok(());
    }
    let env = Environment::new();
    match env.template_from_str(template) {
        Ok(_) => Ok(()),
        Err(e) => Err((describe(&e), e.line().unwrap_or(1) as u32)),
    }
}

/// minijinja's message without the "(in <string>:N)" suffix we do not need.
fn describe(e: &minijinja::Error) -> String {
    let mut text = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    if let Some(line) = e.line() {
        text.push_str(&format!(" (line {line})"));
    }
    text
}

fn excerpt(template: &str) -> String {
    let one_line = template.trim().replace('\n', " ");
    if one_line.chars().count() > 80 {
        format!("{}...", one_line.chars().take(77).collect::<String>())
    } else {
        one_line
    }
}

/// The datetimes of a context, computed once.
struct Times {
    tz: TimeZone,
    ds: String,
    logical: DateTime,
    start: DateTime,
    end: DateTime,
}

impl Times {
    fn of(ctx: &TemplateContext) -> Times {
        let tz = TimeZone::get(&ctx.timezone).unwrap_or(TimeZone::UTC);
        Times {
            ds: ds(ctx.logical_date, &tz),
            logical: DateTime::utc(ctx.logical_date),
            start: DateTime::utc(ctx.data_interval_start),
            end: DateTime::utc(ctx.data_interval_end),
            tz,
        }
    }
}

/// Any serde value as a template value.
pub(crate) fn ser<T: serde::Serialize>(value: &T) -> Value {
    Value::from(minijinja::value::Serde(value))
}

fn ds(ts: Timestamp, tz: &TimeZone) -> String {
    ts.to_zoned(tz.clone()).date().to_string()
}

fn optional_ds(ts: Option<Timestamp>, tz: &TimeZone, nodash: bool) -> Value {
    match ts {
        Some(t) if nodash => Value::from(ds(t, tz).replace('-', "")),
        Some(t) => Value::from(ds(t, tz)),
        None => Value::from(()),
    }
}

fn context_value(ctx: &TemplateContext) -> Value {
    let t = Times::of(ctx);
    let mut m: BTreeMap<&str, Value> = BTreeMap::new();
    m.insert("ds", Value::from(t.ds.clone()));
    m.insert("ds_nodash", Value::from(t.ds.replace('-', "")));
    m.insert("ts", Value::from(t.logical.isoformat()));
    m.insert("ts_nodash", Value::from(t.logical.ts_nodash()));
    m.insert(
        "ts_nodash_with_tz",
        Value::from(t.logical.ts_nodash_with_tz()),
    );
    m.insert("prev_ds", optional_ds(ctx.prev_logical_date, &t.tz, false));
    m.insert("next_ds", optional_ds(ctx.next_logical_date, &t.tz, false));
    m.insert(
        "prev_ds_nodash",
        optional_ds(ctx.prev_logical_date, &t.tz, true),
    );
    m.insert(
        "next_ds_nodash",
        optional_ds(ctx.next_logical_date, &t.tz, true),
    );
    m.insert("logical_date", Value::from_object(t.logical.clone()));
    m.insert("data_interval_start", Value::from_object(t.start));
    m.insert("data_interval_end", Value::from_object(t.end));
    m.insert("run_id", Value::from(ctx.run_id.clone()));
    m.insert("try_number", Value::from(ctx.try_number));
    m.insert("params", crate::ser(&ctx.params));
    m.insert("conf", crate::ser(&ctx.conf));
    m.insert("dag", crate::ser(&ctx.dag));
    m.insert("conn", crate::ser(&ctx.connections));
    m.insert("task", crate::ser(&ctx.task));
    m.insert("map_index", Value::from(ctx.map_index));
    if let Some(item) = &ctx.item {
        m.insert("item", crate::ser(item));
    }
    m.insert(
        "triggering_asset_events",
        crate::ser(&ctx.triggering_asset_events),
    );
    let mut dag_run: BTreeMap<&str, Value> = BTreeMap::new();
    dag_run.insert("conf", crate::ser(&ctx.conf));
    dag_run.insert("run_id", Value::from(ctx.run_id.clone()));
    dag_run.insert("logical_date", Value::from_object(t.logical));
    dag_run.insert("dag_id", Value::from(ctx.dag_id.clone()));
    m.insert("dag_run", Value::from(dag_run));
    m.insert(
        "ti",
        Value::from_object(objects::TaskInstance {
            task_id: ctx.task_id.clone(),
            dag_id: ctx.dag_id.clone(),
            run_id: ctx.run_id.clone(),
            try_number: ctx.try_number,
            xcoms: ctx.xcoms.clone(),
        }),
    );
    m.insert(
        "var",
        Value::from_object(objects::Variables(Arc::new(ctx.variables.clone()))),
    );
    Value::from(m)
}
