//! The seed ETL of `weir init` on DuckDB and PostgreSQL, and notifications arriving at local
//! webhook, Slack and SMTP servers.

use crate::support::Project;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

fn init_project() -> Project {
    let root = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(crate::support::weir_bin())
        .arg("init")
        .arg(root.path().join("p"))
        .output()
        .unwrap();
    assert!(status.status.success());
    // Keep the project's own files; point the temp dir at the project inside.
    let project = Project {
        dir: tempfile::TempDir::new_in(root.path()).unwrap(),
        database_url: None,
    };
    for entry in ["weir.toml", "dags", "sql", "data", "scripts"] {
        let from = root.path().join("p").join(entry);
        let to = project.path().join(entry);
        copy(&from, &to);
    }
    std::mem::forget(root);
    project
}

fn copy(from: &std::path::Path, to: &std::path::Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            copy(&e.path(), &to.join(e.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap();
    }
}

const RUN: &str = "manual__2026-01-14T15:00:00+00:00";

#[test]
fn the_seed_etl_is_idempotent_on_duckdb_and_postgres() {
    let p = init_project();
    let duck = "duckdb://.weir/warehouse.duckdb";
    for _ in 0..2 {
        let out = p.ok(&["dags", "test", "names_etl", "2026-01-15"]);
        assert!(out.contains(&format!("run {RUN} success")), "{out}");
    }
    let names = p.warehouse_rows(duck, "select ds, name, gender from core.names");
    assert_eq!(names.len(), 6, "{names:?}");
    assert!(names.contains(&json!({"ds": "2026-01-15", "name": "Jisoo", "gender": "F"})));
    assert_eq!(
        p.warehouse_rows(duck, "select * from raw.names").len(),
        7,
        "raw holds one copy of the day"
    );

    let Some(pg) = Project::on_postgres() else {
        return;
    };
    let url = pg.database_url.clone().unwrap();
    // The same project, metadata and warehouse on PostgreSQL: one connection changes.
    let pg_project = Project {
        dir: tempfile::tempdir().unwrap(),
        database_url: Some(url.clone()),
    };
    for entry in ["weir.toml", "dags", "sql", "data", "scripts"] {
        copy(&p.path().join(entry), &pg_project.path().join(entry));
    }
    pg_project.ok(&["connections", "add", "warehouse", "--conn-uri", &url]);
    for _ in 0..2 {
        pg_project.ok(&["dags", "test", "names_etl", "2026-01-15"]);
    }
    let pg_names = pg_project.warehouse_rows(&url, "select ds, name, gender from core.names");
    assert_eq!(pg_names, names, "PostgreSQL holds exactly DuckDB's rows");
}

/// What the local servers received.
#[derive(Default)]
struct Inbox {
    webhook: Vec<Value>,
    slack: Vec<Value>,
    mail: Vec<String>,
}

fn start_servers(inbox: Arc<Mutex<Inbox>>) -> (tokio::runtime::Runtime, String, String) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (http, smtp) = rt.block_on(async {
        use axum::routing::post;
        let (a, b) = (inbox.clone(), inbox.clone());
        let app = axum::Router::new()
            .route(
                "/hook",
                post(move |axum::Json(v): axum::Json<Value>| {
                    let a = a.clone();
                    async move { a.lock().unwrap().webhook.push(v) }
                }),
            )
            .route(
                "/services/T000/B000/XXX",
                post(move |axum::Json(v): axum::Json<Value>| {
                    let b = b.clone();
                    async move { b.lock().unwrap().slack.push(v) }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let smtp_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let smtp = smtp_listener.local_addr().unwrap().to_string();
        let mail_inbox = inbox.clone();
        tokio::spawn(async move {
            loop {
                let (socket, _) = smtp_listener.accept().await.unwrap();
                let inbox = mail_inbox.clone();
                tokio::spawn(smtp_session(socket, inbox));
            }
        });
        (http, smtp)
    });
    (rt, http, smtp)
}

/// Just enough SMTP to accept one message per session.
async fn smtp_session(socket: tokio::net::TcpStream, inbox: Arc<Mutex<Inbox>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 test ESMTP\r\n").await.unwrap();
    let mut data = String::new();
    let mut in_data = false;
    while let Ok(Some(line)) = lines.next_line().await {
        if in_data {
            if line == "." {
                in_data = false;
                inbox.lock().unwrap().mail.push(std::mem::take(&mut data));
                write.write_all(b"250 queued\r\n").await.unwrap();
            } else {
                data.push_str(&line);
                data.push('\n');
            }
            continue;
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250 test\r\n"
        } else if upper.starts_with("DATA") {
            in_data = true;
            b"354 go on\r\n"
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await.unwrap();
            return;
        } else {
            b"250 ok\r\n"
        };
        write.write_all(reply).await.unwrap();
    }
}

#[test]
fn failure_notifications_arrive_and_an_undeliverable_one_changes_nothing() {
    let inbox = Arc::new(Mutex::new(Inbox::default()));
    let (_rt, http, smtp) = start_servers(inbox.clone());
    let p = Project::new();
    p.ok(&[
        "connections",
        "add",
        "hook",
        "--conn-uri",
        &format!("http://{http}/hook"),
    ]);
    p.ok(&[
        "connections",
        "add",
        "slack_alerts",
        "--conn-uri",
        &format!("http://{http}/services/T000/B000/XXX"),
    ]);
    p.ok(&[
        "connections",
        "add",
        "mail",
        "--conn-uri",
        &format!("smtp://{smtp}?from=weir@example.com"),
    ]);
    // Nothing listens on port 9 of localhost.
    p.ok(&[
        "connections",
        "add",
        "nowhere",
        "--conn-uri",
        "http://127.0.0.1:9/hook",
    ]);
    p.dag(
        "alerting",
        r#"
on_failure: [{notify: webhook, connection: hook}]
tasks:
  - id: load
    type: shell
    command: |
      echo "loading"; echo "boom: table is locked" >&2; exit 3
    on_failure:
      - {notify: webhook, connection: hook}
      - {notify: slack, connection: slack_alerts}
      - {notify: email, connection: mail, to: [oncall@example.com], subject: "load failed"}
      - {notify: webhook, connection: nowhere}
  - id: announce
    type: notify
    channel: webhook
    connection: hook
    message: "run {{ run_id }} ended"
    trigger_rule: all_done
    depends_on: [load]
  - id: publish
    type: empty
    depends_on: [load]
"#,
    );
    let (code, _, _) = p.run(&["dags", "test", "alerting", "2026-01-15"]);
    assert_eq!(code, 1);
    let run = "manual__2026-01-15T00:00:00+00:00";
    let states = p.states("alerting", run);
    assert_eq!(
        states["load"], "failed",
        "an undeliverable notification changes nothing"
    );
    assert_eq!(states["announce"], "success");
    assert_eq!(states["publish"], "upstream_failed");
    let log = p.log("alerting", run, "load", 1);
    assert!(
        log.contains("INFO - webhook notification via 'hook' sent (failure)"),
        "{log}"
    );
    assert!(
        log.contains("INFO - slack notification via 'slack_alerts' sent"),
        "{log}"
    );
    assert!(
        log.contains("INFO - email notification via 'mail' sent"),
        "{log}"
    );
    assert!(
        log.contains("WARNING - webhook notification via 'nowhere' could not be delivered"),
        "{log}"
    );

    let inbox = inbox.lock().unwrap();
    let task_hook = inbox
        .webhook
        .iter()
        .find(|v| v["task_id"] == "load")
        .expect("the task's webhook");
    assert_eq!(task_hook["event"], "failure");
    assert_eq!(task_hook["dag_id"], "alerting");
    assert_eq!(task_hook["run_id"], run);
    assert_eq!(task_hook["try_number"], 1);
    assert_eq!(task_hook["state"], "failed");
    assert!(
        task_hook["error"]
            .as_str()
            .unwrap()
            .contains("boom: table is locked")
    );
    assert!(
        task_hook["log_url"]
            .as_str()
            .unwrap()
            .ends_with("/load.1.log")
    );
    let announce = inbox
        .webhook
        .iter()
        .find(|v| v["task_id"] == "announce")
        .expect("the notify task's message");
    assert_eq!(announce["message"], format!("run {run} ended"));
    let dag_hook = inbox
        .webhook
        .iter()
        .find(|v| v["task_id"].is_null())
        .expect("the DAG's on_failure");
    assert_eq!(dag_hook["state"], "failed");
    let slack = inbox.slack[0]["text"].as_str().unwrap();
    assert!(
        slack.contains("task alerting.load failed (try 1)") && slack.contains("boom"),
        "{slack}"
    );
    let mail = &inbox.mail[0];
    assert!(
        mail.contains("To: oncall@example.com") && mail.contains("Subject: load failed"),
        "{mail}"
    );
    assert!(mail.contains("boom: table is locked"), "{mail}");
}

#[test]
fn a_task_past_its_sla_sends_the_dags_sla_miss_once() {
    let inbox = Arc::new(Mutex::new(Inbox::default()));
    let (_rt, http, _smtp) = start_servers(inbox.clone());
    let p = Project::new();
    p.ok(&[
        "connections",
        "add",
        "hook",
        "--conn-uri",
        &format!("http://{http}/hook"),
    ]);
    p.dag(
        "slow_report",
        r#"
sla_miss: [{notify: webhook, connection: hook}]
tasks:
  - id: quick
    type: shell
    command: "true"
    sla: 30s
  - id: slow
    type: shell
    command: sleep 2
    sla: 500ms
"#,
    );
    p.ok(&["dags", "test", "slow_report", "2026-01-15"]);
    let inbox = inbox.lock().unwrap();
    let misses: Vec<&Value> = inbox
        .webhook
        .iter()
        .filter(|v| v["event"] == "sla_miss")
        .collect();
    assert_eq!(misses.len(), 1, "{:?}", inbox.webhook);
    assert_eq!(misses[0]["task_id"], "slow");
    assert!(
        misses[0]["message"]
            .as_str()
            .unwrap()
            .contains("has not succeeded within its sla of 500ms"),
        "{}",
        misses[0]
    );
}
