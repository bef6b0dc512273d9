//! Errors in Airflow's shapes: `{"detail": "..."}` with the status, and FastAPI's 422
//! `{"detail": [{"type", "loc", "msg", "input"}]}` for requests that do not validate. Bodies,
//! queries and paths go through the extractors here, so that a malformed request is a 422,
//! never axum's plain-text rejection or a 500.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use weir_service::ServiceError;
use weir_store::StoreError;

/// A failed request, answered as Airflow answers it.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: Value,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: Value::String(detail.into()),
        }
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn conflict(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, detail)
    }

    /// A 422 in FastAPI's shape, for one location (`["body", "conf"]`, `["query", "limit"]`).
    pub fn validation(loc: &[&str], kind: &str, msg: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail: json!([{"type": kind, "loc": loc, "msg": msg.into(), "input": null}]),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, detail = %self.detail, "API error");
        }
        (self.status, axum::Json(json!({"detail": self.detail}))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        match e {
            ServiceError::NotFound { what, .. } => ApiError::not_found(format!("{what} not found")),
            ServiceError::Conflict(m) => ApiError::conflict(m),
            ServiceError::BadRequest { message, hint } => {
                ApiError::bad_request(format!("{message} ({hint})"))
            }
            ServiceError::Store(e) => e.into(),
        }
    }
}

/// A JSON body; anything that does not deserialize is a 422.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    match r {
        JsonRejection::JsonDataError(e) => {
            let msg = serde_message(&e.body_text());
            let kind = if msg.contains("unknown field") {
                "extra_forbidden"
            } else if msg.contains("missing field") {
                "missing"
            } else {
                "type_error"
            };
            ApiError::validation(&["body"], kind, msg)
        }
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::validation(&["body"], "json_invalid", serde_message(&e.body_text()))
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::validation(
            &["body"],
            "model_attributes_type",
            "Input should be a valid JSON object (send Content-Type: application/json)",
        ),
        other => ApiError::validation(&["body"], "value_error", other.body_text()),
    }
}

/// serde's message without axum's prefix ("Failed to deserialize the JSON body into the
/// target type: ").
fn serde_message(text: &str) -> String {
    match text.split_once(": ") {
        Some((_, rest)) => rest.to_string(),
        None => text.to_string(),
    }
}

/// Query parameters (a repeated key fills a list, as `?tags=a&tags=b`); bad ones are a 422.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        serde_html_form::from_str::<T>(query)
            .map(Query)
            .map_err(|e| ApiError::validation(&["query"], "value_error", e.to_string()))
    }
}

/// Path parameters; a value of the wrong type is a 422.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => Err(ApiError::validation(
                &["path"],
                "value_error",
                e.body_text(),
            )),
            Err(e) => Err(ApiError::validation(
                &["path"],
                "value_error",
                e.body_text(),
            )),
        }
    }
}
