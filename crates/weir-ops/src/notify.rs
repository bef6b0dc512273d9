//! Notifications: to a webhook (JSON), Slack (an incoming-webhook connection) or email (SMTP).
//! Sent by the `notify` task type and by the `on_failure` / `on_retry` / `on_success` callbacks
//! of tasks and DAGs. A notification that cannot be delivered is an error for the caller to
//! log; it never changes a task's state.
//!
//! The webhook payload (POST, `application/json`):
//! `{"event": "failure|retry|success|message", "dag_id", "run_id", "task_id", "try_number",
//!   "state", "logical_date", "error", "log_url", "message"}` (absent values are null).
//!
//! Connections: a webhook connection is an http(s) URL (`https://hooks.example.com/weir`, with
//! `extra.headers`); a Slack connection holds the incoming-webhook URL in `host` (or host plus the
//! token path in `password`, as Airflow's slack webhook connection); an email connection is
//! `smtp://user:pass@host:port?from=weir@example.com&starttls=true` (or `ssl=true`).

use crate::http::base_url;
use crate::{BoxFuture, Native, OpError, Operator, Plan, PlanContext, Runtime};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;
use weir_core::connection::Connection;

pub use weir_core::notify::Event;

/// Where a notification goes, as the DAG file declarations name it.
pub use weir_spec::values::Channel;

/// A channel name as written, or why it is none.
fn channel(name: &str) -> Result<Channel, String> {
    name.parse()
        .map_err(|e: weir_spec::values::UnknownValue| format!("notification channel {e}"))
}

/// One notification as a callback or task declares it:
/// `{notify: slack, connection: alerts, to: [...], subject: ..., message: ...}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(alias = "channel")]
    pub notify: String,
    pub connection: String,
    #[serde(default)]
    pub to: Recipients,
    pub subject: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(untagged)]
pub enum Recipients {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Recipients {
    pub fn list(&self) -> Vec<String> {
        match self {
            Recipients::None => Vec::new(),
            Recipients::One(s) => vec![s.clone()],
            Recipients::Many(v) => v.clone(),
        }
    }
}

/// The targets of a callback value: one object or a list of them.
pub fn targets(value: &Value) -> Result<Vec<Target>, String> {
    let items = match value {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    };
    items
        .into_iter()
        .map(|v| {
            serde_json::from_value::<Target>(v.clone())
                .map_err(|e| format!("notification {v}: {e} (expected {{notify: webhook|slack|email, connection: ID, to, subject, message}})"))
        })
        .collect()
}

/// The one-line summary (plus the error excerpt) that Slack and email show.
pub fn summary(e: &Event) -> String {
    let icon = match e.event.as_str() {
        "failure" => ":red_circle:",
        "retry" => ":large_orange_circle:",
        "success" => ":large_green_circle:",
        _ => ":speech_balloon:",
    };
    let what = match (&e.task_id, &e.state) {
        (Some(task), Some(state)) => format!("task {}.{task} {state}", e.dag_id),
        (None, Some(state)) => format!("DAG {} run {state}", e.dag_id),
        _ => format!("DAG {}", e.dag_id),
    };
    let mut text = format!("{icon} weir: {what}");
    if let Some(t) = e.try_number {
        text.push_str(&format!(" (try {t})"));
    }
    if let Some(run) = &e.run_id {
        text.push_str(&format!(" in run {run}"));
    }
    if let Some(m) = &e.message {
        text.push_str(&format!("\n{m}"));
    }
    if let Some(err) = e.error.as_ref().filter(|s| !s.is_empty()) {
        text.push_str(&format!("\n```\n{err}\n```"));
    }
    if let Some(url) = &e.log_url {
        text.push_str(&format!("\n{url}"));
    }
    text
}

fn http_client() -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

async fn post(url: &str, body: &Value, conn: &Connection, what: &str) -> Result<(), String> {
    let mut req = http_client()?.post(url).json(body);
    if let Some(Value::Object(headers)) = conn.extra.get("headers") {
        for (k, v) in headers {
            req = req.header(
                k,
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            );
        }
    }
    let shown = weir_core::connection::mask_uri(url);
    let response = req
        .send()
        .await
        .map_err(|e| format!("{what} to {shown} failed: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{what} to {shown} failed: {}", response.status()));
    }
    Ok(())
}

/// Sends one notification.
pub async fn send(
    channel: Channel,
    conn: &Connection,
    to: &[String],
    subject: Option<&str>,
    event: &Event,
) -> Result<(), String> {
    match channel {
        Channel::Webhook => {
            let url = base_url(conn)?;
            post(
                &url,
                &serde_json::to_value(event).unwrap_or(Value::Null),
                conn,
                "webhook",
            )
            .await
        }
        Channel::Slack => {
            let mut url = base_url(conn)?;
            if let Some(path) = conn.password.as_deref().filter(|p| !p.is_empty()) {
                if path.starts_with("http") {
                    url = path.to_string();
                } else {
                    url = format!(
                        "{}/{}",
                        url.trim_end_matches('/'),
                        path.trim_start_matches('/')
                    );
                }
            }
            post(
                &url,
                &serde_json::json!({"text": summary(event)}),
                conn,
                "slack message",
            )
            .await
        }
        Channel::Email => send_email(conn, to, subject, event).await,
    }
}

async fn send_email(
    conn: &Connection,
    to: &[String],
    subject: Option<&str>,
    event: &Event,
) -> Result<(), String> {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    if to.is_empty() {
        return Err("email notification has no recipients: set `to`".into());
    }
    let host = conn
        .host
        .as_deref()
        .ok_or_else(|| format!("connection '{}' has no SMTP host", conn.conn_id))?;
    let flag = |k: &str| {
        conn.extra
            .get(k)
            .is_some_and(|v| v == "true" || v == &Value::Bool(true))
    };
    let from = conn
        .extra
        .get("from")
        .and_then(Value::as_str)
        .unwrap_or("weir@localhost");
    let subject = subject.map(str::to_string).unwrap_or_else(|| {
        format!(
            "[weir] {}{} {}",
            event.dag_id,
            event
                .task_id
                .as_ref()
                .map(|t| format!(".{t}"))
                .unwrap_or_default(),
            event.state.as_deref().unwrap_or(&event.event)
        )
    });
    let mut builder = Message::builder()
        .from(
            from.parse()
                .map_err(|e| format!("email from '{from}': {e}"))?,
        )
        .subject(subject);
    for addr in to {
        builder = builder.to(addr
            .parse()
            .map_err(|e| format!("email to '{addr}': {e}"))?);
    }
    let body = summary(event)
        .replace(":red_circle: ", "")
        .replace(":large_green_circle: ", "")
        .replace(":large_orange_circle: ", "");
    let message = builder
        .body(body)
        .map_err(|e| format!("cannot build the email: {e}"))?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut transport = if flag("ssl") {
        AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(|e| e.to_string())?
    } else if flag("starttls") {
        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(|e| e.to_string())?
    } else {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
    };
    if let Some(port) = conn.port {
        transport = transport.port(port);
    }
    if let Some(login) = &conn.login {
        transport =
            transport.credentials(lettre::transport::smtp::authentication::Credentials::new(
                login.clone(),
                conn.password.clone().unwrap_or_default(),
            ));
    }
    let transport = transport.timeout(Some(Duration::from_secs(15))).build();
    // lettre bounds the connect; a server that accepts and then says nothing is bounded here.
    let port = conn.port.unwrap_or(25);
    match tokio::time::timeout(Duration::from_secs(30), transport.send(message)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("email via {host}:{port} failed: {e}")),
        Err(_) => Err(format!(
            "email via {host}:{port} failed: no answer within 30s"
        )),
    }
}

/// The `notify` task: sends one message.
pub struct Notify;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    channel: String,
    connection: String,
    #[serde(default)]
    to: Recipients,
    subject: Option<String>,
    message: Option<String>,
}

impl Operator for Notify {
    fn name(&self) -> &'static str {
        "notify"
    }

    fn plan(&self, cx: &PlanContext<'_>) -> Result<Plan, OpError> {
        let c: Config = cx.config()?;
        let channel = channel(&c.channel).map_err(|e| cx.config_error(e))?;
        let t = cx.template;
        let event = Event {
            event: "message".into(),
            dag_id: t.dag_id.clone(),
            run_id: Some(t.run_id.clone()),
            task_id: Some(t.task_id.clone()),
            try_number: Some(i64::from(t.try_number)),
            state: None,
            logical_date: Some(weir_core::iso(t.logical_date)),
            error: None,
            log_url: None,
            message: c.message.as_deref().map(|m| cx.render(m)).transpose()?,
        };
        Ok(Plan::Native(Box::new(NotifyRun {
            task_id: t.task_id.clone(),
            channel,
            connection: c.connection,
            to: c
                .to
                .list()
                .iter()
                .map(|a| cx.render(a))
                .collect::<Result<_, _>>()?,
            subject: c.subject.as_deref().map(|s| cx.render(s)).transpose()?,
            event,
        })))
    }
}

struct NotifyRun {
    task_id: String,
    channel: Channel,
    connection: String,
    to: Vec<String>,
    subject: Option<String>,
    event: Event,
}

impl Native for NotifyRun {
    fn run<'a>(
        self: Box<Self>,
        rt: &'a dyn Runtime,
    ) -> BoxFuture<'a, Result<Option<Value>, String>> {
        Box::pin(async move {
            let conn = rt
                .connection(&self.connection)
                .await
                .map_err(|e| format!("task '{}': {e}", self.task_id))?;
            send(
                self.channel,
                &conn,
                &self.to,
                self.subject.as_deref(),
                &self.event,
            )
            .await
            .map_err(|e| {
                format!(
                    "task '{}' on connection '{}': {e}",
                    self.task_id, self.connection
                )
            })?;
            rt.log(
                &format!(
                    "sent a {:?} notification via '{}'",
                    self.channel, self.connection
                )
                .to_lowercase(),
            );
            Ok(None)
        })
    }
}

/// Sends every notification of a callback value (`on_failure: [...]`) and returns one log line
/// per notification: delivered, or why not. Never fails: a lost notification must not change
/// what happened to the task.
/// Sends one outbox notification (`{"target": ..., "event": ...}`, see
/// [`weir_core::notify::messages`]); `Err` says why it was not delivered.
pub async fn deliver_message(payload: &Value, rt: &dyn Runtime) -> Result<String, String> {
    let event: Event = serde_json::from_value(payload.get("event").cloned().unwrap_or_default())
        .map_err(|e| format!("bad notification payload: {e}"))?;
    let target = payload.get("target").cloned().unwrap_or_default();
    let Some(t) = targets(&target)?.pop() else {
        return Err("notification without a target".into());
    };
    let label = format!("{} notification via '{}'", t.notify, t.connection);
    let mut event = event;
    if t.message.is_some() {
        event.message = t.message.clone();
    }
    let result = async {
        let channel = channel(&t.notify)?;
        let conn = rt.connection(&t.connection).await?;
        send(channel, &conn, &t.to.list(), t.subject.as_deref(), &event).await
    }
    .await;
    match result {
        Ok(()) => Ok(format!("{label} sent ({})", event.event)),
        Err(e) => Err(format!("{label} could not be delivered: {e}")),
    }
}

pub async fn deliver(callbacks: &Value, event: &Event, rt: &dyn Runtime) -> Vec<String> {
    let targets = match targets(callbacks) {
        Ok(t) => t,
        Err(e) => return vec![format!("WARNING - {e}")],
    };
    let mut lines = Vec::new();
    for t in targets {
        let label = format!("{} notification via '{}'", t.notify, t.connection);
        let mut event = event.clone();
        if t.message.is_some() {
            event.message = t.message.clone();
        }
        let result = async {
            let channel = channel(&t.notify)?;
            let conn = rt.connection(&t.connection).await?;
            send(channel, &conn, &t.to.list(), t.subject.as_deref(), &event).await
        }
        .await;
        lines.push(match result {
            Ok(()) => format!("INFO - {label} sent ({})", event.event),
            Err(e) => format!("WARNING - {label} could not be delivered: {e}"),
        });
    }
    lines
}
