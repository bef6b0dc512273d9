//! The trigger form (`/dags/{dag_id}/trigger`): a conf prefilled from the DAG's params,
//! checked (JSON, an object, known params) before the run is created through the services.

use crate::dags::DagHeader;
use crate::page::{Ctx, UiError, UiResult, dag_url, html, see_other};
use crate::session::Session;
use askama::Template;
use axum::extract::{Extension, Form, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use serde::Deserialize;
use serde_json::{Map, Value};
use weir_api::ApiState;
use weir_api::auth::Caller;
use weir_core::Dag;
use weir_store::DagRow;

#[derive(Template)]
#[template(path = "trigger.html")]
struct TriggerPage {
    ctx: Ctx,
    header: DagHeader,
    paused: bool,
    conf: String,
    error: String,
    params: Vec<(String, String)>,
}

fn trigger_page(row: &DagRow, dag: &Dag, ctx: Ctx, conf: String, error: String) -> TriggerPage {
    TriggerPage {
        header: DagHeader::new(row, dag, &ctx, "trigger"),
        paused: row.is_paused,
        ctx,
        conf,
        error,
        params: dag
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
    }
}

pub async fn form(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    Path(dag_id): Path<String>,
) -> UiResult {
    let (row, dag) = state.dag(&dag_id).await?;
    let ctx = Ctx::new(&session).with_tz(&dag.timezone);
    let conf = serde_json::to_string_pretty(&Value::Object(dag.params.clone()))
        .unwrap_or_else(|_| "{}".into());
    html(&trigger_page(&row, &dag, ctx, conf, String::new()))
}

#[derive(Deserialize)]
pub struct TriggerForm {
    #[serde(default)]
    conf: String,
}

/// The conf a user typed, or why it cannot be one: a JSON object whose keys are params of the
/// DAG (any keys when the DAG declares no params).
pub fn parse_conf(dag: &Dag, text: &str) -> Result<Map<String, Value>, String> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("the conf is not valid JSON: {e}"))?;
    let Value::Object(conf) = value else {
        return Err("the conf must be a JSON object, such as {\"country\": \"KR\"}".into());
    };
    if !dag.params.is_empty() {
        let unknown: Vec<&str> = conf
            .keys()
            .filter(|k| !dag.params.contains_key(*k))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            let known: Vec<&str> = dag.params.keys().map(String::as_str).collect();
            return Err(format!(
                "unknown param{} {} for DAG '{}' (its params are: {})",
                if unknown.len() == 1 { "" } else { "s" },
                unknown
                    .iter()
                    .map(|k| format!("'{k}'"))
                    .collect::<Vec<_>>()
                    .join(", "),
                dag.dag_id,
                known.join(", ")
            ));
        }
    }
    Ok(conf)
}

pub async fn submit(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    Extension(caller): Extension<Caller>,
    Path(dag_id): Path<String>,
    Form(form): Form<TriggerForm>,
) -> UiResult {
    let (row, dag) = state.dag(&dag_id).await?;
    let ctx = Ctx::new(&session).with_tz(&dag.timezone);
    let result = match parse_conf(&dag, &form.conf) {
        Ok(conf) => state
            .services()
            .trigger(&caller.actor(), &dag, None, conf, None)
            .await
            .map_err(|e| UiError::from(e).message),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(see_other(&format!("{}/grid", dag_url(&dag_id)))),
        Err(error) => {
            let page = trigger_page(&row, &dag, ctx, form.conf, error);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(page.render()?)).into_response())
        }
    }
}
