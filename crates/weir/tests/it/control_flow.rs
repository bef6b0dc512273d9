//! Control flow: `branch`, `short_circuit` and `latest_only` decide which downstream tasks
//! run; the skipped ones carry the reason in `weir tasks states`.

use crate::support::{Project, wait_for};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// task_id → (state, reason) of a run.
fn outcomes(p: &Project, dag: &str, run_id: &str) -> BTreeMap<String, (String, Option<String>)> {
    p.json(&["tasks", "states", dag, run_id])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["task_id"].as_str().unwrap().to_string(),
                (
                    r["state"].as_str().unwrap().to_string(),
                    r["reason"].as_str().map(String::from),
                ),
            )
        })
        .collect()
}

fn state(s: &str) -> (String, Option<String>) {
    (s.to_string(), None)
}

fn skipped_for(reason: &str) -> (String, Option<String>) {
    ("skipped".to_string(), Some(reason.to_string()))
}

#[test]
fn a_branch_on_the_weekday_runs_the_right_path_for_a_week_and_the_join_every_day() {
    let p = Project::new();
    p.dag(
        "week",
        r#"
schedule: "@daily"
start_date: 2026-01-01
tasks:
  - id: pick
    type: branch
    choose: "{{ 'weekend_path' if logical_date.strftime('%A') in ['Saturday', 'Sunday'] else 'weekday_path' }}"
  - id: weekday_path
    type: shell
    command: echo "{{ ds }} weekday" >> paths.txt
    depends_on: [pick]
  - id: weekend_path
    type: shell
    command: echo "{{ ds }} weekend" >> paths.txt
    depends_on: [pick]
  - id: weekend_report
    type: shell
    command: echo "{{ ds }} report" >> paths.txt
    depends_on: [weekend_path]
  - id: join
    type: shell
    command: echo "{{ ds }} join" >> paths.txt
    depends_on: [weekday_path, weekend_report]
    trigger_rule: none_failed_min_one_success
"#,
    );
    // Monday 2026-01-05 to Sunday 2026-01-11.
    p.ok(&[
        "dags",
        "backfill",
        "week",
        "--start",
        "2026-01-05",
        "--end",
        "2026-01-11",
    ]);
    let runs = p.runs("week");
    assert_eq!(runs.len(), 7);
    assert!(runs.iter().all(|r| r["state"] == "success"), "{runs:#?}");
    for day in 5..=11 {
        let run_id = format!("backfill__2026-01-{day:02}T00:00:00+00:00");
        let got = outcomes(&p, "week", &run_id);
        let weekend = day >= 10;
        let expected: BTreeMap<String, (String, Option<String>)> = if weekend {
            [
                ("pick", state("success")),
                (
                    "weekday_path",
                    skipped_for("branch 'pick' chose [weekend_path]"),
                ),
                ("weekend_path", state("success")),
                ("weekend_report", state("success")),
                ("join", state("success")),
            ]
        } else {
            [
                ("pick", state("success")),
                ("weekday_path", state("success")),
                (
                    "weekend_path",
                    skipped_for("branch 'pick' chose [weekday_path]"),
                ),
                // Skipped by its trigger rule (all_success), not by the branch.
                ("weekend_report", state("skipped")),
                ("join", state("success")),
            ]
        }
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(got, expected, "2026-01-{day:02}");
    }
    let mut lines: Vec<String> = std::fs::read_to_string(p.path().join("paths.txt"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    let mut want = Vec::new();
    for day in 5..=11 {
        let ds = format!("2026-01-{day:02}");
        if day >= 10 {
            want.extend([
                format!("{ds} join"),
                format!("{ds} report"),
                format!("{ds} weekend"),
            ]);
        } else {
            want.extend([format!("{ds} join"), format!("{ds} weekday")]);
        }
    }
    want.sort();
    assert_eq!(lines, want);
    // The table says why, too.
    let table = p.ok(&[
        "tasks",
        "states",
        "week",
        "backfill__2026-01-05T00:00:00+00:00",
    ]);
    assert!(
        table.contains("branch 'pick' chose [weekday_path]"),
        "{table}"
    );
    // The branch pushes its choice as its XCom.
    let log = p.log("week", "backfill__2026-01-10T00:00:00+00:00", "pick", 1);
    assert!(log.contains("branch 'pick' chose [weekend_path]"), "{log}");
}

#[test]
fn a_branch_that_chooses_what_it_cannot_fails_naming_the_id_and_the_choices() {
    let p = Project::new();
    p.dag(
        "unknown",
        r#"
tasks:
  - {id: pick, type: branch, choose: "{{ 'holiday' }}"}
  - {id: a, type: shell, command: "true", depends_on: [pick]}
  - {id: b, type: shell, command: "true", depends_on: [pick]}
"#,
    );
    // `c` exists but is not directly downstream of the branch; the script's last line counts.
    p.dag(
        "indirect",
        r#"
tasks:
  - {id: pick, type: branch, script: "echo thinking; echo c"}
  - {id: a, type: shell, command: "true", depends_on: [pick]}
  - {id: c, type: shell, command: "true", depends_on: [a]}
"#,
    );
    for (dag, id, choices) in [("unknown", "holiday", "a, b"), ("indirect", "c", "a")] {
        let (code, stdout, stderr) = p.run(&["dags", "test", dag, "2026-01-15"]);
        assert_eq!(code, 1, "{dag}: the run fails\n{stdout}\n{stderr}");
        let run = "manual__2026-01-15T00:00:00+00:00";
        let got = outcomes(&p, dag, run);
        assert_eq!(got["pick"], state("failed"), "{dag}: {got:?}");
        assert_eq!(got["a"], state("upstream_failed"), "{dag}: {got:?}");
        let log = p.log(dag, run, "pick", 1);
        let message = format!(
            "branch 'pick' chose '{id}', which is not a task directly downstream of it; the choices are {choices}"
        );
        assert!(log.contains(&message), "{dag}: {log}");
    }
}

const GATED: &str = r#"
params: {go: false}
tasks:
  - id: gate
    type: short_circuit
    condition: "{{ params.go }}"
    MODE
  - {id: s1, type: shell, command: "echo s1 >> ran.txt", depends_on: [gate]}
  - {id: s2, type: shell, command: "echo s2 >> ran.txt", depends_on: [s1]}
  - {id: after, type: shell, command: "echo after >> ran.txt", depends_on: [s2], trigger_rule: all_done}
"#;

const RUN: &str = "manual__2026-01-15T00:00:00+00:00";

#[test]
fn a_false_short_circuit_skips_everything_downstream_whatever_the_trigger_rules() {
    let p = Project::new();
    p.dag("gated", &GATED.replace("MODE", ""));
    let out = p.ok(&["dags", "test", "gated", "2026-01-15"]);
    let reason = "short_circuit 'gate' condition was false ('False')";
    assert!(
        out.lines()
            .any(|l| l.starts_with("after ") && l.ends_with(&format!("skipped (try 0): {reason}"))),
        "dags test says why: {out}"
    );
    let got = outcomes(&p, "gated", RUN);
    assert_eq!(got["gate"], state("success"));
    for task in ["s1", "s2", "after"] {
        assert_eq!(got[task], skipped_for(reason), "{task}: {got:?}");
    }
    assert!(!p.path().join("ran.txt").exists());
    // A true condition lets everything run.
    p.ok(&[
        "dags",
        "test",
        "gated",
        "2026-01-16",
        "--conf",
        r#"{"go": true}"#,
    ]);
    let got = outcomes(&p, "gated", "manual__2026-01-16T00:00:00+00:00");
    for task in ["gate", "s1", "s2", "after"] {
        assert_eq!(got[task], state("success"), "{task}: {got:?}");
    }
}

#[test]
fn a_short_circuit_that_respects_trigger_rules_skips_only_its_direct_downstream() {
    let p = Project::new();
    p.dag(
        "gated",
        &GATED.replace("MODE", "ignore_downstream_trigger_rules: false"),
    );
    // A script gate in the same mode: exit 1 short-circuits.
    p.dag(
        "scripted",
        &GATED
            .replace(
                "condition: \"{{ params.go }}\"",
                "script: \"test -f {{ ds }}.flag\"",
            )
            .replace("MODE", "ignore_downstream_trigger_rules: false"),
    );
    for (dag, reason) in [
        (
            "gated",
            "short_circuit 'gate' condition was false ('False')",
        ),
        (
            "scripted",
            "short_circuit 'gate' script exited with return code 1",
        ),
    ] {
        p.ok(&["dags", "test", dag, "2026-01-15"]);
        let got = outcomes(&p, dag, RUN);
        assert_eq!(got["gate"], state("success"), "{dag}: {got:?}");
        assert_eq!(got["s1"], skipped_for(reason), "{dag}: {got:?}");
        assert_eq!(got["s2"], state("skipped"), "{dag}: by its trigger rule");
        assert_eq!(got["after"], state("success"), "{dag}: all_done runs");
    }
    // With the file there, the script gate opens.
    p.write("2026-01-15.flag", "");
    p.ok(&["dags", "test", "scripted", "2026-01-15"]);
    let got = outcomes(&p, "scripted", RUN);
    assert_eq!(got["s1"], state("success"), "{got:?}");
}

fn days_ago(n: i64) -> String {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    today
        .checked_sub(jiff::Span::new().days(n))
        .unwrap()
        .to_string()
}

#[test]
fn latest_only_under_catchup_runs_only_the_latest_intervals_downstream_and_manual_runs_go_on() {
    let p = Project::new();
    p.dag(
        "latest",
        &format!(
            r#"
schedule: "@daily"
start_date: {}
catchup: true
tasks:
  - {{id: latest, type: latest_only}}
  - {{id: work, type: shell, command: "echo {{{{ ds }}}} >> work.txt", depends_on: [latest]}}
  - {{id: after, type: shell, command: "true", depends_on: [work]}}
  - {{id: anyway, type: shell, command: "true"}}
"#,
            days_ago(3)
        ),
    );
    let mut weir = p.start();
    let runs = wait_for("3 catchup runs to finish", Duration::from_secs(60), || {
        let runs = p.runs("latest");
        (runs.len() == 3 && runs.iter().all(|r| r["state"] == "success")).then_some(runs)
    });
    weir.kill9();
    let mut by_date: Vec<(String, String)> = runs
        .iter()
        .map(|r| {
            (
                r["logical_date"].as_str().unwrap().to_string(),
                r["run_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    by_date.sort();
    for (i, (date, run_id)) in by_date.iter().enumerate() {
        let got = outcomes(&p, "latest", run_id);
        assert_eq!(got["latest"], state("success"), "{date}: {got:?}");
        assert_eq!(got["anyway"], state("success"), "{date}: {got:?}");
        if i == 2 {
            assert_eq!(got["work"], state("success"), "{date}: the latest interval");
            assert_eq!(got["after"], state("success"), "{date}");
        } else {
            let (work, reason) = &got["work"];
            assert_eq!(work, "skipped", "{date}: {got:?}");
            let reason = reason.as_deref().unwrap_or_default();
            assert!(
                reason.starts_with(
                    "latest_only 'latest': not the latest interval (scheduled run of the interval ending"
                ),
                "{date}: {reason}"
            );
            assert_eq!(
                got["after"],
                state("skipped"),
                "{date}: by its trigger rule"
            );
        }
    }
    assert_eq!(
        std::fs::read_to_string(p.path().join("work.txt")).unwrap(),
        format!("{}\n", days_ago(1))
    );
    // A manual run of an old date goes on.
    p.ok(&["dags", "test", "latest", &days_ago(10)]);
    let runs = p.runs("latest");
    let manual: &Value = runs
        .iter()
        .find(|r| r["run_type"] == "manual")
        .expect("a manual run");
    let got = outcomes(&p, "latest", manual["run_id"].as_str().unwrap());
    assert_eq!(got["work"], state("success"), "{got:?}");
}

#[test]
fn a_branch_without_downstream_tasks_is_a_validation_error() {
    let p = Project::new();
    p.dag(
        "lonely",
        "tasks:\n  - id: start\n    type: empty\n  - id: pick\n    type: branch\n    choose: start\n    depends_on: [start]\n",
    );
    let (code, stdout, stderr) = p.run(&["dags", "validate"]);
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains(
            "error: branch task 'pick' in DAG 'lonely' has no downstream tasks to choose from\n  --> dags/lonely.yaml:4"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("add `depends_on: [pick]` to the tasks it chooses between"),
        "{stderr}"
    );
    // A choice written without a template is checked before it runs.
    p.dag(
        "typo",
        "tasks:\n  - {id: pick, type: branch, choose: 'weekdya, weekend'}\n  - {id: weekday, type: empty, depends_on: [pick]}\n  - {id: weekend, type: empty, depends_on: [pick]}\n",
    );
    let (code, _, stderr) = p.run(&["dags", "validate", "dags/typo.yaml"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "error: branch task 'pick' in DAG 'typo' chooses 'weekdya', which is not a task directly downstream of it\n  --> dags/typo.yaml:2"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean 'weekday'?"), "{stderr}");
    assert!(!stderr.contains("'weekend', which"), "{stderr}");
}

/// A `weir` process in the background; killed when dropped.
struct Background(std::process::Child);

impl Background {
    fn start(p: &Project, args: &[&str], log: &str) -> Background {
        let mut cmd = std::process::Command::new(crate::support::weir_bin());
        cmd.arg("--project")
            .arg(p.path())
            .args(args)
            .current_dir(p.path())
            .env("NO_COLOR", "1")
            .env_remove("WEIR_HOME")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::from(
                std::fs::File::create(p.path().join(log)).unwrap(),
            ));
        if let Some(url) = &p.database_url {
            cmd.env("WEIR__DATABASE__URL", url);
        }
        Background(cmd.spawn().expect("start weir"))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_decision_recorded_by_a_separate_worker_reaches_a_separate_scheduler() {
    let p = Project::new();
    p.dag(
        "split",
        r#"
tasks:
  - {id: pick, type: branch, script: "echo {{ params.get('path', 'left') }}"}
  - {id: left, type: shell, command: "true", depends_on: [pick]}
  - {id: right, type: shell, command: "true", depends_on: [pick]}
  - {id: gate, type: short_circuit, condition: "{{ params.get('open', false) }}", depends_on: [left]}
  - {id: behind, type: shell, command: "true", depends_on: [gate]}
"#,
    );
    let _scheduler = Background::start(&p, &["scheduler"], "scheduler.log");
    let _worker = Background::start(&p, &["worker"], "worker.log");
    wait_for(
        "the scheduler to parse the DAG",
        Duration::from_secs(60),
        || {
            p.ok(&["dags", "list", "-o", "json"])
                .contains("\"split\"")
                .then_some(())
        },
    );
    p.ok(&["dags", "trigger", "split", "--wait"]);
    let runs = p.runs("split");
    assert_eq!(runs[0]["state"], "success", "{runs:?}");
    let got = outcomes(&p, "split", runs[0]["run_id"].as_str().unwrap());
    assert_eq!(got["left"], state("success"), "{got:?}");
    assert_eq!(got["right"], skipped_for("branch 'pick' chose [left]"));
    assert_eq!(got["gate"], state("success"));
    assert_eq!(
        got["behind"],
        skipped_for("short_circuit 'gate' condition was false ('False')")
    );
}
