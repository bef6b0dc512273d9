//! Every route, in one table with the role it needs. The router, the OpenAPI document and the
//! auth layer are all built from [`table`], so a route cannot exist without a role, and a test
//! can walk the table to check that none is left open.

use crate::auth::{self, Caller, Role};
use crate::error::ApiError;
use crate::{ApiState, dags, misc, runs, settings, tis};
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

/// The role each `(method, path pattern)` needs.
type Roles = Arc<HashMap<(Method, String), Role>>;

/// One route: the least role it needs, and its handler with its OpenAPI operation.
pub struct Route {
    pub role: Role,
    pub handler: UtoipaMethodRouter<ApiState>,
}

fn route(role: Role, handler: UtoipaMethodRouter<ApiState>) -> Route {
    Route { role, handler }
}

/// The API's routes. Reads are for viewers; changing runs and task instances is for ops;
/// variables, connections, pools and users are for admins (reading connections, too, though
/// their secrets are masked for everyone).
pub fn table() -> Vec<Route> {
    use Role::*;
    vec![
        route(Public, routes!(misc::health)),
        route(Public, routes!(misc::create_token)),
        route(Public, routes!(misc::openapi_json)),
        route(Viewer, routes!(misc::logout)),
        route(Public, routes!(misc::version)),
        route(Viewer, routes!(misc::metrics)),
        route(Viewer, routes!(dags::list_dags)),
        route(Viewer, routes!(dags::get_dag)),
        route(Op, routes!(dags::patch_dag)),
        route(Viewer, routes!(dags::get_dag_details)),
        route(Viewer, routes!(dags::list_tasks)),
        route(Viewer, routes!(dags::get_task)),
        route(Viewer, routes!(dags::list_dag_tags)),
        route(Viewer, routes!(runs::list_runs)),
        route(Op, routes!(runs::trigger_run)),
        route(Viewer, routes!(runs::get_run)),
        route(Op, routes!(runs::patch_run)),
        route(Op, routes!(runs::clear_run)),
        route(Viewer, routes!(tis::list_task_instances)),
        route(Viewer, routes!(tis::get_task_instance)),
        route(Op, routes!(tis::patch_task_instance)),
        route(Viewer, routes!(tis::get_mapped_task_instance)),
        route(Viewer, routes!(tis::get_log)),
        route(Viewer, routes!(tis::list_xcoms)),
        route(Viewer, routes!(tis::get_xcom)),
        route(Viewer, routes!(settings::list_variables)),
        route(Admin, routes!(settings::create_variable)),
        route(Viewer, routes!(settings::get_variable)),
        route(Admin, routes!(settings::patch_variable)),
        route(Admin, routes!(settings::delete_variable)),
        route(Viewer, routes!(settings::list_connections)),
        route(Admin, routes!(settings::create_connection)),
        route(Viewer, routes!(settings::get_connection)),
        route(Admin, routes!(settings::patch_connection)),
        route(Admin, routes!(settings::delete_connection)),
        route(Viewer, routes!(settings::list_pools)),
        route(Admin, routes!(settings::create_pool)),
        route(Viewer, routes!(settings::get_pool)),
        route(Admin, routes!(settings::patch_pool)),
        route(Admin, routes!(settings::delete_pool)),
        route(Viewer, routes!(misc::list_import_errors)),
        route(Viewer, routes!(misc::dag_stats)),
        route(Viewer, routes!(misc::list_event_logs)),
        route(Viewer, routes!(misc::list_backfills)),
        route(Op, routes!(misc::create_backfill)),
        route(Viewer, routes!(misc::get_backfill)),
    ]
}

/// `(method, path, role)` of every route in the table, for tests and the UI's checks.
pub fn route_list() -> Vec<(Method, String, Role)> {
    let mut out = Vec::new();
    for r in table() {
        for (path, item) in &r.handler.1.paths {
            for method in methods(item) {
                out.push((method, path.clone(), r.role));
            }
        }
    }
    out
}

fn methods(item: &utoipa::openapi::PathItem) -> Vec<Method> {
    [
        (&item.get, Method::GET),
        (&item.post, Method::POST),
        (&item.put, Method::PUT),
        (&item.patch, Method::PATCH),
        (&item.delete, Method::DELETE),
    ]
    .into_iter()
    .filter(|(op, _)| op.is_some())
    .map(|(_, m)| m)
    .collect()
}

/// The OpenAPI document of the table's routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    build(table()).1
}

fn build(table: Vec<Route>) -> (axum::Router<ApiState>, utoipa::openapi::OpenApi) {
    let mut router = OpenApiRouter::<ApiState>::new();
    for r in table {
        router = router.routes(r.handler);
    }
    let (router, mut doc) = router.split_for_parts();
    doc.info.title = "weir REST API (Airflow 3 compatible)".into();
    doc.info.version = "2".into();
    doc.info.description = Some(
        "The subset of Airflow 3's REST API that weir serves, with Airflow's field names, \
         status codes and error shapes."
            .into(),
    );
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "HTTPBearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    (router, doc)
}

pub(crate) fn router(state: ApiState) -> axum::Router {
    let roles: Roles = Arc::new(
        route_list()
            .into_iter()
            .map(|(m, p, r)| ((m, p), r))
            .collect(),
    );
    let (router, doc) = build(table());
    let _ = state
        .inner
        .openapi
        .set(serde_json::to_string(&doc).expect("the OpenAPI document serializes"));
    router
        .route_layer(axum::middleware::from_fn_with_state(
            (state.clone(), roles),
            authorize,
        ))
        .fallback(|| async { ApiError::not_found("Not Found") })
        .with_state(state)
}

/// Lets a request through when its route's role allows the caller: public routes always;
/// others need a valid bearer token (or the UI's session, which sets the same [`Caller`]).
async fn authorize(
    State((state, roles)): State<(ApiState, Roles)>,
    matched: Option<MatchedPath>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(path) = matched else {
        return ApiError::not_found("Not Found").into_response();
    };
    let method = if req.method() == Method::HEAD {
        Method::GET
    } else {
        req.method().clone()
    };
    let Some(&needed) = roles.get(&(method, path.as_str().to_string())) else {
        return ApiError::new(
            axum::http::StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed",
        )
        .into_response();
    };
    if needed == Role::Public {
        return next.run(req).await;
    }
    let caller = match req.extensions().get::<Caller>() {
        Some(c) => c.clone(),
        None => match auth::bearer(req.headers()) {
            Some(token) => match auth::caller_from_token(&state, token).await {
                Ok(c) => c,
                Err(e) => return e.into_response(),
            },
            None => return ApiError::unauthorized("Not authenticated").into_response(),
        },
    };
    if caller.role < needed {
        return ApiError::forbidden(format!(
            "Forbidden: this needs the {} role; {} has {}",
            needed.as_str(),
            caller.username,
            caller.role.as_str()
        ))
        .into_response();
    }
    req.extensions_mut().insert(caller);
    let changes = req.method() != Method::GET;
    let resp = next.run(req).await;
    if changes {
        // What this process just changed shows in its next listing and page at once.
        state.forget_pages();
    }
    resp
}
