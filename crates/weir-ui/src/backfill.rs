//! The backfill form (`/dags/{dag_id}/backfill`): a date range in the DAG's zone and what to
//! do with intervals that already have a run; the backfill runs within the DAG's
//! `max_active_runs`, as `weir dags backfill` and the API's backfills do.

use crate::dags::DagHeader;
use crate::page::{Ctx, UiError, UiResult, dag_url, html, see_other};
use crate::session::Session;
use askama::Template;
use axum::extract::{Extension, Form, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use serde::Deserialize;
use weir_api::ApiState;
use weir_api::auth::Caller;
use weir_core::Dag;
use weir_service::Reprocess;

#[derive(Template)]
#[template(path = "backfill.html")]
struct BackfillPage {
    ctx: Ctx,
    header: DagHeader,
    from: String,
    to: String,
    reprocess: String,
    error: String,
}

pub async fn form(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    Path(dag_id): Path<String>,
) -> UiResult {
    let (row, dag) = state.dag(&dag_id).await?;
    let ctx = Ctx::new(&session).with_tz(&dag.timezone);
    html(&BackfillPage {
        header: DagHeader::new(&row, &dag, &ctx, "backfill"),
        ctx,
        from: String::new(),
        to: String::new(),
        reprocess: "none".into(),
        error: String::new(),
    })
}

#[derive(Deserialize)]
pub struct BackfillForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    reprocess: String,
}

/// A date (`2026-01-01`) or a date and time (`2026-01-01T06:00`) in the DAG's zone, or an
/// instant with an offset.
fn instant(dag: &Dag, field: &str, text: &str) -> Result<jiff::Timestamp, String> {
    let text = text.trim();
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    let civil = text
        .parse::<jiff::civil::DateTime>()
        .or_else(|_| {
            text.parse::<jiff::civil::Date>()
                .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
        })
        .map_err(|_| {
            format!("{field} '{text}' is not a date: write 2026-01-31 or 2026-01-31T06:00")
        })?;
    civil
        .to_zoned(dag.tz())
        .map(|z| z.timestamp())
        .map_err(|e| format!("{field} '{text}': {e}"))
}

pub async fn submit(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
    Extension(caller): Extension<Caller>,
    Path(dag_id): Path<String>,
    Form(form): Form<BackfillForm>,
) -> UiResult {
    let (row, dag) = state.dag(&dag_id).await?;
    let ctx = Ctx::new(&session).with_tz(&dag.timezone);
    let reprocess = match form.reprocess.as_str() {
        "failed" => Reprocess::Failed,
        "completed" => Reprocess::Completed,
        _ => Reprocess::None,
    };
    let result = async {
        let from = instant(&dag, "from", &form.from)?;
        let to = instant(&dag, "to", &form.to)?;
        state
            .services()
            .create_backfill(
                &caller.actor(),
                &dag,
                from,
                to,
                reprocess,
                Default::default(),
            )
            .await
            .map_err(|e| UiError::from(e).message)
    }
    .await;
    match result {
        Ok(_) => Ok(see_other(&format!("{}/grid", dag_url(&dag_id)))),
        Err(error) => {
            let page = BackfillPage {
                header: DagHeader::new(&row, &dag, &ctx, "backfill"),
                ctx,
                from: form.from,
                to: form.to,
                reprocess: reprocess.as_str().into(),
                error,
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(page.render()?)).into_response())
        }
    }
}
