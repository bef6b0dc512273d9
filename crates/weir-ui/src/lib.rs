//! weir-ui: the web UI, server-rendered HTML (askama templates, htmx for live fragments and
//! small actions, vendored `static/htmx.min.js`, no build step). It serves the DAG list, the
//! grid of runs × tasks, the graph, run and task-instance pages with live logs, and the
//! settings pages, on the same port and [`weir_api::ApiState`] as the REST API.
//!
//! Key items: [`table`] (every route with the role it needs: the one place a route is
//! declared; the router and the tests walk it), `session` (the `weir_session` cookie, the JWT
//! the API issues, and CSRF tokens), `graph_layout` (the layered layout of the graph view).
//!
//! Architecture invariant: reads go through the store and `ApiState`; every change goes
//! through `weir-service` (`state.services()`) with the logged-in user as the actor, so the
//! audit log records who did it. User data is escaped by askama; nothing user-written is ever
//! marked safe.

mod admin;
mod assets;
mod backfill;
mod dags;
mod drawing;
mod graph;
pub mod graph_layout;
mod grid;
mod models;
mod page;
mod runs;
mod session;
mod task;
mod trigger;

use axum::http::Method;
use axum::routing::{MethodRouter, get, post};
use weir_api::{ApiState, Role};

/// The name of the session cookie: the JWT that `weir_api::auth::issue_token` signs.
pub const SESSION_COOKIE: &str = "weir_session";

/// One route of the UI and the least role it needs.
pub struct UiRoute {
    pub method: Method,
    pub path: &'static str,
    pub role: Role,
    handler: MethodRouter<ApiState>,
}

fn route(
    method: Method,
    path: &'static str,
    role: Role,
    handler: MethodRouter<ApiState>,
) -> UiRoute {
    UiRoute {
        method,
        path,
        role,
        handler,
    }
}

/// The path of a task instance's page, with a suffix.
macro_rules! ti {
    ($suffix:literal) => {
        concat!("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}", $suffix)
    };
}

/// Every route of the UI. Pages are for viewers; what changes runs, task instances or a DAG's
/// pause flag is for ops; the login page and static files are public.
pub fn table() -> Vec<UiRoute> {
    use Role::*;
    const GET: Method = Method::GET;
    const POST: Method = Method::POST;
    vec![
        route(GET, "/login", Public, get(session::login_page)),
        route(POST, "/login", Public, post(session::login)),
        route(POST, "/logout", Viewer, post(session::logout)),
        route(GET, "/static/{file}", Public, get(assets::serve)),
        route(GET, "/", Viewer, get(dags::list)),
        route(POST, "/dags/{dag_id}/pause", Op, post(dags::pause)),
        route(GET, "/dags/{dag_id}/grid", Viewer, get(grid::page)),
        route(GET, "/dags/{dag_id}/grid/cells", Viewer, get(grid::cells)),
        route(GET, "/dags/{dag_id}/trigger", Op, get(trigger::form)),
        route(POST, "/dags/{dag_id}/trigger", Op, post(trigger::submit)),
        route(GET, "/dags/{dag_id}/graph", Viewer, get(graph::page)),
        route(GET, "/dags/{dag_id}/backfill", Op, get(backfill::form)),
        route(POST, "/dags/{dag_id}/backfill", Op, post(backfill::submit)),
        route(GET, "/runs", Viewer, get(runs::list)),
        route(GET, "/dags/{dag_id}/runs/{run_id}", Viewer, get(runs::page)),
        route(
            POST,
            "/dags/{dag_id}/runs/{run_id}/clear",
            Op,
            post(runs::clear),
        ),
        route(GET, ti!(""), Viewer, get(task::page)),
        route(GET, ti!("/live"), Viewer, get(task::live)),
        route(POST, ti!("/clear"), Op, post(task::clear)),
        route(POST, ti!("/mark"), Op, post(task::mark)),
        route(GET, "/models", Viewer, get(models::list)),
        route(GET, "/models/node", Viewer, get(models::node)),
        route(GET, "/variables", Viewer, get(admin::variables)),
        route(GET, "/connections", Viewer, get(admin::connections)),
        route(GET, "/pools", Viewer, get(admin::pools)),
        route(GET, "/audit", Viewer, get(admin::audit)),
        route(GET, "/users", Admin, get(admin::users)),
    ]
}

/// `(method, path, role)` of every UI route, for tests and documentation.
pub fn route_list() -> Vec<(Method, &'static str, Role)> {
    table()
        .into_iter()
        .map(|r| (r.method, r.path, r.role))
        .collect()
}

/// The UI's router, built from [`table`]: each route behind the session guard with its role.
/// It has no fallback, so that it merges with `weir_api::router`, whose fallback answers
/// unknown paths.
pub fn router(state: ApiState) -> axum::Router {
    let mut router = axum::Router::new();
    for r in table() {
        let guard = axum::middleware::from_fn_with_state((state.clone(), r.role), session::guard);
        router = router.route(r.path, r.handler.route_layer(guard));
    }
    router.with_state(state)
}
