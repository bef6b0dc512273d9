//! Never twice, never stuck: a cleared try is killed, a CLI command never deactivates the DAG a
//! running scheduler keeps, runs end when their tasks or their DAG leave the folder, an unknown
//! pool is an import error, and notifications survive a kill -9 through the outbox.

use crate::support::{FAST_SETTINGS, Project, wait_for};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Whether a process group still has a living member. A killed member whose parent died too
/// stays a zombie until init reaps it; it runs nothing, so it does not count.
fn group_alive(pgid: i32) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .any(|stat| {
            // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after ')'.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
        })
}

fn manual_run_id(p: &Project, dag: &str) -> String {
    let runs = p.runs(dag);
    runs[0]["run_id"].as_str().unwrap().to_string()
}

#[test]
fn clearing_a_running_try_kills_its_process_group_within_a_heartbeat_and_runs_it_again() {
    let p = Project::new();
    // The first try records its process group and waits; the second finds the mark and ends.
    p.dag(
        "long",
        "tasks:\n  - id: wait\n    type: shell\n    command: 'if [ -f started ]; then echo again; else echo $$ > started; sleep 60; fi'\n",
    );
    let _weir = p.start();
    p.ok(&["dags", "trigger", "long"]);
    let pgid: i32 = wait_for("the first try to start", Duration::from_secs(30), || {
        std::fs::read_to_string(p.path().join("started"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
    });
    assert!(group_alive(pgid));
    p.ok(&["tasks", "clear", "long", "--task", "wait"]);
    // heartbeat_s = 0.5: the worker learns at its next heartbeat that the try is not its own.
    wait_for(
        "the cleared try's process group to be gone",
        Duration::from_millis(1500),
        || (!group_alive(pgid)).then_some(()),
    );
    let run_id = manual_run_id(&p, "long");
    wait_for("the second try to succeed", Duration::from_secs(30), || {
        (p.states("long", &run_id)["wait"] == "success").then_some(())
    });
    assert_eq!(p.tries("long", &run_id)["wait"], 2);
    let states = p.json(&["tasks", "states", "long", &run_id]);
    assert_eq!(
        states[0]["map_index"], -1,
        "an unmapped task's map_index, as Airflow's"
    );
    assert!(
        p.log("long", &run_id, "wait", 1)
            .contains("the task instance was cleared while it ran; this try was stopped"),
        "{}",
        p.log("long", &run_id, "wait", 1)
    );
}

#[test]
fn a_cli_command_leaves_the_last_good_dag_of_a_broken_file_scheduled() {
    let p = Project::new();
    let good = "schedule: every 1s\nstart_date: 2026-01-01\ncatchup: false\nmax_active_runs: 1\ntasks:\n  - {id: t, type: shell, command: 'true'}\n";
    p.dag("ticking", good);
    let _weir = p.start();
    wait_for("a first run", Duration::from_secs(30), || {
        (!p.runs("ticking").is_empty()).then_some(())
    });
    p.dag("ticking", "schedule: every 1s\ntasks: [unclosed\n");
    wait_for(
        "standalone to see the import error",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(p.path().join("standalone.log"))
                .ok()
                .filter(|log| log.contains("import error in dags/ticking.yaml"))
        },
    );
    // CLI commands read the folder too; they must not take the DAG away from the scheduler.
    let listed = p.ok(&["dags", "list"]);
    assert!(listed.contains("ticking"), "{listed}");
    p.ok(&["tasks", "list", "ticking"]);
    let errors = p.ok(&["dags", "list-import-errors"]);
    assert!(errors.contains("dags/ticking.yaml"), "{errors}");
    let before = p.runs("ticking").len();
    wait_for(
        "runs to go on from the last good DAG",
        Duration::from_secs(30),
        || (p.runs("ticking").len() >= before + 3).then_some(()),
    );
}

#[test]
fn a_run_whose_task_left_the_file_finishes_and_a_deleted_dags_run_ends() {
    let p = Project::new();
    let two = |gate: &str| {
        format!(
            "tasks:\n  - {{id: a, type: shell, command: 'while [ ! -f {gate} ]; do sleep 0.05; done'}}\n  - {{id: b, type: shell, command: 'true', depends_on: [a]}}\n"
        )
    };
    p.dag("shrinks", &two("go_shrinks"));
    p.dag("deleted", &two("go_deleted"));
    let _weir = p.start();
    p.ok(&["dags", "trigger", "shrinks"]);
    p.ok(&["dags", "trigger", "deleted"]);
    let shrinks = manual_run_id(&p, "shrinks");
    let deleted = manual_run_id(&p, "deleted");
    wait_for("both first tasks to run", Duration::from_secs(30), || {
        (p.states("shrinks", &shrinks)["a"] == "running"
            && p.states("deleted", &deleted)["a"] == "running")
            .then_some(())
    });
    // b leaves one file; the other file goes away.
    p.dag(
        "shrinks",
        "tasks:\n  - {id: a, type: shell, command: 'while [ ! -f go_shrinks ]; do sleep 0.05; done'}\n",
    );
    std::fs::remove_file(p.path().join("dags/deleted.yaml")).unwrap();
    wait_for("b to be removed", Duration::from_secs(30), || {
        (p.states("shrinks", &shrinks)["b"] == "removed"
            && p.states("deleted", &deleted)["b"] == "removed")
            .then_some(())
    });
    p.write("go_shrinks", "");
    p.write("go_deleted", "");
    let state = |dag: &str| p.runs(dag)[0]["state"].as_str().unwrap().to_string();
    wait_for("both runs to end", Duration::from_secs(30), || {
        (state("shrinks") == "success" && state("deleted") == "failed").then_some(())
    });
    assert_eq!(p.states("shrinks", &shrinks)["a"], "success");
    assert_eq!(p.states("deleted", &deleted)["a"], "success");
}

#[test]
fn an_unknown_pool_is_an_import_error_until_the_pool_exists() {
    let p = Project::new();
    p.dag(
        "pooled",
        "tasks:\n  - {id: load, type: shell, command: 'true', pool: etl}\n",
    );
    let errors = p.ok(&["dags", "list-import-errors"]);
    assert!(
        errors.contains("dags/pooled.yaml:2: task 'load' uses pool 'etl', which does not exist"),
        "{errors}"
    );
    assert!(
        errors.contains("hint: create it with `weir pools set etl SLOTS`"),
        "{errors}"
    );
    let (code, _, stderr) = p.run(&["dags", "test", "pooled", "2026-01-15"]);
    assert_ne!(code, 0, "{stderr}");
    p.ok(&["pools", "set", "etl", "2"]);
    assert_eq!(p.ok(&["dags", "list-import-errors"]).trim(), "");
    p.ok(&["dags", "test", "pooled", "2026-01-15"]);
}

/// A webhook that never answers its first request and answers every later one.
fn holding_webhook() -> (
    tokio::runtime::Runtime,
    String,
    Arc<Mutex<Vec<serde_json::Value>>>,
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let seen = got.clone();
    let addr = rt.block_on(async move {
        use axum::routing::post;
        let app = axum::Router::new().route(
            "/hook",
            post(move |axum::Json(v): axum::Json<serde_json::Value>| {
                let seen = seen.clone();
                async move {
                    let first = {
                        let mut all = seen.lock().unwrap();
                        all.push(v);
                        all.len() == 1
                    };
                    if first {
                        std::future::pending::<()>().await;
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    });
    (rt, addr, got)
}

fn outbox(p: &Project) -> Vec<weir_store::OutboxRow> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = p.database_url.clone().unwrap_or_else(|| {
            format!("sqlite://{}", p.path().join(".weir/metadata.db").display())
        });
        let store = weir_store::Store::connect(&url).await.unwrap();
        let rows = store.outbox().await.unwrap();
        store.close().await;
        rows
    })
}

#[test]
fn a_notification_in_flight_during_kill_9_arrives_after_the_restart() {
    let (_rt, addr, got) = holding_webhook();
    let p = Project::with_settings(&format!(
        "{FAST_SETTINGS}\n[notifications]\nmax_attempts = 3\nretry_delay_s = 0.2\nclaim_s = 1.0\n"
    ));
    p.ok(&[
        "connections",
        "add",
        "hook",
        "--conn-uri",
        &format!("http://{addr}/hook"),
    ]);
    p.ok(&[
        "connections",
        "add",
        "nowhere",
        "--conn-uri",
        "http://127.0.0.1:9/hook",
    ]);
    p.dag(
        "fails",
        "on_failure: [{notify: webhook, connection: hook}]\ntasks:\n  - id: boom\n    type: shell\n    command: 'exit 3'\n    on_failure: [{notify: webhook, connection: nowhere}]\n",
    );
    let mut weir = p.start();
    p.ok(&["dags", "trigger", "fails"]);
    wait_for(
        "the first webhook request (held unanswered)",
        Duration::from_secs(30),
        || (got.lock().unwrap().len() == 1).then_some(()),
    );
    // The run's failure and its notification are committed; the delivery is in flight.
    weir.kill9();
    assert_eq!(got.lock().unwrap().len(), 1);
    let _again = p.start();
    wait_for(
        "the notification to arrive after the restart",
        Duration::from_secs(30),
        || {
            let rows = outbox(&p);
            rows.iter()
                .any(|r| r.payload["target"]["connection"] == "hook" && r.state == "delivered")
                .then_some(())
        },
    );
    let requests = got.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "once per start: {requests:?}");
    assert!(
        requests
            .iter()
            .all(|r| r["event"] == "failure" && r["dag_id"] == "fails")
    );
    // The undeliverable one was retried, then recorded as failed.
    let rows = wait_for(
        "the undeliverable one to be given up",
        Duration::from_secs(30),
        || {
            let rows = outbox(&p);
            rows.iter()
                .any(|r| r.payload["target"]["connection"] == "nowhere" && r.state == "failed")
                .then_some(rows)
        },
    );
    let nowhere = rows
        .iter()
        .find(|r| r.payload["target"]["connection"] == "nowhere")
        .unwrap();
    assert_eq!(nowhere.attempts, 3);
    assert!(
        nowhere
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("could not be delivered"),
        "{nowhere:?}"
    );
    let run_id = manual_run_id(&p, "fails");
    let log = p.log("fails", &run_id, "boom", 1);
    assert!(log.contains("(attempt 3 of 3; giving up)"), "{log}");
}
