//! trigger_dag and wait_for across DAGs: validation against the DAG folder, a parent that
//! triggers a child with conf and waits for it (deferred, no slot held), `reset_dag_run`,
//! `skip_when_already_exists`, and external-task sensors in modes reschedule and defer that
//! leave the only slot free, succeed when the other DAG's task does, and time out.

use crate::support::{FAST_SETTINGS, Project, wait_for};
use serde_json::Value;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

fn settings(parallelism: u32) -> String {
    format!(
        "{}\n[triggerer]\npoll_s = 0.05\n",
        FAST_SETTINGS.replace("parallelism = 32", &format!("parallelism = {parallelism}"))
    )
}

/// Waits until the DAG processor has stored `n` DAGs.
fn parsed(p: &Project, n: usize) {
    wait_for("the DAGs to be parsed", LIMIT, || {
        (p.json(&["dags", "list"]).as_array().unwrap().len() == n).then_some(())
    });
}

/// The run of `dag` with this id once it has finished.
fn finished_run(p: &Project, dag: &str, run_id: &str) -> Value {
    wait_for(&format!("run {run_id} of {dag} to finish"), LIMIT, || {
        p.runs(dag)
            .into_iter()
            .find(|r| r["run_id"] == run_id && (r["state"] == "success" || r["state"] == "failed"))
    })
}

fn states_json(p: &Project, dag: &str, run_id: &str) -> Vec<Value> {
    p.json(&["tasks", "states", dag, run_id])
        .as_array()
        .unwrap()
        .clone()
}

fn instance(p: &Project, dag: &str, run_id: &str, task: &str) -> Value {
    states_json(p, dag, run_id)
        .into_iter()
        .find(|t| t["task_id"] == task)
        .unwrap_or_else(|| panic!("no {task} in {dag} {run_id}"))
}

const CHILD: &str = r#"
schedule: null
is_paused_upon_creation: false
params: {fail: "no"}
tasks:
  - id: report
    type: shell
    command: echo "{{ dag_run.conf.date }} {{ params.fail }}" >> child.txt; test "{{ params.fail }}" != "yes"
"#;

fn parent(extra: &str, logical_date: &str) -> String {
    format!(
        r#"
schedule: null
is_paused_upon_creation: false
tasks:
  - id: kick
    type: trigger_dag
    dag_id: child
    conf: {{date: "{{{{ ds }}}}", fail: "{{{{ dag_run.conf.get('fail', 'no') }}}}"}}
    logical_date: "{logical_date}"
    wait_for_completion: true
    poke_interval: 0.1
{extra}
  - id: after
    type: shell
    command: echo "{{{{ ti.xcom_pull(task_ids='kick').run_id }}}}" > after.txt
    depends_on: [kick]
"#
    )
}

#[test]
fn a_parent_triggers_a_child_with_conf_waits_deferred_and_fails_when_the_child_fails() {
    let p = Project::with_settings(&settings(32));
    p.dag("child", CHILD);
    p.dag("parent", &parent("", "{{ logical_date }}"));
    p.dag(
        "parent_reset",
        &parent("    reset_dag_run: true", "2026-03-01"),
    );
    p.dag(
        "parent_skip",
        &parent("    skip_when_already_exists: true", "2026-03-01"),
    );
    p.dag("parent_plain", &parent("", "2026-03-01"));
    let _weir = p.start();
    parsed(&p, 5);

    // The child sees the conf; the parent waits for it, then goes on with its run id.
    p.ok(&["dags", "trigger", "parent", "--logical-date", "2026-03-01"]);
    let parent_run = "manual__2026-03-01T00:00:00+00:00";
    let run = finished_run(&p, "parent", parent_run);
    assert_eq!(run["state"], "success", "{run}");
    let child_runs = p.runs("child");
    assert_eq!(child_runs.len(), 1, "{child_runs:#?}");
    assert_eq!(child_runs[0]["state"], "success");
    assert_eq!(
        child_runs[0]["triggered_by"],
        format!("parent/{parent_run}/kick")
    );
    let child_run = child_runs[0]["run_id"].as_str().unwrap().to_string();
    assert_eq!(child_run, "manual__2026-03-01T00:00:00+00:00");
    assert_eq!(
        std::fs::read_to_string(p.path().join("child.txt")).unwrap(),
        "2026-03-01 no\n"
    );
    assert_eq!(
        std::fs::read_to_string(p.path().join("after.txt")).unwrap(),
        format!("{child_run}\n")
    );
    let kick_log = p.log("parent", parent_run, "kick", 1);
    assert!(
        kick_log.contains(&format!(
            "waiting for run {child_run} of DAG child to be success"
        )),
        "{kick_log}"
    );
    assert!(
        kick_log.contains("sensor condition met: the run of child is success (triggerer)"),
        "{kick_log}"
    );

    // The child fails: so does the parent's trigger (failed_states defaults to failed).
    p.ok(&[
        "dags",
        "trigger",
        "parent",
        "--logical-date",
        "2026-03-02",
        "--conf",
        r#"{"fail": "yes"}"#,
    ]);
    let failing = "manual__2026-03-02T00:00:00+00:00";
    let run = finished_run(&p, "parent", failing);
    assert_eq!(run["state"], "failed", "{run}");
    let states = p.states("parent", failing);
    assert_eq!(states["kick"], "failed", "{states:?}");
    assert_eq!(states["after"], "upstream_failed", "{states:?}");
    assert!(
        p.log("parent", failing, "kick", 1)
            .contains("sensor failed: the run of child is failed"),
    );

    // reset_dag_run: the child's run of 2026-03-01 runs again; the parent waits for it.
    p.ok(&["dags", "trigger", "parent_reset"]);
    let reset = wait_for("a run of parent_reset", LIMIT, || {
        p.runs("parent_reset").first().cloned()
    });
    let reset = finished_run(&p, "parent_reset", reset["run_id"].as_str().unwrap());
    assert_eq!(reset["state"], "success", "{reset}");
    assert_eq!(
        std::fs::read_to_string(p.path().join("child.txt"))
            .unwrap()
            .matches("2026-03-01 no")
            .count(),
        2,
        "the reset child run ran again"
    );
    assert_eq!(p.runs("child").len(), 2, "no new child run, one reset");

    // skip_when_already_exists: the trigger is skipped, and what follows only from it.
    p.ok(&["dags", "trigger", "parent_skip"]);
    let skip = wait_for("a run of parent_skip", LIMIT, || {
        p.runs("parent_skip").first().cloned()
    });
    let skip_id = skip["run_id"].as_str().unwrap().to_string();
    finished_run(&p, "parent_skip", &skip_id);
    let kick = instance(&p, "parent_skip", &skip_id, "kick");
    assert_eq!(kick["state"], "skipped", "{kick}");
    assert!(
        kick["reason"]
            .as_str()
            .unwrap()
            .contains("a run of child at 2026-03-01T00:00:00+00:00 exists"),
        "{kick}"
    );
    assert_eq!(p.states("parent_skip", &skip_id)["after"], "skipped");

    // Neither flag: an existing run is refused with a hint.
    p.ok(&["dags", "trigger", "parent_plain"]);
    let plain = wait_for("a run of parent_plain", LIMIT, || {
        p.runs("parent_plain").first().cloned()
    });
    let plain_id = plain["run_id"].as_str().unwrap().to_string();
    let plain = finished_run(&p, "parent_plain", &plain_id);
    assert_eq!(plain["state"], "failed");
    let log = p.log("parent_plain", &plain_id, "kick", 1);
    assert!(
        log.contains("a run of 'child' at 2026-03-01T00:00:00+00:00 already exists")
            && log.contains("hint: set reset_dag_run: true"),
        "{log}"
    );
    assert_eq!(p.runs("child").len(), 2);
}

const UPSTREAM: &str = r#"
schedule: null
is_paused_upon_creation: false
tasks:
  - id: load
    type: shell
    command: echo loaded
"#;

fn sensors(timeout: &str, extra_r: &str, extra_d: &str) -> String {
    format!(
        r#"
schedule: null
is_paused_upon_creation: false
tasks:
  - id: wait_r
    type: wait_for
    dag_id: raw_events
    task_id: load
    execution_delta: 1h
    mode: reschedule
    poke_interval: 0.1
    timeout: {timeout}
{extra_r}
  - id: wait_d
    type: wait_for
    dag_id: raw_events
    task_id: load
    execution_delta: 1h
    poke_interval: 0.1
    timeout: {timeout}
{extra_d}
  - id: busy
    type: shell
    command: echo busy > busy.txt
"#
    )
}

#[test]
fn sensors_in_reschedule_and_defer_mode_leave_the_only_slot_free_and_succeed_or_time_out() {
    let p = Project::with_settings(&settings(1));
    p.dag("raw_events", UPSTREAM);
    p.dag(
        "report",
        &sensors("120", "    priority_weight: 10", "    priority_weight: 10"),
    );
    p.dag(
        "report_late",
        &sensors("1", "    soft_fail: true", "    retries: 2"),
    );
    let _weir = p.start();
    parsed(&p, 3);

    p.ok(&[
        "dags",
        "trigger",
        "report",
        "--logical-date",
        "2026-03-01T01:00:00Z",
    ]);
    let run = "manual__2026-03-01T01:00:00+00:00";
    // With one slot in all, `busy` runs while both sensors wait: neither holds the slot.
    let seen = wait_for("busy to run while both sensors wait", LIMIT, || {
        let states = p.states("report", run);
        let r = states["wait_r"].as_str();
        let waiting_r = matches!(r, "up_for_reschedule" | "queued" | "running");
        (states["busy"] == "success" && states["wait_d"] == "deferred" && waiting_r)
            .then_some(states)
    });
    assert_eq!(seen["wait_d"], "deferred", "{seen:?}");
    let wait_d = instance(&p, "report", run, "wait_d");
    assert!(
        wait_d["reason"]
            .as_str()
            .unwrap()
            .starts_with("waiting for task raw_events.load of 2026-03-01T00:00:00+00:00 to be success (no instance of raw_events.load at that date yet"),
        "{wait_d}"
    );
    // A reschedule gives its slot back between pokes, and is not a retry.
    wait_for("the reschedule sensor to poke again", LIMIT, || {
        let log = p.log("report", run, "wait_r", 1);
        (log.matches("waiting for task raw_events.load").count() >= 2).then_some(())
    });
    assert_eq!(p.runs("report")[0]["state"], "running");

    // The other DAG's task at the logical date one hour earlier succeeds: so do the sensors.
    p.ok(&[
        "dags",
        "trigger",
        "raw_events",
        "--logical-date",
        "2026-03-01T00:00:00Z",
    ]);
    let done = finished_run(&p, "report", run);
    assert_eq!(done["state"], "success", "{done}");
    let tries = p.tries("report", run);
    assert_eq!(tries["wait_r"], 1, "{tries:?}");
    assert_eq!(tries["wait_d"], 1, "{tries:?}");
    assert!(
        p.log("report", run, "wait_d", 1)
            .contains("sensor condition met: raw_events.load is success (triggerer)")
    );

    // No upstream run at that date: both time out; soft_fail skips, a timeout never retries.
    p.ok(&[
        "dags",
        "trigger",
        "report_late",
        "--logical-date",
        "2026-03-05T01:00:00Z",
    ]);
    let late = "manual__2026-03-05T01:00:00+00:00";
    let done = finished_run(&p, "report_late", late);
    let states = p.states("report_late", late);
    assert_eq!(states["wait_r"], "skipped", "{states:?}");
    assert_eq!(states["wait_d"], "failed", "{states:?}");
    assert_eq!(done["state"], "failed", "{done}");
    assert_eq!(p.tries("report_late", late)["wait_d"], 1);
    let log = p.log("report_late", late, "wait_d", 1);
    assert!(
        log.contains("sensor timed out after")
            && log.contains("waiting for task raw_events.load of 2026-03-05T00:00:00+00:00"),
        "{log}"
    );
    let log = p.log("report_late", late, "wait_r", 1);
    assert!(log.contains("skipped (soft_fail)"), "{log}");
}

#[test]
fn a_trigger_or_sensor_naming_an_unknown_dag_or_task_is_refused_at_validation_with_file_and_line() {
    let p = Project::new();
    p.dag("raw_events", "tasks:\n  - id: load\n    type: empty\n");
    p.dag(
        "parent",
        "tasks:\n  - id: start\n    type: empty\n  - id: kick\n    type: trigger_dag\n    dag_id: raw_event\n  - id: upstream_done\n    type: wait_for\n    dag_id: raw_events\n    task_id: lod\n  - id: elsewhere\n    type: wait_for\n    dag_id: nowhere\n    task_id: load\n  - id: fine\n    type: wait_for\n    dag_id: raw_events\n    task_id: load\n",
    );
    let (code, stdout, stderr) = p.run(&["dags", "validate"]);
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains(
            "error: task 'kick' of DAG 'parent' triggers DAG 'raw_event', which is not in the DAG folder\n  --> dags/parent.yaml:4\nhint: did you mean 'raw_events'?"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "error: task 'upstream_done' of DAG 'parent' waits for task 'lod' of DAG 'raw_events', which has no such task\n  --> dags/parent.yaml:7\nhint: did you mean 'load'?"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "error: task 'elsewhere' of DAG 'parent' waits for DAG 'nowhere', which is not in the DAG folder\n  --> dags/parent.yaml:11"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("task 'fine' of DAG"), "{stderr}");
    assert!(stderr.contains("3 problems in 1 of 2 files"), "{stderr}");
    assert!(!stderr.contains("raw_events.yaml"), "{stderr}");
}

/// A local endpoint that answers 503 until `ready` turns true, then 200.
fn endpoint(ready: std::sync::Arc<std::sync::atomic::AtomicBool>) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let status = if ready.load(std::sync::atomic::Ordering::SeqCst) {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    port
}

#[test]
fn sensors_wait_for_a_file_a_query_a_time_and_an_http_endpoint() {
    let ready = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let port = endpoint(ready.clone());
    let p = Project::with_settings(&settings(8));
    p.dag(
        "arrivals",
        &format!(
            r#"
schedule: null
is_paused_upon_creation: false
tasks:
  - id: file
    type: wait_for
    file: "incoming/{{{{ ds }}}}/*.csv"
    poke_interval: 0.1
  - id: query
    type: wait_for
    sql: "SELECT count(*) FROM glob('flag*.txt')"
    connection: warehouse
    mode: poke
    poke_interval: 0.1
  - id: clock
    type: wait_for
    time: "00:00"
  - id: endpoint
    type: wait_for
    http: "http://127.0.0.1:{port}/ready"
    mode: reschedule
    poke_interval: 0.1
"#
        ),
    );
    let _weir = p.start();
    parsed(&p, 1);
    p.ok(&[
        "dags",
        "trigger",
        "arrivals",
        "--logical-date",
        "2026-03-01",
    ]);
    let run = "manual__2026-03-01T00:00:00+00:00";
    // A time of day on a date already past holds at once; the others wait.
    let states = wait_for("the sensors to wait", LIMIT, || {
        let s = p.states("arrivals", run);
        let waiting = s["file"] == "deferred"
            && s["query"] == "running"
            && matches!(
                s["endpoint"].as_str(),
                "up_for_reschedule" | "queued" | "running"
            );
        (waiting && s["clock"] == "success").then_some(s)
    });
    assert_eq!(states["clock"], "success");
    wait_for("the endpoint sensor to poke again", LIMIT, || {
        let log = p.log("arrivals", run, "endpoint", 1);
        (log.matches("answered 503 Service Unavailable").count() >= 2).then_some(())
    });
    assert!(
        instance(&p, "arrivals", run, "file")["reason"]
            .as_str()
            .unwrap()
            .contains("incoming/2026-03-01/*.csv"),
    );

    std::fs::create_dir_all(p.path().join("incoming/2026-03-01")).unwrap();
    std::fs::write(p.path().join("incoming/2026-03-01/a.csv"), "x\n").unwrap();
    std::fs::write(p.path().join("flag1.txt"), "go\n").unwrap();
    ready.store(true, std::sync::atomic::Ordering::SeqCst);
    let done = finished_run(&p, "arrivals", run);
    assert_eq!(done["state"], "success", "{:?}", p.states("arrivals", run));
    assert!(
        p.log("arrivals", run, "file", 1)
            .contains("sensor condition met: found ")
            && p.log("arrivals", run, "query", 1)
                .contains("sensor condition met: the query returned 1")
            && p.log("arrivals", run, "endpoint", 1)
                .contains("answered 200 OK"),
    );
}
