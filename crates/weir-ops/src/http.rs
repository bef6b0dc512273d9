//! `http`: one HTTP request of a pipeline (an extract), retried with backoff on 5xx, 429 and
//! connection errors, bounded by a per-attempt timeout. The response can become the XCom value
//! and/or rows in a warehouse table (`save_to`, JSON array or CSV; replace, append, or replace a
//! partition). `file://` URLs read a local file, so a pipeline works without a network.

use crate::sql::open_warehouse;
use crate::{OpError, Operator, Plan, PlanContext, Runtime};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::{Duration, Instant};
use weir_core::connection::{Connection, mask_uri};
use weir_spec::values::{HttpMethod, HttpXcom as XcomOut, SaveFormat, SaveMode};
use weir_warehouse::{LoadMode, Rows};

pub struct Http;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    url: String,
    method: Option<HttpMethod>,
    connection: Option<String>,
    #[serde(default)]
    headers: Map<String, Value>,
    #[serde(default)]
    query: Map<String, Value>,
    json: Option<Value>,
    body: Option<String>,
    timeout: Option<Value>,
    request_retries: Option<u32>,
    retry_backoff: Option<Value>,
    expect_status: Option<Statuses>,
    save_to: Option<SaveTo>,
    xcom: Option<XcomOut>,
    json_path: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Statuses {
    One(u16),
    Many(Vec<u16>),
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct SaveTo {
    connection: String,
    table: String,
    format: Option<SaveFormat>,
    mode: Option<SaveMode>,
    partition: Option<Map<String, Value>>,
}

/// The format of a body to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Format {
    Json,
    Csv,
}

/// One request, fully rendered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub json: Option<Value>,
    pub body: Option<String>,
    /// Per attempt.
    pub timeout: Duration,
    /// Attempts after the first.
    pub retries: u32,
    /// Doubles after each attempt, capped at 30 s.
    pub backoff: Duration,
    /// Empty means any 2xx.
    pub expect_status: Vec<u16>,
}

/// A response: status, content type and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    pub elapsed: Duration,
}

impl Operator for Http {
    fn name(&self) -> &'static str {
        "http"
    }

    fn plan(&self, cx: &PlanContext<'_>) -> Result<Plan, OpError> {
        let c: Config = cx.config()?;
        let pairs = |map: &Map<String, Value>| -> Result<Vec<(String, String)>, OpError> {
            map.iter()
                .map(|(k, v)| {
                    let v = match cx.render_value(v)? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    Ok((k.clone(), v))
                })
                .collect()
        };
        let duration = |value: &Option<Value>, key: &str, default: Duration| match value {
            Some(v) => {
                weir_spec::values::duration(v).map_err(|e| cx.config_error(format!("{key}: {e}")))
            }
            None => Ok(default),
        };
        let request = Request {
            method: c.method.unwrap_or(HttpMethod::Get).as_str().to_string(),
            url: cx.render(&c.url)?,
            headers: pairs(&c.headers)?,
            query: pairs(&c.query)?,
            json: c.json.as_ref().map(|j| cx.render_value(j)).transpose()?,
            body: c.body.as_deref().map(|b| cx.render(b)).transpose()?,
            timeout: duration(&c.timeout, "timeout", Duration::from_secs(60))?,
            retries: c.request_retries.unwrap_or(3),
            backoff: duration(&c.retry_backoff, "retry_backoff", Duration::from_secs(1))?,
            expect_status: match c.expect_status {
                None => Vec::new(),
                Some(Statuses::One(s)) => vec![s],
                Some(Statuses::Many(s)) => s,
            },
        };
        let save = match &c.save_to {
            Some(s) => {
                let mode = match s.mode.unwrap_or(SaveMode::Replace) {
                    SaveMode::Replace => LoadMode::Replace,
                    SaveMode::Append => LoadMode::Append,
                    SaveMode::ReplacePartition => {
                        let partition = s.partition.as_ref().ok_or_else(|| {
                            cx.config_error(
                                "save_to mode replace_partition needs `partition: {column: value}`",
                            )
                        })?;
                        let mut pairs = Vec::new();
                        for (k, v) in partition {
                            pairs.push((k.clone(), cx.render_value(v)?));
                        }
                        LoadMode::ReplacePartition(pairs)
                    }
                };
                let format = s.format.map(|f| match f {
                    SaveFormat::Json => Format::Json,
                    SaveFormat::Csv => Format::Csv,
                });
                Some(Save {
                    connection: s.connection.clone(),
                    table: cx.render(&s.table)?,
                    format,
                    mode,
                })
            }
            None => None,
        };
        let xcom = c.xcom;
        Ok(Plan::Warehouse(Box::new(
            HttpRun {
                task_id: cx.task.task_id.clone(),
                connection: c.connection,
                request,
                save,
                xcom,
                json_path: c.json_path,
            }
            .into(),
        )))
    }
}

#[derive(Serialize, Deserialize)]
struct Save {
    connection: String,
    table: String,
    format: Option<Format>,
    mode: LoadMode,
}

/// A planned `http` task: rendered, ready to run where its `save_to` warehouse is.
#[derive(Serialize, Deserialize)]
pub struct HttpRun {
    task_id: String,
    connection: Option<String>,
    request: Request,
    save: Option<Save>,
    xcom: Option<XcomOut>,
    json_path: Option<String>,
}

impl HttpRun {
    /// Its connection (if it names one) and its `save_to` connection (if it saves).
    pub(crate) fn connections(&self) -> Vec<String> {
        self.connection
            .iter()
            .chain(self.save.iter().map(|s| &s.connection))
            .cloned()
            .collect()
    }

    pub(crate) async fn run(self, rt: &dyn Runtime) -> Result<Option<Value>, String> {
        let task = &self.task_id;
        let conn = match &self.connection {
            Some(id) => Some(
                rt.connection(id)
                    .await
                    .map_err(|e| format!("task '{task}': {e}"))?,
            ),
            None => None,
        };
        let mut request = self.request.clone();
        request.url = resolve_url(&request.url, conn.as_ref(), rt.project_dir())
            .map_err(|e| format!("task '{task}': {e}"))?;
        let response = fetch(&request, conn.as_ref(), &mut |line| rt.log(&line))
            .await
            .map_err(|e| format!("task '{task}': {e}"))?;
        rt.log(&format!(
            "{} {} -> {} ({} bytes in {} ms)",
            request.method,
            mask_uri(&request.url),
            response.status,
            response.body.len(),
            response.elapsed.as_millis()
        ));
        if let Some(save) = &self.save {
            let format = save
                .format
                .unwrap_or_else(|| guess_format(response.content_type.as_deref(), &request.url));
            let wh = open_warehouse(rt, task, &save.connection).await?;
            let on = |e: weir_warehouse::WarehouseError| {
                format!("task '{task}' on connection '{}': {e}", save.connection)
            };
            let loaded = if format == Format::Csv && wh.dialect() == weir_warehouse::Dialect::DuckDb
            {
                // DuckDB reads the file itself, much faster than row inserts.
                let file = tempfile::Builder::new()
                    .suffix(".csv")
                    .tempfile()
                    .map_err(|e| format!("task '{task}': cannot write a temp file: {e}"))?;
                std::fs::write(file.path(), &response.body)
                    .map_err(|e| format!("task '{task}': cannot write a temp file: {e}"))?;
                wh.load_csv(&save.table, file.path(), &save.mode)
                    .await
                    .map_err(on)?
            } else {
                let rows = parse_rows(&response.body, format, self.json_path.as_deref())
                    .map_err(|e| format!("task '{task}': {e}"))?;
                wh.load_rows(&save.table, &rows, &save.mode)
                    .await
                    .map_err(on)?
            };
            rt.log(&format!(
                "loaded {loaded} rows into {} on '{}'",
                save.table, save.connection
            ));
            if self.xcom.is_none() {
                return Ok(Some(
                    serde_json::json!({"rows": loaded, "table": save.table, "status": response.status}),
                ));
            }
        }
        let text = String::from_utf8_lossy(&response.body).into_owned();
        Ok(Some(match self.xcom {
            Some(XcomOut::Text) => Value::String(text),
            Some(XcomOut::Json) => {
                parse_json(&response.body).map_err(|e| format!("task '{task}': {e}"))?
            }
            None => parse_json(&response.body).unwrap_or(Value::String(text)),
        }))
    }
}

/// The URL a task calls: an absolute URL as it is; a relative one joined to the connection's
/// base (scheme from `schema` when it is http/https, else the connection type), as Airflow's
/// HttpHook does. `file://relative/path` is relative to the project.
pub fn resolve_url(
    url: &str,
    conn: Option<&Connection>,
    project_dir: &std::path::Path,
) -> Result<String, String> {
    if let Some(path) = url.strip_prefix("file://") {
        let full = if path.starts_with('/') {
            std::path::PathBuf::from(path)
        } else {
            project_dir.join(path)
        };
        return Ok(format!("file://{}", full.display()));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(url.to_string());
    }
    let Some(conn) = conn else {
        return Err(format!(
            "'{url}' is not an absolute URL and the task names no connection to resolve it against"
        ));
    };
    let base = base_url(conn)?;
    Ok(format!(
        "{}/{}",
        base.trim_end_matches('/'),
        url.trim_start_matches('/')
    ))
}

/// `https://host:port/path` of an http connection: the scheme from `schema` when that is
/// http/https (Airflow's convention), else from the connection type; any other `schema` is the
/// URL's path (so `weir connections add hook --conn-uri https://host/path` means that URL).
pub fn base_url(conn: &Connection) -> Result<String, String> {
    let host = conn.host.as_deref().unwrap_or("");
    if host.is_empty() {
        return Err(format!("connection '{}' has no host", conn.conn_id));
    }
    let mut base = if host.starts_with("http://") || host.starts_with("https://") {
        host.to_string()
    } else {
        let scheme = match conn.schema.as_deref() {
            Some(s @ ("http" | "https")) => s,
            _ if conn.conn_type == "https" => "https",
            _ => "http",
        };
        match conn.port {
            Some(port) => format!("{scheme}://{host}:{port}"),
            None => format!("{scheme}://{host}"),
        }
    };
    // `https://hooks.example.com/services/x` as a URI keeps `services/x` in schema: a path.
    if let Some(path) = conn
        .schema
        .as_deref()
        .filter(|s| !s.is_empty() && *s != "http" && *s != "https")
        && !host.starts_with("http")
    {
        base = format!("{}/{}", base.trim_end_matches('/'), path);
    }
    if let Some(path) = conn
        .extra
        .get("endpoint")
        .or_else(|| conn.extra.get("path"))
        .and_then(Value::as_str)
    {
        base = format!(
            "{}/{}",
            base.trim_end_matches('/'),
            path.trim_start_matches('/')
        );
    }
    Ok(base)
}

pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(30)))
        .user_agent(concat!("weir/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// Whether an attempt's failure is worth another attempt.
enum Attempt {
    Done(Response),
    Retry(String),
    Fail(String),
}

/// Sends `req`, retrying 5xx, 429, timeouts and connection errors with exponential backoff;
/// each retry is logged through `log`.
pub async fn fetch(
    req: &Request,
    conn: Option<&Connection>,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<Response, String> {
    let shown = format!("{} {}", req.method, mask_uri(&req.url));
    if let Some(path) = req.url.strip_prefix("file://") {
        let started = Instant::now();
        let body = std::fs::read(path).map_err(|e| format!("{shown}: cannot read {path}: {e}"))?;
        return Ok(Response {
            status: 200,
            content_type: None,
            body,
            elapsed: started.elapsed(),
        });
    }
    let client = client(req.timeout)?;
    let attempts = req.retries + 1;
    let mut delay = req.backoff;
    for attempt in 1..=attempts {
        let outcome = attempt_once(&client, req, conn, &shown).await;
        match outcome {
            Attempt::Done(r) => return Ok(r),
            Attempt::Fail(message) => return Err(message),
            Attempt::Retry(message) if attempt < attempts => {
                log(format!(
                    "attempt {attempt}/{attempts}: {message}; retrying in {}",
                    weir_core::format_duration(delay)
                ));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            Attempt::Retry(message) => {
                return Err(format!("{message} (gave up after {attempts} attempts)"));
            }
        }
    }
    Err(format!("{shown}: no attempt was made"))
}

async fn attempt_once(
    client: &reqwest::Client,
    req: &Request,
    conn: Option<&Connection>,
    shown: &str,
) -> Attempt {
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut builder = client.request(method, &req.url).query(&req.query);
    if let Some(conn) = conn {
        if let Some(login) = &conn.login {
            builder = builder.basic_auth(login, conn.password.as_deref());
        }
        if let Some(token) = conn
            .extra
            .get("token")
            .or_else(|| conn.extra.get("bearer_token"))
            .and_then(Value::as_str)
        {
            builder = builder.bearer_auth(token);
        }
        if let Some(Value::Object(headers)) = conn.extra.get("headers") {
            for (k, v) in headers {
                builder = builder.header(
                    k,
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string()),
                );
            }
        }
    }
    for (k, v) in &req.headers {
        builder = builder.header(k, v);
    }
    if let Some(json) = &req.json {
        builder = builder.json(json);
    } else if let Some(body) = &req.body {
        builder = builder.body(body.clone());
    }
    let started = Instant::now();
    let response = match builder.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Attempt::Retry(format!(
                "{shown}: timed out after {}",
                weir_core::format_duration(req.timeout)
            ));
        }
        Err(e) if e.is_connect() || e.is_request() => {
            return Attempt::Retry(format!("{shown}: cannot connect: {}", error_chain(&e)));
        }
        Err(e) => return Attempt::Fail(format!("{shown}: {}", error_chain(&e))),
    };
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match response.bytes().await {
        Ok(b) => b.to_vec(),
        Err(e) if e.is_timeout() => {
            return Attempt::Retry(format!(
                "{shown}: timed out after {} reading the body",
                weir_core::format_duration(req.timeout)
            ));
        }
        Err(e) => {
            return Attempt::Retry(format!(
                "{shown}: reading the body failed: {}",
                error_chain(&e)
            ));
        }
    };
    let code = status.as_u16();
    let excerpt = || {
        let text = String::from_utf8_lossy(&body);
        let short: String = text.chars().take(500).collect();
        short
    };
    if status.is_server_error() || code == 429 {
        return Attempt::Retry(format!("{shown} -> {status}: {}", excerpt()));
    }
    let accepted = if req.expect_status.is_empty() {
        status.is_success()
    } else {
        req.expect_status.contains(&code)
    };
    if !accepted {
        return Attempt::Fail(format!(
            "{shown} -> {status} (expected {}): {}",
            expected(&req.expect_status),
            excerpt()
        ));
    }
    Attempt::Done(Response {
        status: code,
        content_type,
        body,
        elapsed: started.elapsed(),
    })
}

fn expected(statuses: &[u16]) -> String {
    if statuses.is_empty() {
        "2xx".into()
    } else {
        statuses
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// JSON for `application/json` or a `.json` URL, CSV for `text/csv` or a `.csv` URL, else JSON.
pub fn guess_format(content_type: Option<&str>, url: &str) -> Format {
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    if ct.contains("csv") || (!ct.contains("json") && path.ends_with(".csv")) {
        Format::Csv
    } else {
        Format::Json
    }
}

fn parse_json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| {
        format!(
            "the response is not valid JSON at line {} column {}: {e}",
            e.line(),
            e.column()
        )
    })
}

/// A body as rows: a JSON array of objects (columns in first-seen order; missing keys are
/// NULL), optionally under a dotted `json_path`, or CSV with a header row.
pub fn parse_rows(body: &[u8], format: Format, json_path: Option<&str>) -> Result<Rows, String> {
    match format {
        Format::Json => {
            let mut value = parse_json(body)?;
            let mut at = String::from("the top level");
            if let Some(path) = json_path.filter(|p| !p.is_empty()) {
                for part in path.split('.') {
                    value = value.get(part).cloned().ok_or_else(|| {
                        format!("the response has no '{part}' (json_path {path})")
                    })?;
                }
                at = path.to_string();
            }
            let Value::Array(items) = value else {
                return Err(format!(
                    "expected a JSON array of objects at {at}, found {}",
                    kind(&value)
                ));
            };
            let mut columns: Vec<String> = Vec::new();
            for item in &items {
                let Value::Object(map) = item else {
                    return Err(format!(
                        "expected a JSON array of objects at {at}, found an array holding {}",
                        kind(item)
                    ));
                };
                for k in map.keys() {
                    if !columns.contains(k) {
                        columns.push(k.clone());
                    }
                }
            }
            let rows = items
                .iter()
                .map(|item| {
                    columns
                        .iter()
                        .map(|c| match item.get(c) {
                            None => Value::Null,
                            Some(v @ (Value::Object(_) | Value::Array(_))) => {
                                Value::String(v.to_string())
                            }
                            Some(v) => v.clone(),
                        })
                        .collect()
                })
                .collect();
            Ok(Rows { columns, rows })
        }
        Format::Csv => weir_warehouse::csv_rows(body),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn serve(app: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    fn request(url: String) -> Request {
        Request {
            method: "GET".into(),
            url,
            headers: vec![],
            query: vec![],
            json: None,
            body: None,
            timeout: Duration::from_secs(5),
            retries: 3,
            backoff: Duration::from_millis(10),
            expect_status: vec![],
        }
    }

    #[tokio::test]
    async fn survives_two_500s_then_succeeds() {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().route(
            "/data",
            axum::routing::get(move || {
                let counter = counter.clone();
                async move {
                    if counter.fetch_add(1, Ordering::SeqCst) < 2 {
                        (
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                            "busy".to_string(),
                        )
                    } else {
                        (axum::http::StatusCode::OK, r#"[{"a": 1}]"#.to_string())
                    }
                }
            }),
        );
        let base = serve(app).await;
        let mut lines = Vec::new();
        let r = fetch(&request(format!("{base}/data")), None, &mut |l| {
            lines.push(l)
        })
        .await
        .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(hits.load(Ordering::SeqCst), 3);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("attempt 1/4: GET") && lines[0].contains("500"),
            "{lines:?}"
        );
        assert!(lines[1].contains("retrying in"), "{lines:?}");
    }

    #[tokio::test]
    async fn times_out_on_a_server_that_never_answers() {
        let app = axum::Router::new().route(
            "/hang",
            axum::routing::get(|| async {
                std::future::pending::<()>().await;
                "never"
            }),
        );
        let base = serve(app).await;
        let mut req = request(format!("{base}/hang"));
        req.timeout = Duration::from_millis(300);
        req.retries = 1;
        let started = Instant::now();
        let err = fetch(&req, None, &mut |_| {}).await.unwrap_err();
        assert!(
            err.contains("timed out after 300ms") && err.contains("gave up after 2 attempts"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_404_fails_at_once_and_auth_comes_from_the_connection() {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new()
            .route(
                "/missing",
                axum::routing::get(move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async { (axum::http::StatusCode::NOT_FOUND, "no such thing") }
                }),
            )
            .route(
                "/echo",
                axum::routing::get(|headers: axum::http::HeaderMap| async move {
                    format!(
                        "{}|{}",
                        headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or(""),
                        headers
                            .get("x-team")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                    )
                }),
            );
        let base = serve(app).await;
        let err = fetch(&request(format!("{base}/missing")), None, &mut |_| {})
            .await
            .unwrap_err();
        assert!(
            err.contains("404") && err.contains("no such thing"),
            "{err}"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        let mut conn = Connection::from_uri(
            "api",
            &format!(
                "{}?__extra__=%7B%22headers%22%3A%7B%22x-team%22%3A%22data%22%7D%7D",
                base.replace("http://", "http://user:pw@")
            ),
        )
        .unwrap();
        conn.schema = Some("http".into());
        let url = resolve_url("/echo", Some(&conn), std::path::Path::new("/")).unwrap();
        let r = fetch(&request(url), Some(&conn), &mut |_| {})
            .await
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&r.body), "Basic dXNlcjpwdw==|data");
    }

    #[test]
    fn bodies_become_rows_or_clear_errors() {
        let rows = parse_rows(
            br#"{"data": {"items": [{"a": 1, "b": "x"}, {"a": 2, "c": true}]}}"#,
            Format::Json,
            Some("data.items"),
        )
        .unwrap();
        assert_eq!(rows.columns, ["a", "b", "c"]);
        assert_eq!(
            rows.rows[1],
            vec![serde_json::json!(2), Value::Null, serde_json::json!(true)]
        );
        let err = parse_rows(b"{oops", Format::Json, None).unwrap_err();
        assert!(err.contains("not valid JSON at line 1 column 2"), "{err}");
        let err = parse_rows(br#"{"data": "nope"}"#, Format::Json, Some("data")).unwrap_err();
        assert!(
            err.contains("expected a JSON array of objects at data, found a string"),
            "{err}"
        );
        let err = parse_rows(b"a,b,c\n1,2,3\n4,5\n", Format::Csv, None).unwrap_err();
        assert!(
            err.contains("CSV row 3 has 2 fields, the header has 3"),
            "{err}"
        );
        let rows = parse_rows(b"name,gender\nAnn,F\nBo,\n", Format::Csv, None).unwrap();
        assert_eq!(rows.rows[1], vec![serde_json::json!("Bo"), Value::Null]);
        assert_eq!(
            guess_format(Some("text/csv; charset=utf-8"), "http://x/y"),
            Format::Csv
        );
        assert_eq!(guess_format(None, "file:///x/names.csv"), Format::Csv);
    }
}
