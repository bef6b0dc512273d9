//! The settings pages, read only: variables (values of secret-looking keys masked),
//! connections (`Connection::masked`: passwords and secret extras never leave the server),
//! pools with their use, and the audit log.

use crate::page::{Ctx, Time, UiResult, html};
use crate::session::Session;
use askama::Template;
use axum::extract::{Extension, State};
use weir_api::ApiState;

#[derive(Template)]
#[template(path = "variables.html")]
struct VariablesPage {
    ctx: Ctx,
    variables: Vec<(String, String, String)>,
}

pub async fn variables(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
) -> UiResult {
    let variables = state
        .store()
        .list_variables()
        .await?
        .into_iter()
        .map(|v| {
            let value = if weir_core::connection::is_secret_key(&v.key) {
                "***".to_string()
            } else {
                v.val
            };
            (v.key, value, v.description.unwrap_or_default())
        })
        .collect();
    html(&VariablesPage {
        ctx: Ctx::new(&session),
        variables,
    })
}

pub struct ConnItem {
    pub conn_id: String,
    pub conn_type: String,
    pub host: String,
    pub port: String,
    pub schema: String,
    pub login: String,
    pub password: String,
    pub extra: String,
}

#[derive(Template)]
#[template(path = "connections.html")]
struct ConnectionsPage {
    ctx: Ctx,
    connections: Vec<ConnItem>,
}

pub async fn connections(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
) -> UiResult {
    let connections = state
        .store()
        .list_connections()
        .await?
        .iter()
        .map(|c| {
            let c = c.masked();
            ConnItem {
                conn_id: c.conn_id,
                conn_type: c.conn_type,
                host: c.host.unwrap_or_default(),
                port: c.port.map(|p| p.to_string()).unwrap_or_default(),
                schema: c.schema.unwrap_or_default(),
                login: c.login.unwrap_or_default(),
                password: c.password.unwrap_or_default(),
                extra: if c.extra.is_empty() {
                    String::new()
                } else {
                    serde_json::Value::Object(c.extra).to_string()
                },
            }
        })
        .collect();
    html(&ConnectionsPage {
        ctx: Ctx::new(&session),
        connections,
    })
}

#[derive(Template)]
#[template(path = "pools.html")]
struct PoolsPage {
    ctx: Ctx,
    pools: Vec<(String, i64, i64)>,
}

pub async fn pools(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
) -> UiResult {
    let used = state.store().pool_usage().await?;
    let pools = state
        .store()
        .pools()
        .await?
        .into_iter()
        .map(|(name, slots)| {
            let in_use = used.iter().find(|(n, _)| *n == name).map_or(0, |(_, u)| *u);
            (name, slots, in_use)
        })
        .collect();
    html(&PoolsPage {
        ctx: Ctx::new(&session),
        pools,
    })
}

pub struct EventItem {
    pub when: Time,
    pub event: String,
    pub owner: String,
    pub dag_id: String,
    pub run_id: String,
    pub task_id: String,
    pub extra: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    ctx: Ctx,
    events: Vec<EventItem>,
}

/// How many audit events the page lists, newest first.
const AUDIT_EVENTS: i64 = 200;

pub async fn audit(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
) -> UiResult {
    let events = state
        .store()
        .event_log(AUDIT_EVENTS)
        .await?
        .into_iter()
        .map(|e| EventItem {
            when: Time::new(e.dttm),
            event: e.event,
            owner: e.owner,
            dag_id: e.dag_id.unwrap_or_default(),
            run_id: e.run_id.unwrap_or_default(),
            task_id: e.task_id.unwrap_or_default(),
            extra: e.extra.unwrap_or_default(),
        })
        .collect();
    html(&AuditPage {
        ctx: Ctx::new(&session),
        events,
    })
}

pub struct UserItem {
    pub username: String,
    pub role: String,
    pub created: Time,
    pub last_login: Option<Time>,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    ctx: Ctx,
    users: Vec<UserItem>,
}

/// `/users` (admins): who may log in, with their roles; `weir users` changes them.
pub async fn users(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
) -> UiResult {
    let users = state
        .store()
        .list_users()
        .await?
        .into_iter()
        .map(|u| UserItem {
            username: u.username,
            role: u.role,
            created: Time::new(u.created_at),
            last_login: u.last_login.map(Time::new),
        })
        .collect();
    html(&UsersPage {
        ctx: Ctx::new(&session),
        users,
    })
}
