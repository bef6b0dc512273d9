//! Sessions: the `weir_session` cookie holds the JWT that the API's `POST /auth/token` would
//! issue (same signing key, expiry and revocation), and the guard in front of every route turns
//! it into a [`Caller`]. Every POST must carry a CSRF token: a keyed BLAKE3 hash of the
//! session's `jti` under a key derived from the webserver's secret, in the form field
//! `csrf_token` or, for htmx, the `X-CSRF-Token` header (`hx-headers` on `<body>`). It is
//! tied to one session and dies with it; a cross-site page cannot read it.

use crate::SESSION_COOKIE;
use crate::page::{Ctx, Failed, UiResult, error_page, html, see_other};
use askama::Template;
use axum::extract::{Extension, Form, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use weir_api::auth::Caller;
use weir_api::{ApiState, Role};

/// The logged-in user of a request, with the CSRF token of its session.
#[derive(Clone)]
pub struct Session {
    pub caller: Caller,
    pub csrf: String,
}

/// The header htmx requests carry the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The CSRF token of the session whose token id is `jti`.
pub fn csrf_token(state: &ApiState, jti: &str) -> String {
    let key = blake3::derive_key("weir-ui 2026 csrf token", &state.config().secret_key);
    blake3::keyed_hash(&key, jti.as_bytes())
        .to_hex()
        .to_string()
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

async fn session_of(state: &ApiState, headers: &HeaderMap) -> Option<Session> {
    let token = cookie(headers, SESSION_COOKIE)?;
    let caller = weir_api::auth::caller_from_token(state, token).await.ok()?;
    let csrf = csrf_token(state, &caller.claims.jti);
    Some(Session { caller, csrf })
}

/// True when `next` is a path on this site: `/...`, not `//host` or `/\host` (which browsers
/// read as another host), without control characters.
pub fn is_local_path(next: &str) -> bool {
    next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\')
}

/// Lets a request through when its route's role allows the session's user: public routes
/// always; others need a valid session (else to the login page), a CSRF token on POST (else
/// 403), and the role (else 403).
pub async fn guard(
    State((state, role)): State<(ApiState, Role)>,
    req: Request,
    next: Next,
) -> Response {
    hardened(check(&state, role, req, next).await)
}

async fn check(state: &ApiState, role: Role, req: Request, next: Next) -> Response {
    if role == Role::Public {
        return next.run(req).await;
    }
    let Some(session) = session_of(state, req.headers()).await else {
        return to_login(&req);
    };
    let ctx = Ctx::new(&session);
    let mut req = if req.method() == Method::POST {
        match check_csrf(req, &session.csrf).await {
            Ok(req) => req,
            Err(status) => {
                return error_page(
                    status,
                    "this form has no valid CSRF token; reload the page and try again",
                    ctx,
                );
            }
        }
    } else {
        req
    };
    if session.caller.role < role {
        return error_page(
            StatusCode::FORBIDDEN,
            &format!(
                "this needs the {} role; {} has {}",
                role.as_str(),
                session.caller.username,
                session.caller.role.as_str()
            ),
            ctx,
        );
    }
    req.extensions_mut().insert(session.caller.clone());
    req.extensions_mut().insert(session);
    let changes = req.method() == Method::POST;
    let resp = next.run(req).await;
    if changes {
        // What this user just changed shows on the next page at once.
        state.forget_pages();
    }
    match resp.extensions().get::<Failed>() {
        Some(Failed(message)) => error_page(resp.status(), message, ctx),
        None => resp,
    }
}

/// Every UI response: no framing by other sites (the op buttons cannot be clickjacked), no
/// content-type sniffing, no referrer leaving the site.
fn hardened(mut resp: Response) -> Response {
    let headers = resp.headers_mut();
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    resp
}

fn to_login(req: &Request) -> Response {
    let htmx = req.headers().contains_key("hx-request");
    let here = if htmx {
        // A fragment's poll: come back to the page it is on, not to the fragment.
        req.headers()
            .get("hx-current-url")
            .and_then(|v| v.to_str().ok())
            .and_then(|u| u.parse::<axum::http::Uri>().ok())
            .and_then(|u| u.path_and_query().map(|p| p.as_str().to_string()))
            .filter(|p| is_local_path(p))
            .unwrap_or_else(|| "/".into())
    } else if req.method() == Method::GET {
        req.uri()
            .path_and_query()
            .map_or_else(|| "/".into(), |p| p.as_str().to_string())
    } else {
        "/".into()
    };
    let location = if here != "/" {
        format!("/login?next={}", crate::page::seg(&here))
    } else {
        "/login".to_string()
    };
    if htmx {
        // htmx follows a 303 inside the XHR and would swap the login page into a fragment.
        let mut resp = StatusCode::OK.into_response();
        if let Ok(v) = HeaderValue::from_str(&location) {
            resp.headers_mut().insert("hx-redirect", v);
        }
        return resp;
    }
    see_other(&location)
}

/// The request again when it carries the session's CSRF token in the header or in its
/// url-encoded form body (which is read, and put back for the handler).
async fn check_csrf(req: Request, expected: &str) -> Result<Request, StatusCode> {
    let expected = blake3::Hash::from_hex(expected).map_err(|_| StatusCode::FORBIDDEN)?;
    let matches = |given: &str| blake3::Hash::from_hex(given.trim()).is_ok_and(|h| h == expected);
    if let Some(given) = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        return if matches(given) {
            Ok(req)
        } else {
            Err(StatusCode::FORBIDDEN)
        };
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 4 << 20)
        .await
        .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE)?;
    let found = bytes
        .split(|&b| b == b'&')
        .filter_map(|pair| pair.strip_prefix(b"csrf_token="))
        .any(|v| std::str::from_utf8(v).is_ok_and(matches));
    if !found {
        return Err(StatusCode::FORBIDDEN);
    }
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    ctx: Ctx,
    login_token: String,
    next: String,
    username: String,
    error: String,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// The cookie that carries the login form's own CSRF token (there is no session yet):
/// `SameSite=Strict`, so a form posted from another site cannot log the browser in as
/// someone else.
pub const LOGIN_COOKIE: &str = "weir_login";

pub async fn login_page(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> UiResult {
    let token = blake3::hash(weir_store::Cipher::generate_key().as_bytes())
        .to_hex()
        .to_string();
    let page = LoginPage {
        ctx: Ctx::anonymous(),
        login_token: token.clone(),
        next: q.next.filter(|n| is_local_path(n)).unwrap_or_default(),
        username: String::new(),
        error: String::new(),
    };
    let mut resp = html(&page)?;
    let secure = if is_https(&state, &headers) {
        "; Secure"
    } else {
        ""
    };
    set_cookie(
        &mut resp,
        &format!(
            "{LOGIN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/login; Max-Age=3600{secure}"
        ),
    );
    Ok(resp)
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    login_token: String,
    #[serde(default)]
    next: String,
}

pub async fn login(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> UiResult {
    let next = if is_local_path(&form.next) {
        form.next.clone()
    } else {
        "/".to_string()
    };
    let expected = cookie(&headers, LOGIN_COOKIE).and_then(|c| blake3::Hash::from_hex(c).ok());
    let given = blake3::Hash::from_hex(form.login_token.trim()).ok();
    if expected.is_none() || expected != given {
        return Ok(error_page(
            StatusCode::FORBIDDEN,
            "this login form has expired or came from another site (no valid CSRF token); open the login page again",
            Ctx::anonymous(),
        ));
    }
    let role = match weir_api::auth::login(&state, &form.username, &form.password).await {
        Ok(role) => role,
        Err(e) => {
            let status = e.status;
            let error = crate::page::UiError::from(e).message;
            let page = LoginPage {
                ctx: Ctx::anonymous(),
                login_token: form.login_token,
                next,
                username: form.username,
                error,
            };
            return Ok((status, axum::response::Html(page.render()?)).into_response());
        }
    };
    let token = weir_api::auth::issue_token(&state, &form.username, role)?;
    let mut cookie = format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}",
        state.config().token_ttl.as_secs()
    );
    if is_https(&state, &headers) {
        cookie.push_str("; Secure");
    }
    let mut resp = see_other(&next);
    set_cookie(&mut resp, &cookie);
    set_cookie(
        &mut resp,
        &format!("{LOGIN_COOKIE}=; HttpOnly; SameSite=Strict; Path=/login; Max-Age=0"),
    );
    Ok(resp)
}

/// Whether users reach us over HTTPS: an `https` base URL, or a proxy that says so.
fn is_https(state: &ApiState, headers: &HeaderMap) -> bool {
    state
        .config()
        .base_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

fn set_cookie(resp: &mut Response, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Revokes the session's token and clears the cookie.
pub async fn logout(
    State(state): State<ApiState>,
    Extension(session): Extension<Session>,
) -> UiResult {
    weir_api::auth::revoke(&state, &session.caller.claims).await?;
    let mut resp = see_other("/login");
    set_cookie(
        &mut resp,
        &format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"),
    );
    Ok(resp)
}
