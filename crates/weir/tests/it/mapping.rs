//! Dynamic task mapping (`map_over`) and task groups, through real runs of `weir`: what
//! `weir tasks states`, `dags test` and `dags validate` show.

use crate::support::{FAST_SETTINGS, Project, wait_for};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

const RUN: &str = "manual__2026-01-15T00:00:00+00:00";

/// One task instance as `weir tasks states` shows it.
#[derive(Debug, Clone, PartialEq)]
struct Instance {
    task_id: String,
    map_index: i64,
    state: String,
    try_number: i64,
    reason: Option<String>,
}

fn instances(p: &Project, dag: &str, run_id: &str) -> Vec<Instance> {
    p.json(&["tasks", "states", dag, run_id])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| Instance {
            task_id: r["task_id"].as_str().unwrap().to_string(),
            map_index: r["map_index"].as_i64().unwrap(),
            state: r["state"].as_str().unwrap().to_string(),
            try_number: r["try_number"].as_i64().unwrap(),
            reason: r["reason"].as_str().map(String::from),
        })
        .collect()
}

/// The instances of `task`, by map index.
fn of(all: &[Instance], task: &str) -> Vec<Instance> {
    let mut out: Vec<Instance> = all.iter().filter(|i| i.task_id == task).cloned().collect();
    out.sort_by_key(|i| i.map_index);
    out
}

#[test]
fn mapping_over_a_thousand_xcom_items_runs_them_within_parallelism_and_downstream_pulls_them() {
    let p = Project::with_settings(&FAST_SETTINGS.replace("parallelism = 32", "parallelism = 16"));
    let events = p.path().join("events.txt");
    p.dag(
        "wide",
        &format!(
            r#"
tasks:
  - id: list
    type: shell
    command: echo "[$(seq -s, 0 999)]"
    xcom: last_line
  - id: load
    type: shell
    command: |
      echo "s $(date +%s%N)" >> {events}
      echo "e $(date +%s%N)" >> {events}
      echo {{{{ item * 2 }}}}
    xcom: last_line
    map_over: "{{{{ ti.xcom_pull(task_ids='list') }}}}"
    depends_on: [list]
  - id: collect
    type: shell
    command: echo '{{{{ ti.xcom_pull(task_ids="load") | tojson }}}}' > collected.json
    depends_on: [load]
"#,
            events = events.display()
        ),
    );
    let stdout = p.ok(&["dags", "test", "wide", "2026-01-15"]);
    assert!(stdout.contains("load[999]"), "{stdout}");
    assert!(stdout.contains(&format!("run {RUN} success")), "{stdout}");
    let all = instances(&p, "wide", RUN);
    let load = of(&all, "load");
    assert_eq!(load.len(), 1000, "one instance per item");
    assert!(
        load.iter()
            .enumerate()
            .all(|(i, ti)| ti.map_index == i as i64 && ti.state == "success" && ti.try_number == 1),
        "{:?}",
        load.iter().find(|t| t.state != "success")
    );
    assert_eq!(of(&all, "collect")[0].state, "success");
    let collected: Value =
        serde_json::from_str(&std::fs::read_to_string(p.path().join("collected.json")).unwrap())
            .unwrap();
    let expected: Vec<i64> = (0..1000).map(|i| i * 2).collect();
    assert_eq!(collected, serde_json::json!(expected), "in map_index order");
    // The most tries running at once, from their start and end times.
    let mut marks: Vec<(u128, i32)> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| {
            let (kind, at) = l.split_once(' ').unwrap();
            // An end sorts before a start at the same instant.
            (at.parse().unwrap(), if kind == "s" { 1 } else { -1 })
        })
        .collect();
    assert_eq!(marks.len(), 2000);
    marks.sort();
    let (mut running, mut most) = (0, 0);
    for (_, step) in marks {
        running += step;
        most = most.max(running);
    }
    assert!(most <= 16, "{most} tries ran at once with parallelism 16");
    assert!(
        most > 1,
        "the items ran in parallel (at most {most} at once)"
    );
}

#[test]
fn clearing_one_item_reruns_only_that_item() {
    let p = Project::new();
    p.dag(
        "five",
        r#"
tasks:
  - id: load
    type: shell
    command: echo "{{ item }} {{ map_index }}" >> ran.txt
    map_over: [a, b, c, d, e]
"#,
    );
    p.ok(&["dags", "test", "five", "2026-01-15"]);
    let ran = |p: &Project| {
        let mut lines: Vec<String> = std::fs::read_to_string(p.path().join("ran.txt"))
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        lines.sort();
        lines
    };
    assert_eq!(ran(&p), ["a 0", "b 1", "c 2", "d 3", "e 4"]);
    let out = p.ok(&["tasks", "clear", "five", "-t", "^load$", "--map-index", "3"]);
    assert!(out.contains("cleared 1 task instances"), "{out}");
    let mut weir = p.start();
    let load = wait_for("item 3 to run again", Duration::from_secs(60), || {
        let load = of(&instances(&p, "five", RUN), "load");
        (load[3].state == "success" && load[3].try_number == 2).then_some(load)
    });
    let runs = wait_for("the run to succeed", Duration::from_secs(30), || {
        let runs = p.runs("five");
        (runs[0]["state"] == "success").then_some(runs)
    });
    weir.kill9();
    assert_eq!(runs.len(), 1);
    let tries: Vec<i64> = load.iter().map(|t| t.try_number).collect();
    assert_eq!(tries, [1, 1, 1, 2, 1], "only item 3 ran again");
    assert_eq!(ran(&p), ["a 0", "b 1", "c 2", "d 3", "d 3", "e 4"]);
    // A mapped task cannot run alone: its items exist only once its upstream tasks ran.
    let (code, _, stderr) = p.run(&["tasks", "run", "five", "load", "2026-01-20"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("task 'load' of DAG 'five' is mapped (map_over)"),
        "{stderr}"
    );
}

#[test]
fn mapping_over_an_empty_list_skips_the_task_and_what_follows_by_trigger_rules() {
    let p = Project::new();
    p.dag(
        "none",
        r#"
params: {files: []}
tasks:
  - id: load
    type: shell
    command: echo {{ item }}
    map_over: "{{ params.files }}"
  - {id: after, type: shell, command: "true", depends_on: [load]}
  - {id: cleanup, type: shell, command: "true", depends_on: [load], trigger_rule: all_done}
"#,
    );
    let stdout = p.ok(&["dags", "test", "none", "2026-01-15"]);
    assert!(
        stdout.contains("map_over gave an empty list: no item to run"),
        "{stdout}"
    );
    let all = instances(&p, "none", RUN);
    let load = of(&all, "load");
    assert_eq!(load.len(), 1);
    assert_eq!((load[0].map_index, load[0].state.as_str()), (-1, "skipped"));
    assert_eq!(
        load[0].reason.as_deref(),
        Some("map_over gave an empty list: no item to run")
    );
    assert_eq!(of(&all, "after")[0].state, "skipped");
    assert_eq!(of(&all, "cleanup")[0].state, "success");
    // The same list from a run's conf maps over its items.
    p.ok(&[
        "dags",
        "test",
        "none",
        "2026-01-16",
        "--conf",
        r#"{"files": ["x", "y"]}"#,
    ]);
    let all = instances(&p, "none", "manual__2026-01-16T00:00:00+00:00");
    assert_eq!(of(&all, "load").len(), 2);
    assert_eq!(of(&all, "after")[0].state, "success");
}

#[test]
fn a_mapping_of_two_keys_runs_their_cross_product() {
    let p = Project::new();
    p.dag(
        "grid",
        r#"
tasks:
  - id: files
    type: shell
    command: echo '["a.csv", "b.csv", "c.csv"]'
    xcom: last_line
  - id: load
    type: shell
    command: echo "{{ item.file }} {{ item.region }} {{ map_index }}" >> loaded.txt
    map_over: {file: "{{ ti.xcom_pull(task_ids='files') }}", region: [kr, jp]}
    depends_on: [files]
"#,
    );
    let stdout = p.ok(&["dags", "test", "grid", "2026-01-15"]);
    assert!(stdout.contains("load[5]"), "{stdout}");
    let load = of(&instances(&p, "grid", RUN), "load");
    assert_eq!(load.len(), 6);
    assert!(load.iter().all(|t| t.state == "success"), "{load:?}");
    let lines: BTreeSet<String> = std::fs::read_to_string(p.path().join("loaded.txt"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let expected: BTreeSet<String> = [
        "a.csv kr 0",
        "a.csv jp 1",
        "b.csv kr 2",
        "b.csv jp 3",
        "c.csv kr 4",
        "c.csv jp 5",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(lines, expected);
}

#[test]
fn a_mapped_value_that_is_not_a_list_or_too_long_fails_the_task_with_a_clear_message() {
    let p = Project::with_settings(
        &format!("{FAST_SETTINGS}\n[core]\nmax_map_length = 3\n")
            .replace("[core]\nparallelism = 32\n", ""),
    );
    p.dag(
        "bad",
        r#"
tasks:
  - {id: word, type: shell, command: echo hello, xcom: last_line}
  - id: load
    type: shell
    command: echo {{ item }}
    map_over: "{{ ti.xcom_pull(task_ids='word') }}"
    depends_on: [word]
  - {id: after, type: shell, command: "true", depends_on: [load]}
"#,
    );
    let (code, stdout, stderr) = p.run(&["dags", "test", "bad", "2026-01-15"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let all = instances(&p, "bad", RUN);
    let load = of(&all, "load");
    assert_eq!(load[0].state, "failed");
    let reason = load[0].reason.clone().unwrap_or_default();
    assert!(
        reason.contains(
            "map_over of task 'load' in DAG 'bad' (dags/bad.yaml:4) must give a list, but it gave a string: \"hello\""
        ),
        "{reason}"
    );
    assert!(stdout.contains(&reason), "dags test shows why: {stdout}");
    assert_eq!(of(&all, "after")[0].state, "upstream_failed");

    p.dag(
        "long",
        "tasks:\n  - id: load\n    type: shell\n    command: echo {{ item }}\n    map_over: [1, 2, 3, 4]\n",
    );
    let (code, stdout, _) = p.run(&["dags", "test", "long", "2026-01-15"]);
    assert_eq!(code, 1, "{stdout}");
    let load = of(&instances(&p, "long", RUN), "load");
    let reason = load[0].reason.clone().unwrap_or_default();
    assert!(
        reason.contains(
            "map_over of task 'load' in DAG 'long' (dags/long.yaml:2) gave 4 items, more than [core] max_map_length (3)"
        ),
        "{reason}"
    );
    assert!(reason.contains("WEIR__CORE__MAX_MAP_LENGTH"), "{reason}");
}

#[test]
fn bad_map_over_and_bad_groups_are_validation_errors_with_file_and_line() {
    let p = Project::new();
    p.dag(
        "scalar",
        "tasks:\n  - id: load\n    type: shell\n    command: echo {{ item }}\n    map_over: 5\n  - id: grid\n    type: shell\n    command: echo\n    map_over: {file: a.csv}\n",
    );
    p.dag(
        "groups",
        r#"groups:
  extract: {depends_on: ["group:load"]}
  load: {depends_on: ["group:extract"]}
tasks:
  - {id: e1, type: shell, command: "true", group: extract}
  - {id: l1, type: shell, command: "true", group: load}
  - {id: r, type: shell, command: "true", group: reprot}
  - {id: x, type: shell, command: "true", depends_on: ["group:extrct"]}
"#,
    );
    let (code, stdout, stderr) = p.run(&["dags", "validate"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    for (message, at) in [
        (
            "error: map_over of task 'load' in DAG 'scalar' must be a list, a template that renders to a list, or a mapping of lists, not a whole number",
            "dags/scalar.yaml:5",
        ),
        (
            "error: map_over key 'file' of task 'grid' in DAG 'scalar' must be a list or a template that renders to one, not a string",
            "dags/scalar.yaml:9",
        ),
        (
            "error: task groups form a dependency cycle in DAG 'groups': extract -> load -> extract",
            "dags/groups.yaml:2",
        ),
        (
            "error: task 'r' in DAG 'groups' is in unknown group 'reprot'",
            "dags/groups.yaml:7",
        ),
        (
            "error: task 'x' in DAG 'groups' depends on unknown group 'extrct'",
            "dags/groups.yaml:8",
        ),
    ] {
        assert!(
            stderr.contains(&format!("{message}\n  --> {at}")),
            "{message} at {at}:\n{stderr}"
        );
    }
    assert!(stderr.contains("did you mean 'extract'?"), "{stderr}");
}

#[test]
fn depending_on_a_group_waits_for_all_of_it_and_group_default_args_apply() {
    let p = Project::new();
    p.dag(
        "grouped",
        r#"
default_args: {env: {SOURCE: dag}, retries: 0}
groups:
  extract:
    default_args: {env: {SOURCE: extract}, retries: 2}
  load:
    depends_on: ["group:extract"]
tasks:
  - {id: e1, type: shell, command: "sleep 0.3; echo $SOURCE > e1.done", group: extract}
  - {id: e2, type: shell, command: "echo $SOURCE > e2.done", group: extract}
  - {id: e3, type: shell, command: "sleep 0.6; echo $SOURCE > e3.done", group: extract}
  - {id: l1, type: shell, command: "test -f e1.done && test -f e2.done && test -f e3.done", group: load}
  - {id: l2, type: shell, command: "true", group: load, depends_on: [l1]}
  - id: report
    type: shell
    command: test -f e1.done && test -f e2.done && test -f e3.done && echo $SOURCE > report.done
    depends_on: ["group:extract"]
"#,
    );
    let listed = p.json(&["tasks", "list", "grouped"]);
    let row = |id: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["task_id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(row("e1")["group"], "extract");
    assert_eq!(row("report")["group"], Value::Null);
    assert_eq!(row("report")["depends_on"], "e1,e2,e3");
    assert_eq!(
        row("l1")["depends_on"],
        "e1,e2,e3",
        "the group's depends_on applies to its first task"
    );
    assert_eq!(row("l2")["depends_on"], "l1", "not to one after another");
    let shown = p.ok(&["dags", "show", "grouped"]);
    assert!(shown.contains("group"), "{shown}");
    p.ok(&["dags", "test", "grouped", "2026-01-15"]);
    let all = instances(&p, "grouped", RUN);
    assert!(all.iter().all(|t| t.state == "success"), "{all:?}");
    let read = |f: &str| std::fs::read_to_string(p.path().join(f)).unwrap();
    assert_eq!(read("e1.done").trim(), "extract", "the group's env wins");
    assert_eq!(
        read("report.done").trim(),
        "dag",
        "outside the group, the DAG's"
    );
    let dag = p.json(&["dags", "show", "grouped"]);
    let retries = |id: &str| {
        dag["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["task_id"] == id)
            .unwrap()["retries"]
            .clone()
    };
    assert_eq!(retries("e2"), 2);
    assert_eq!(retries("l1"), 0);
}
