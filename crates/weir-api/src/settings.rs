//! `/variables`, `/connections` and `/pools`. Secrets never leave the server: connection
//! passwords and secret-looking extra keys are `***`, and so are values of variables whose key
//! looks secret (`*password*`, `*token*`, ...), as Airflow masks them.

use crate::ApiState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Body, Path, Query};
use crate::model::*;
use crate::page::page;
use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::IntoParams;
use weir_core::connection::{Connection, is_secret_key};
use weir_store::VariableRow;

const MASK: &str = "***";

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    pub limit: Option<usize>,
    pub offset: Option<usize>,
    #[serde(default)]
    pub order_by: Vec<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UpdateMask {
    /// Only these fields of the body are applied.
    pub update_mask: Option<Vec<String>>,
}

fn variable_response(v: VariableRow) -> VariableResponse {
    let secret = is_secret_key(&v.key);
    VariableResponse {
        value: Some(if secret { MASK.to_string() } else { v.val }),
        key: v.key,
        description: v.description,
        is_encrypted: v.is_encrypted,
        team_name: None,
    }
}

fn variable_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// List variables.
#[utoipa::path(get, path = "/api/v2/variables", tag = "Variable", params(ListParams),
    responses((status = 200, body = VariableCollectionResponse)))]
pub async fn list_variables(
    State(state): State<ApiState>,
    Query(q): Query<ListParams>,
) -> ApiResult<Json<VariableCollectionResponse>> {
    let all: Vec<VariableResponse> = state
        .store()
        .list_variables()
        .await?
        .into_iter()
        .map(variable_response)
        .collect();
    let (variables, total_entries) = page(
        all,
        q.limit,
        q.offset,
        &q.order_by,
        state.config().max_page_limit,
    )?;
    Ok(Json(VariableCollectionResponse {
        variables,
        total_entries,
    }))
}

/// Create a variable; 409 when the key exists.
#[utoipa::path(post, path = "/api/v2/variables", tag = "Variable", request_body = VariableBody,
    responses((status = 201, body = VariableResponse), (status = 409)))]
pub async fn create_variable(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Body(body): Body<VariableBody>,
) -> ApiResult<(StatusCode, Json<VariableResponse>)> {
    if body.key.trim().is_empty() {
        return Err(ApiError::validation(
            &["body", "key"],
            "string_too_short",
            "the key is empty",
        ));
    }
    if state.store().get_variable(&body.key).await?.is_some() {
        return Err(ApiError::conflict(format!(
            "The Variable with key: `{}` already exists",
            body.key
        )));
    }
    let row = VariableRow {
        key: body.key.clone(),
        val: variable_value(&body.value),
        description: body.description,
        is_encrypted: false,
    };
    state.services().set_variable(&caller.actor(), &row).await?;
    let stored = state.store().get_variable(&body.key).await?.unwrap_or(row);
    Ok((StatusCode::CREATED, Json(variable_response(stored))))
}

async fn variable(state: &ApiState, key: &str) -> ApiResult<VariableRow> {
    state
        .store()
        .get_variable(key)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("The Variable with key: `{key}` was not found")))
}

/// Get a variable.
#[utoipa::path(get, path = "/api/v2/variables/{variable_key}", tag = "Variable",
    params(("variable_key" = String, Path)),
    responses((status = 200, body = VariableResponse), (status = 404)))]
pub async fn get_variable(
    State(state): State<ApiState>,
    Path(key): Path<String>,
) -> ApiResult<Json<VariableResponse>> {
    Ok(Json(variable_response(variable(&state, &key).await?)))
}

/// Update a variable.
#[utoipa::path(patch, path = "/api/v2/variables/{variable_key}", tag = "Variable",
    params(("variable_key" = String, Path), UpdateMask), request_body = VariableBody,
    responses((status = 200, body = VariableResponse), (status = 400), (status = 404)))]
pub async fn patch_variable(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    Query(mask): Query<UpdateMask>,
    Body(body): Body<VariableBody>,
) -> ApiResult<Json<VariableResponse>> {
    if body.key != key {
        return Err(ApiError::bad_request(format!(
            "Invalid body, key from request body doesn't match uri parameter: `{}` != `{key}`",
            body.key
        )));
    }
    let mut row = variable(&state, &key).await?;
    let fields = mask
        .update_mask
        .unwrap_or_else(|| vec!["value".into(), "description".into()]);
    for f in &fields {
        match f.as_str() {
            "value" => row.val = variable_value(&body.value),
            "description" => row.description = body.description.clone(),
            other => {
                return Err(ApiError::bad_request(format!(
                    "Invalid field `{other}` in update mask"
                )));
            }
        }
    }
    state.services().set_variable(&caller.actor(), &row).await?;
    Ok(Json(variable_response(variable(&state, &key).await?)))
}

/// Delete a variable.
#[utoipa::path(delete, path = "/api/v2/variables/{variable_key}", tag = "Variable",
    params(("variable_key" = String, Path)),
    responses((status = 204), (status = 404)))]
pub async fn delete_variable(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    if state
        .services()
        .delete_variable(&caller.actor(), &key)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "The Variable with key: `{key}` was not found"
        )))
    }
}

pub(crate) fn connection_response(c: &Connection) -> ConnectionResponse {
    let c = c.masked();
    ConnectionResponse {
        connection_id: c.conn_id,
        conn_type: c.conn_type,
        description: c.description,
        host: c.host,
        login: c.login,
        schema: c.schema,
        port: c.port.map(i64::from),
        password: c.password,
        extra: (!c.extra.is_empty()).then(|| Value::Object(c.extra).to_string()),
        team_name: None,
    }
}

/// List connections (secrets masked).
#[utoipa::path(get, path = "/api/v2/connections", tag = "Connection", params(ListParams),
    responses((status = 200, body = ConnectionCollectionResponse)))]
pub async fn list_connections(
    State(state): State<ApiState>,
    Query(q): Query<ListParams>,
) -> ApiResult<Json<ConnectionCollectionResponse>> {
    let all: Vec<ConnectionResponse> = state
        .store()
        .list_connections()
        .await?
        .iter()
        .map(connection_response)
        .collect();
    let (connections, total_entries) = page(
        all,
        q.limit,
        q.offset,
        &q.order_by,
        state.config().max_page_limit,
    )?;
    Ok(Json(ConnectionCollectionResponse {
        connections,
        total_entries,
    }))
}

fn extra_map(extra: Option<&str>) -> ApiResult<Map<String, Value>> {
    match extra.map(str::trim).filter(|e| !e.is_empty()) {
        None => Ok(Map::new()),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(ApiError::validation(
                &["body", "extra"],
                "value_error",
                "extra must be a JSON object",
            )),
        },
    }
}

fn port(p: Option<i64>) -> ApiResult<Option<u16>> {
    p.map(|p| {
        u16::try_from(p).map_err(|_| {
            ApiError::validation(
                &["body", "port"],
                "value_error",
                format!("port {p} is not 0..65535"),
            )
        })
    })
    .transpose()
}

/// Create a connection; 409 when the id exists.
#[utoipa::path(post, path = "/api/v2/connections", tag = "Connection", request_body = ConnectionBody,
    responses((status = 201, body = ConnectionResponse), (status = 409)))]
pub async fn create_connection(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Body(body): Body<ConnectionBody>,
) -> ApiResult<(StatusCode, Json<ConnectionResponse>)> {
    if state
        .store()
        .get_connection(&body.connection_id)
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(format!(
            "The connection with connection_id: `{}` already exists",
            body.connection_id
        )));
    }
    let c = Connection {
        conn_id: body.connection_id,
        conn_type: body.conn_type,
        description: body.description,
        host: body.host,
        schema: body.schema,
        login: body.login,
        password: body.password,
        port: port(body.port)?,
        extra: extra_map(body.extra.as_deref())?,
    };
    state.services().set_connection(&caller.actor(), &c).await?;
    Ok((StatusCode::CREATED, Json(connection_response(&c))))
}

async fn connection(state: &ApiState, id: &str) -> ApiResult<Connection> {
    state.store().get_connection(id).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "The Connection with connection_id: `{id}` was not found"
        ))
    })
}

/// Get a connection (secrets masked).
#[utoipa::path(get, path = "/api/v2/connections/{connection_id}", tag = "Connection",
    params(("connection_id" = String, Path)),
    responses((status = 200, body = ConnectionResponse), (status = 404)))]
pub async fn get_connection(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ConnectionResponse>> {
    Ok(Json(connection_response(&connection(&state, &id).await?)))
}

/// Update a connection. A password of `***` (what a masked read returned) keeps the stored one.
#[utoipa::path(patch, path = "/api/v2/connections/{connection_id}", tag = "Connection",
    params(("connection_id" = String, Path), UpdateMask), request_body = ConnectionBody,
    responses((status = 200, body = ConnectionResponse), (status = 400), (status = 404)))]
pub async fn patch_connection(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(mask): Query<UpdateMask>,
    Body(body): Body<ConnectionBody>,
) -> ApiResult<Json<ConnectionResponse>> {
    if body.connection_id != id {
        return Err(ApiError::bad_request(format!(
            "The connection_id in the request body does not match the URL parameter: `{}` != `{id}`",
            body.connection_id
        )));
    }
    let mut c = connection(&state, &id).await?;
    let fields = mask.update_mask.unwrap_or_else(|| {
        [
            "conn_type",
            "description",
            "host",
            "schema",
            "login",
            "password",
            "port",
            "extra",
        ]
        .map(String::from)
        .to_vec()
    });
    for f in &fields {
        match f.as_str() {
            "conn_type" => c.conn_type = body.conn_type.clone(),
            "description" => c.description = body.description.clone(),
            "host" => c.host = body.host.clone(),
            "schema" => c.schema = body.schema.clone(),
            "login" => c.login = body.login.clone(),
            "password" => {
                if body.password.as_deref() != Some(MASK) {
                    c.password = body.password.clone();
                }
            }
            "port" => c.port = port(body.port)?,
            "extra" => {
                let mut extra = extra_map(body.extra.as_deref())?;
                for (k, v) in extra.iter_mut() {
                    if v.as_str() == Some(MASK)
                        && let Some(old) = c.extra.get(k)
                    {
                        *v = old.clone();
                    }
                }
                c.extra = extra;
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "Invalid field `{other}` in update mask"
                )));
            }
        }
    }
    state.services().set_connection(&caller.actor(), &c).await?;
    Ok(Json(connection_response(&c)))
}

/// Delete a connection.
#[utoipa::path(delete, path = "/api/v2/connections/{connection_id}", tag = "Connection",
    params(("connection_id" = String, Path)),
    responses((status = 204), (status = 404)))]
pub async fn delete_connection(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if state
        .services()
        .delete_connection(&caller.actor(), &id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "The Connection with connection_id: `{id}` was not found"
        )))
    }
}

async fn pool_responses(state: &ApiState) -> ApiResult<Vec<PoolResponse>> {
    let used = state.store().pool_usage().await?;
    Ok(state
        .store()
        .pools()
        .await?
        .into_iter()
        .map(|(name, slots)| {
            let occupied = used
                .iter()
                .find(|(p, _)| *p == name)
                .map(|(_, n)| *n)
                .unwrap_or(0);
            PoolResponse {
                slots,
                description: None,
                include_deferred: false,
                occupied_slots: occupied,
                running_slots: occupied,
                queued_slots: 0,
                scheduled_slots: 0,
                open_slots: (slots - occupied).max(0),
                deferred_slots: 0,
                team_name: None,
                name,
            }
        })
        .collect())
}

/// List pools with their slot usage.
#[utoipa::path(get, path = "/api/v2/pools", tag = "Pool", params(ListParams),
    responses((status = 200, body = PoolCollectionResponse)))]
pub async fn list_pools(
    State(state): State<ApiState>,
    Query(q): Query<ListParams>,
) -> ApiResult<Json<PoolCollectionResponse>> {
    let (pools, total_entries) = page(
        pool_responses(&state).await?,
        q.limit,
        q.offset,
        &q.order_by,
        state.config().max_page_limit,
    )?;
    Ok(Json(PoolCollectionResponse {
        pools,
        total_entries,
    }))
}

async fn pool(state: &ApiState, name: &str) -> ApiResult<PoolResponse> {
    pool_responses(state)
        .await?
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| ApiError::not_found(format!("The Pool with name: `{name}` was not found")))
}

fn check_slots(slots: i64) -> ApiResult<()> {
    if slots < -1 {
        return Err(ApiError::validation(
            &["body", "slots"],
            "greater_than_equal",
            "slots must be -1 (unlimited) or more",
        ));
    }
    Ok(())
}

/// Create a pool; 409 when it exists.
#[utoipa::path(post, path = "/api/v2/pools", tag = "Pool", request_body = PoolBody,
    responses((status = 201, body = PoolResponse), (status = 409)))]
pub async fn create_pool(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Body(body): Body<PoolBody>,
) -> ApiResult<(StatusCode, Json<PoolResponse>)> {
    check_slots(body.slots)?;
    if pool(&state, &body.name).await.is_ok() {
        return Err(ApiError::conflict(format!(
            "The Pool with name: `{}` already exists",
            body.name
        )));
    }
    state
        .services()
        .set_pool(
            &caller.actor(),
            &body.name,
            body.slots,
            body.description.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(pool(&state, &body.name).await?)))
}

/// Get a pool.
#[utoipa::path(get, path = "/api/v2/pools/{pool_name}", tag = "Pool",
    params(("pool_name" = String, Path)),
    responses((status = 200, body = PoolResponse), (status = 404)))]
pub async fn get_pool(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Json<PoolResponse>> {
    Ok(Json(pool(&state, &name).await?))
}

/// Resize a pool.
#[utoipa::path(patch, path = "/api/v2/pools/{pool_name}", tag = "Pool",
    params(("pool_name" = String, Path), UpdateMask), request_body = PoolPatchBody,
    responses((status = 200, body = PoolResponse), (status = 404)))]
pub async fn patch_pool(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Body(body): Body<PoolPatchBody>,
) -> ApiResult<Json<PoolResponse>> {
    let current = pool(&state, &name).await?;
    let slots = body.slots.unwrap_or(current.slots);
    check_slots(slots)?;
    state
        .services()
        .set_pool(&caller.actor(), &name, slots, body.description.as_deref())
        .await?;
    Ok(Json(pool(&state, &name).await?))
}

/// Delete a pool (not `default_pool`).
#[utoipa::path(delete, path = "/api/v2/pools/{pool_name}", tag = "Pool",
    params(("pool_name" = String, Path)),
    responses((status = 204), (status = 400), (status = 404)))]
pub async fn delete_pool(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if name == "default_pool" {
        return Err(ApiError::bad_request("Default Pool can't be deleted"));
    }
    if state.services().delete_pool(&caller.actor(), &name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "The Pool with name: `{name}` was not found"
        )))
    }
}
