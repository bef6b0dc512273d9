//! `weir standalone` serving the REST API and `/metrics` on its port: what an HTTP client sees
//! while the scheduler runs.

use crate::support::{Project, wait_for};
use serde_json::{Value, json};
use std::time::Duration;

fn http(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, String) {
    crate::support::http(
        base,
        method,
        path,
        token,
        body.map(|b| b.to_string()).as_deref(),
    )
}

#[test]
fn standalone_serves_the_api_and_metrics_of_the_runs_it_schedules() {
    let p = Project::new();
    p.dag(
        "hello",
        "schedule: null\ntasks:\n  - {id: say, type: shell, command: 'echo hi'}\n  - {id: done, type: empty, depends_on: [say]}\n",
    );
    let mut create = p.weir();
    create
        .args([
            "users",
            "create",
            "--username",
            "viewer",
            "--role",
            "viewer",
            "--password-stdin",
        ])
        .write_stdin("viewer-pass-1\n");
    assert!(create.output().unwrap().status.success());
    let mut create = p.weir();
    create
        .args([
            "users",
            "create",
            "--username",
            "ops",
            "--role",
            "op",
            "--password-stdin",
        ])
        .write_stdin("ops-pass-123\n");
    assert!(create.output().unwrap().status.success());

    let _weir = p.start();
    let base = wait_for("the webserver's URL", Duration::from_secs(30), || {
        let log = std::fs::read_to_string(p.path().join("standalone.log")).unwrap_or_default();
        log.split("web UI and REST API: ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(|url| url.replace("localhost", "127.0.0.1"))
    });
    let token = |user: &str, password: &str| {
        let (status, body) = http(
            &base,
            "POST",
            "/auth/token",
            None,
            Some(&json!({"username": user, "password": password})),
        );
        assert_eq!(status, 201, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let ops = token("ops", "ops-pass-123");
    let viewer = token("viewer", "viewer-pass-1");

    let (status, _) = http(&base, "GET", "/metrics", None, None);
    assert_eq!(status, 401);
    let (status, body) = http(
        &base,
        "POST",
        "/api/v2/dags/hello/dagRuns",
        Some(&viewer),
        Some(&json!({"conf": {}})),
    );
    assert_eq!(status, 403, "{body}");
    let (status, body) = http(
        &base,
        "POST",
        "/api/v2/dags/hello/dagRuns",
        Some(&ops),
        Some(&json!({"logical_date": null})),
    );
    assert_eq!(status, 200, "{body}");
    let run_id = serde_json::from_str::<Value>(&body).unwrap()["dag_run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v2/dags/hello/dagRuns/{}", run_id.replace('+', "%2B"));
    wait_for(
        "the triggered run to succeed",
        Duration::from_secs(30),
        || {
            let (_, body) = http(&base, "GET", &path, Some(&viewer), None);
            (serde_json::from_str::<Value>(&body).ok()?["state"] == "success").then_some(())
        },
    );
    let (status, health) = http(&base, "GET", "/api/v2/monitor/health", None, None);
    assert_eq!(status, 200);
    assert!(
        health.contains("\"scheduler\":{\"status\":\"healthy\""),
        "{health}"
    );

    let (status, metrics) = http(&base, "GET", "/metrics", Some(&viewer), None);
    assert_eq!(status, 200, "{metrics}");
    for line in [
        "weir_scheduler_loop_duration_seconds",
        "weir_task_duration_seconds",
        "weir_dag_run_duration_seconds",
        "weir_executor_open_slots",
        "weir_task_instances{state=\"success\"} 2",
        "weir_queue_depth 0",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
}
