//! Assets: a producer's success queues an event for each consumer DAG; a consumer's next run
//! consumes every event queued since its last one, once, also across a `kill -9`.

use crate::support::{Project, wait_for};
use serde_json::Value;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

fn producer(p: &Project, dag: &str, asset: &str) {
    p.dag(
        dag,
        &format!(
            r#"
schedule: null
is_paused_upon_creation: false
tasks:
  - id: write
    type: shell
    command: echo wrote
    outlets: [{asset}]
"#
        ),
    );
}

/// A consumer whose task appends what triggered it to `<dag>.txt`.
fn consumer(p: &Project, dag: &str, schedule: &str, paused: bool) {
    p.dag(
        dag,
        &format!(
            r#"
schedule: {schedule}
is_paused_upon_creation: {paused}
tasks:
  - id: read
    type: shell
    command: >-
      echo "{{{{ dag_run.run_id[:16] }}}}
      {{% for name, events in triggering_asset_events.items() %}}{{{{ name }}}}={{{{ events | length }}}}:{{{{ events[0].source_dag_id }}}}/{{{{ events[0].source_task_id }}}} {{% endfor %}}"
      >> {dag}.txt
"#
        ),
    );
}

fn successes(p: &Project, dag: &str) -> Vec<Value> {
    p.runs(dag)
        .into_iter()
        .filter(|r| r["state"] == "success")
        .collect()
}

fn wait_runs(p: &Project, dag: &str, n: usize) -> Vec<Value> {
    wait_for(&format!("{n} successful runs of {dag}"), LIMIT, || {
        let runs = successes(p, dag);
        (runs.len() >= n).then_some(runs)
    })
}

fn lines(p: &Project, file: &str) -> Vec<String> {
    std::fs::read_to_string(p.path().join(file))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().to_string())
        .collect()
}

fn events(p: &Project, asset: &str) -> Vec<Value> {
    p.json(&["assets", "events", asset])
        .as_array()
        .unwrap()
        .clone()
}

fn two_updates_make_one_run_and_a_later_update_another(p: Project) {
    producer(&p, "orders_load", "orders");
    consumer(&p, "orders_report", "{assets: [orders]}", true);
    let _weir = p.start();
    wait_for("the DAGs to be parsed", LIMIT, || {
        let list = p.json(&["assets", "list"]);
        (list.as_array().unwrap().len() == 1).then_some(())
    });
    p.ok(&["dags", "trigger", "orders_load"]);
    wait_runs(&p, "orders_load", 1);
    p.ok(&["dags", "trigger", "orders_load"]);
    wait_runs(&p, "orders_load", 2);
    let queued = events(&p, "orders");
    assert_eq!(queued.len(), 2, "{queued:#?}");
    assert!(queued.iter().all(|e| e["consumed_by"] == ""), "{queued:#?}");

    p.ok(&["dags", "unpause", "orders_report"]);
    let runs = wait_runs(&p, "orders_report", 1);
    assert_eq!(runs[0]["run_type"], "asset_triggered", "{runs:#?}");
    assert_eq!(
        lines(&p, "orders_report.txt"),
        ["asset_triggered_ orders=2:orders_load/write"]
    );
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();
    let consumed = events(&p, "orders");
    assert!(
        consumed
            .iter()
            .all(|e| e["consumed_by"] == format!("orders_report/{run_id}")),
        "{consumed:#?}"
    );

    p.ok(&["dags", "trigger", "orders_load"]);
    wait_runs(&p, "orders_report", 2);
    assert_eq!(
        lines(&p, "orders_report.txt"),
        [
            "asset_triggered_ orders=2:orders_load/write",
            "asset_triggered_ orders=1:orders_load/write"
        ]
    );
    assert_eq!(p.runs("orders_report").len(), 2);

    let list = p.json(&["assets", "list"]);
    assert_eq!(list[0]["asset"], "orders");
    assert_eq!(list[0]["produced_by"], "orders_load.write");
    assert_eq!(list[0]["consumed_by"], "orders_report");
    assert_eq!(list[0]["events"], 3);
    assert!(list[0]["last_event"].as_str().unwrap().ends_with("+00:00"));
    let table = p.ok(&["assets", "list"]);
    assert!(table.contains("orders_load.write"), "{table}");
    let limited = p.json(&["assets", "events", "--limit", "1"]);
    assert_eq!(limited.as_array().unwrap().len(), 1);
    assert_eq!(limited[0]["source_dag_id"], "orders_load");
}

#[test]
fn two_updates_before_the_consumer_runs_make_one_run_that_sees_both() {
    two_updates_make_one_run_and_a_later_update_another(Project::new());
}

#[test]
fn two_updates_make_one_run_on_postgres() {
    if let Some(p) = Project::on_postgres() {
        two_updates_make_one_run_and_a_later_update_another(p);
    }
}

#[test]
fn all_needs_every_asset_and_any_runs_on_either() {
    let p = Project::new();
    producer(&p, "load_a", "a");
    producer(&p, "load_b", "b");
    consumer(&p, "needs_all", "{assets: [a, b]}", false);
    consumer(&p, "needs_any", "{assets: {any: [a, {all: [b]}]}}", false);
    let _weir = p.start();
    wait_for("the DAGs to be parsed", LIMIT, || {
        (p.json(&["assets", "list"]).as_array().unwrap().len() == 2).then_some(())
    });
    p.ok(&["dags", "trigger", "load_a"]);
    wait_runs(&p, "needs_any", 1);
    assert_eq!(
        lines(&p, "needs_any.txt"),
        ["asset_triggered_ a=1:load_a/write"]
    );
    assert!(p.runs("needs_all").is_empty());
    p.ok(&["dags", "trigger", "load_b"]);
    wait_runs(&p, "needs_all", 1);
    wait_runs(&p, "needs_any", 2);
    assert_eq!(
        lines(&p, "needs_all.txt"),
        ["asset_triggered_ a=1:load_a/write b=1:load_b/write"]
    );
    assert_eq!(p.runs("needs_all").len(), 1);
}

fn a_kill_between_the_producer_and_the_consumer_loses_and_repeats_nothing(p: Project) {
    producer(&p, "orders_load", "orders");
    consumer(&p, "orders_report", "{assets: [orders]}", true);
    let mut weir = p.start();
    p.ok(&["dags", "trigger", "orders_load"]);
    p.ok(&["dags", "trigger", "orders_load"]);
    wait_runs(&p, "orders_load", 2);
    weir.kill9();
    assert_eq!(events(&p, "orders").len(), 2);
    p.ok(&["dags", "unpause", "orders_report"]);
    let _weir = p.start();
    let runs = wait_runs(&p, "orders_report", 1);
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();
    let consumed = events(&p, "orders");
    assert_eq!(consumed.len(), 2, "{consumed:#?}");
    assert!(
        consumed
            .iter()
            .all(|e| e["consumed_by"] == format!("orders_report/{run_id}")),
        "{consumed:#?}"
    );
    assert_eq!(p.runs("orders_report").len(), 1);
    assert_eq!(
        lines(&p, "orders_report.txt"),
        ["asset_triggered_ orders=2:orders_load/write"]
    );
}

#[test]
fn a_kill_9_before_the_consumer_runs_loses_no_event_and_consumes_none_twice() {
    a_kill_between_the_producer_and_the_consumer_loses_and_repeats_nothing(Project::new());
}

#[test]
fn a_kill_9_before_the_consumer_runs_on_postgres() {
    if let Some(p) = Project::on_postgres() {
        a_kill_between_the_producer_and_the_consumer_loses_and_repeats_nothing(p);
    }
}

#[test]
fn bad_asset_schedules_are_errors_with_the_line_and_a_hint() {
    let p = Project::new();
    let cases = [
        (
            "{asset: [a]}",
            "unknown key 'asset' in schedule",
            "did you mean 'assets'?",
        ),
        ("{assets: []}", "needs at least one asset", "assets: [a, b]"),
        (
            "{assets: {either: [a, b]}}",
            "unknown asset condition 'either'",
            "assets: {any",
        ),
        (
            "{assets: {any: a}}",
            "'any' in an asset condition takes a list",
            "assets: {any",
        ),
        (
            "{assets: [3]}",
            "an asset condition must be an asset name",
            "assets: {any",
        ),
    ];
    for (schedule, message, hint) in cases {
        let path = p.dag(
            "bad",
            &format!("schedule: {schedule}\ntasks:\n  - id: t\n    type: empty\n"),
        );
        let (code, stdout, stderr) = p.run(&["dags", "validate", path.to_str().unwrap()]);
        let out = format!("{stdout}{stderr}");
        assert_eq!(code, 1, "{schedule}: {out}");
        assert!(out.contains("bad.yaml:1"), "{schedule}: {out}");
        assert!(out.contains(message), "{schedule}: {out}");
        assert!(out.contains(hint), "{schedule}: {out}");
    }
}
