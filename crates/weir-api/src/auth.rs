//! Users, passwords and tokens: argon2 hashes in the store, HS256 JWTs signed with the
//! webserver's secret key (expiry, revocation by `jti` on logout), and login throttling.

use crate::ApiState;
use crate::error::{ApiError, ApiResult};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::http::{HeaderMap, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a user may do. Each route names the least role it needs (`routes::table`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// No login needed (health, the token endpoint, the OpenAPI document).
    Public,
    /// Reads everything but secrets.
    Viewer,
    /// Also triggers, clears, pauses and marks.
    Op,
    /// Also manages users, variables, connections and pools.
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "op" => Some(Role::Op),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Public => "public",
            Role::Viewer => "viewer",
            Role::Op => "op",
            Role::Admin => "admin",
        }
    }
}

/// A PHC string (`$argon2id$...`) for `password`, with a fresh random salt.
pub fn hash_password(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .expect("argon2 with default parameters hashes any password")
}

/// True when `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The claims of a token this server issued.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// Who is asking: put into the request by the auth layer for every route but public ones.
#[derive(Debug, Clone)]
pub struct Caller {
    pub username: String,
    pub role: Role,
    pub claims: Claims,
}

impl Caller {
    pub fn actor(&self) -> weir_service::Actor {
        weir_service::Actor::new(self.username.clone())
    }
}

pub fn issue_token(state: &ApiState, username: &str, role: Role) -> ApiResult<String> {
    let now = jiff::Timestamp::now().as_second();
    let claims = Claims {
        sub: username.to_string(),
        role,
        iat: now,
        exp: now + state.config().token_ttl.as_secs() as i64,
        jti: blake3::hash(format!("{username}:{now}:{:?}", Instant::now()).as_bytes())
            .to_hex()
            .to_string(),
    };
    let key = EncodingKey::from_secret(&state.config().secret_key).map_err(key_error)?;
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).map_err(key_error)
}

fn key_error(e: jsonwebtoken::errors::Error) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("the webserver's secret key cannot sign tokens: {e}"),
    )
}

/// Checked tokens, so that a client's every request does not cost two store reads. An entry
/// lives [`TokenCache::TTL`]: a token revoked or a user deleted by another process stops
/// working within that time; in this process at once (logout and user changes clear it).
#[derive(Default)]
pub struct TokenCache {
    checked: Mutex<HashMap<String, (Instant, Caller)>>,
}

impl TokenCache {
    pub const TTL: Duration = Duration::from_secs(5);
    const MAX: usize = 10_000;

    fn get(&self, token: &str) -> Option<Caller> {
        let map = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        let (at, caller) = map.get(token)?;
        (at.elapsed() < Self::TTL && caller.claims.exp > jiff::Timestamp::now().as_second())
            .then(|| caller.clone())
    }

    fn put(&self, token: &str, caller: &Caller) {
        let mut map = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(token.to_string(), (Instant::now(), caller.clone()));
    }

    /// Forgets every checked token (after a logout or a change to users).
    pub fn clear(&self) {
        self.checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// The caller a bearer token stands for: signed by us, not expired, not revoked, and its user
/// still exists (the role is the user's current one). Checked at most every
/// [`TokenCache::TTL`] per token.
pub async fn caller_from_token(state: &ApiState, token: &str) -> ApiResult<Caller> {
    if let Some(caller) = state.inner.tokens.get(token) {
        return Ok(caller);
    }
    let caller = check_token(state, token).await?;
    state.inner.tokens.put(token, &caller);
    Ok(caller)
}

async fn check_token(state: &ApiState, token: &str) -> ApiResult<Caller> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let key = DecodingKey::from_secret(&state.config().secret_key).map_err(key_error)?;
    let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map_err(|e| ApiError::unauthorized(format!("Invalid JWT token: {e}")))?;
    let claims = data.claims;
    if state.store().is_token_revoked(&claims.jti).await? {
        return Err(ApiError::unauthorized("Token has been revoked"));
    }
    let user =
        state.store().get_user(&claims.sub).await?.ok_or_else(|| {
            ApiError::unauthorized("Invalid JWT token: the user no longer exists")
        })?;
    let role = Role::parse(&user.role).unwrap_or(Role::Viewer);
    Ok(Caller {
        username: user.username,
        role,
        claims,
    })
}

/// Refuses a token from now on (logout), here at once and in other processes within
/// [`TokenCache::TTL`].
pub async fn revoke(state: &ApiState, claims: &Claims) -> ApiResult<()> {
    state
        .store()
        .revoke_token(&claims.jti, claims.exp * 1_000_000)
        .await?;
    state.forget_cached();
    Ok(())
}

/// The bearer token of a request, if it carries one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Failed logins per username: after [`Throttle::LIMIT`] in a row, the name is locked for
/// [`Throttle::LOCK`], whatever password comes next.
#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, (u32, Option<Instant>)>>,
}

impl Throttle {
    pub const LIMIT: u32 = 10;
    pub const LOCK: Duration = Duration::from_secs(60);

    /// How long `username` must wait, if it is locked.
    fn locked(&self, username: &str) -> Option<Duration> {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (_, until) = map.get(username)?;
        until.and_then(|u| u.checked_duration_since(Instant::now()))
    }

    fn failed(&self, username: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(username.to_string()).or_insert((0, None));
        entry.0 += 1;
        if entry.0 >= Self::LIMIT {
            entry.1 = Some(Instant::now() + Self::LOCK);
        }
    }

    fn succeeded(&self, username: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(username);
    }
}

/// Checks a username and password (throttled); the user's role when they match.
pub async fn login(state: &ApiState, username: &str, password: &str) -> ApiResult<Role> {
    let key = username.to_lowercase();
    if let Some(wait) = state.inner.throttle.locked(&key) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many failed logins for this user; try again in {} s",
                wait.as_secs() + 1
            ),
        ));
    }
    let user = state.store().get_user(username).await?;
    let ok = match &user {
        Some(u) => verify_password(password, &u.password_hash),
        None => {
            // Spend the same time as a real check, so that timing does not tell which
            // usernames exist.
            verify_password(password, DUMMY_HASH.get_or_init(|| hash_password("x")));
            false
        }
    };
    if !ok {
        state.inner.throttle.failed(&key);
        return Err(ApiError::unauthorized("Invalid username or password"));
    }
    state.inner.throttle.succeeded(&key);
    let user = user.expect("matched a password");
    state
        .store()
        .record_login(&user.username, weir_core::now_micros())
        .await?;
    Ok(Role::parse(&user.role).unwrap_or(Role::Viewer))
}

static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let h = hash_password("s3cret");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("s3cret", &h));
        assert!(!verify_password("s3cret ", &h));
        assert!(!verify_password("s3cret", "not a hash"));
    }
}

/// The use cases on users, for the CLI (`weir users`) and, next, the UI's users page. Each is
/// recorded in the audit log with who did it.
pub mod users {
    use super::{Role, hash_password};
    use weir_store::{NewEvent, Store, StoreError};

    /// A password that is hard to guess: 20 characters from the OS's random source.
    pub fn generate_password() -> String {
        let mut out = String::new();
        while out.len() < 20 {
            out.extend(
                weir_store::Cipher::generate_key()
                    .chars()
                    .filter(char::is_ascii_alphanumeric),
            );
        }
        out.truncate(20);
        out
    }

    async fn audit(
        store: &Store,
        actor: &str,
        event: &str,
        username: &str,
    ) -> Result<(), StoreError> {
        store
            .record_event(&NewEvent {
                event: event.into(),
                owner: actor.into(),
                dag_id: None,
                run_id: None,
                task_id: None,
                extra: Some(serde_json::json!({"username": username})),
            })
            .await
    }

    /// Creates a user; false when the name is taken.
    pub async fn create(
        store: &Store,
        actor: &str,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<bool, StoreError> {
        let created = store
            .create_user(username, &hash_password(password), role.as_str())
            .await?;
        if created {
            audit(store, actor, "user.create", username).await?;
        }
        Ok(created)
    }

    pub async fn delete(store: &Store, actor: &str, username: &str) -> Result<bool, StoreError> {
        let deleted = store.delete_user(username).await?;
        if deleted {
            audit(store, actor, "user.delete", username).await?;
        }
        Ok(deleted)
    }

    pub async fn reset_password(
        store: &Store,
        actor: &str,
        username: &str,
        password: &str,
    ) -> Result<bool, StoreError> {
        let done = store
            .set_password_hash(username, &hash_password(password))
            .await?;
        if done {
            audit(store, actor, "user.reset_password", username).await?;
        }
        Ok(done)
    }
}
