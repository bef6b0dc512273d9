//! What every page shares: the header's context, errors as HTML pages, times, links.

use crate::session::Session;
use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::fmt;

/// The header's context: who is logged in, the CSRF token for forms and htmx, what they may do.
#[derive(Clone, Default)]
pub struct Ctx {
    pub user: String,
    pub role: &'static str,
    pub csrf: String,
    pub can_op: bool,
    /// The IANA zone of the DAG a page is about, for the time-zone switch.
    pub dag_tz: String,
    pub assets: &'static str,
}

impl Ctx {
    pub fn new(session: &Session) -> Ctx {
        Ctx {
            user: session.caller.username.clone(),
            role: session.caller.role.as_str(),
            csrf: session.csrf.clone(),
            can_op: session.caller.role >= weir_api::Role::Op,
            dag_tz: String::new(),
            assets: crate::assets::version(),
        }
    }

    /// For pages without a session (login, errors before login).
    pub fn anonymous() -> Ctx {
        Ctx {
            assets: crate::assets::version(),
            ..Ctx::default()
        }
    }

    pub fn with_tz(mut self, tz: &str) -> Ctx {
        self.dag_tz = tz.to_string();
        self
    }
}

/// A page that failed: rendered as an HTML page with its status.
#[derive(Debug)]
pub struct UiError {
    pub status: StatusCode,
    pub message: String,
}

pub type UiResult<T = Response> = Result<T, UiError>;

impl UiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> UiError {
        UiError {
            status,
            message: message.into(),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    ctx: Ctx,
    status: StatusCode,
    message: &'a str,
}

impl IntoResponse for UiError {
    /// A page without the user's header; the session guard renders it again with the header
    /// (it finds the error in the response's extensions).
    fn into_response(self) -> Response {
        let mut resp = error_page(self.status, &self.message, Ctx::anonymous());
        resp.extensions_mut().insert(Failed(self.message));
        resp
    }
}

/// The message of a [`UiError`] a handler answered with.
#[derive(Clone)]
pub struct Failed(pub String);

/// An error page with the header of `ctx`.
pub fn error_page(status: StatusCode, message: &str, ctx: Ctx) -> Response {
    let page = ErrorPage {
        ctx,
        status,
        message,
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (status, message.to_string()).into_response(),
    }
}

impl From<weir_api::ApiError> for UiError {
    fn from(e: weir_api::ApiError) -> UiError {
        let message = match &e.detail {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        UiError::new(e.status, message)
    }
}

impl From<weir_store::StoreError> for UiError {
    fn from(e: weir_store::StoreError) -> UiError {
        UiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl From<weir_service::ServiceError> for UiError {
    fn from(e: weir_service::ServiceError) -> UiError {
        weir_api::ApiError::from(e).into()
    }
}

impl From<askama::Error> for UiError {
    fn from(e: askama::Error) -> UiError {
        UiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render the page: {e}"),
        )
    }
}

/// Renders a template as a 200 page.
pub fn html(t: &impl Template) -> UiResult {
    Ok(Html(t.render()?).into_response())
}

/// An instant in the UTC text the page shows first, with its ISO form for the time-zone
/// switch (`static/weir.js`). Made by weir from a number, never from user text, so it is
/// written into the page as is.
#[derive(Clone, Debug)]
pub struct Time {
    iso: String,
    text: String,
}

impl Time {
    pub fn new(us: i64) -> Time {
        let ts = weir_core::timestamp(us);
        Time {
            iso: weir_core::iso(ts),
            text: ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        }
    }

    pub fn opt(us: Option<i64>) -> Option<Time> {
        us.map(Time::new)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<time datetime=\"{}\">{}</time>", self.iso, self.text)
    }
}

impl askama::filters::HtmlSafe for Time {}

/// A duration for people: `4.2 s`, `3 min 12 s`, `2 h 5 min`.
pub fn duration(start: Option<i64>, end: Option<i64>) -> String {
    let (Some(s), Some(e)) = (start, end) else {
        return String::new();
    };
    let secs = (e - s).max(0) as f64 / 1e6;
    if secs < 60.0 {
        format!("{secs:.1} s")
    } else if secs < 3600.0 {
        format!("{} min {} s", (secs / 60.0) as u64, (secs % 60.0) as u64)
    } else {
        format!(
            "{} h {} min",
            (secs / 3600.0) as u64,
            ((secs % 3600.0) / 60.0) as u64
        )
    }
}

const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One path segment, percent-encoded (run ids hold `:` and `+`).
pub fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// `/dags/<dag>`.
pub fn dag_url(dag_id: &str) -> String {
    format!("/dags/{}", seg(dag_id))
}

/// `/dags/<dag>/runs/<run>`.
pub fn run_url(dag_id: &str, run_id: &str) -> String {
    format!("{}/runs/{}", dag_url(dag_id), seg(run_id))
}

/// `/dags/<dag>/runs/<run>/tasks/<task>` (with `?map_index=` for an item of a mapped task).
pub fn ti_url(dag_id: &str, run_id: &str, task_id: &str, map_index: i64) -> String {
    ti_url_of(&run_url(dag_id, run_id), &seg(task_id), map_index)
}

/// [`ti_url`] from its run's URL and its task's encoded segment, for pages that build many
/// (the grid encodes each run and task once).
pub fn ti_url_of(run_url: &str, task_seg: &str, map_index: i64) -> String {
    if map_index >= 0 {
        format!("{run_url}/tasks/{task_seg}?map_index={map_index}")
    } else {
        format!("{run_url}/tasks/{task_seg}")
    }
}

/// A page the UI redirects to after a form: 303 so that the browser GETs it.
pub fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(axum::http::header::LOCATION, location.to_string())],
    )
        .into_response()
}
