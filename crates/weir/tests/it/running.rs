//! Runs in the CLI's own process (`dags test`, `tasks run`): trigger rules, retries,
//! timeouts, XCom, params and conf.

use crate::support::{Project, wait_for};
use std::time::Duration;

const RUN: &str = "manual__2026-01-15T00:00:00+00:00";

#[test]
fn every_trigger_rule_decides_like_airflow() {
    let p = Project::new();
    p.dag(
        "rules",
        r#"
schedule: "@daily"
tasks:
  - {id: ok, type: shell, command: "true"}
  - {id: ok2, type: shell, command: "true"}
  - {id: bad, type: shell, command: "exit 1"}
  - {id: skip, type: shell, command: "exit 99"}
  - {id: skip2, type: shell, command: "exit 99"}
  - {id: all_success, type: empty, depends_on: [ok, ok2]}
  - {id: all_success_failed, type: empty, depends_on: [ok, bad]}
  - {id: all_success_skipped, type: empty, depends_on: [ok, skip]}
  - {id: after_upstream_failed, type: empty, depends_on: [all_success_failed]}
  - {id: all_failed, type: empty, depends_on: [bad], trigger_rule: all_failed}
  - {id: all_failed_no, type: empty, depends_on: [ok], trigger_rule: all_failed}
  - {id: all_done, type: empty, depends_on: [ok, bad, skip], trigger_rule: all_done}
  - {id: all_skipped, type: empty, depends_on: [skip, skip2], trigger_rule: all_skipped}
  - {id: all_skipped_no, type: empty, depends_on: [skip, ok], trigger_rule: all_skipped}
  - {id: one_success, type: empty, depends_on: [ok, bad], trigger_rule: one_success}
  - {id: one_success_no, type: empty, depends_on: [bad, skip], trigger_rule: one_success}
  - {id: one_failed, type: empty, depends_on: [ok, bad], trigger_rule: one_failed}
  - {id: one_failed_no, type: empty, depends_on: [ok, skip], trigger_rule: one_failed}
  - {id: one_done, type: empty, depends_on: [skip, bad], trigger_rule: one_done}
  - {id: one_done_no, type: empty, depends_on: [skip, skip2], trigger_rule: one_done}
  - {id: none_failed, type: empty, depends_on: [ok, skip], trigger_rule: none_failed}
  - {id: none_failed_no, type: empty, depends_on: [ok, bad], trigger_rule: none_failed}
  - {id: none_failed_min_one_success, type: empty, depends_on: [ok, skip], trigger_rule: none_failed_min_one_success}
  - {id: none_failed_min_one_success_no, type: empty, depends_on: [skip, skip2], trigger_rule: none_failed_min_one_success}
  - {id: none_skipped, type: empty, depends_on: [ok, bad], trigger_rule: none_skipped}
  - {id: none_skipped_no, type: empty, depends_on: [ok, skip], trigger_rule: none_skipped}
  - {id: always, type: empty, depends_on: [bad], trigger_rule: always}
"#,
    );
    let (code, stdout, stderr) = p.run(&["dags", "test", "rules", "2026-01-15"]);
    assert_eq!(code, 1, "a failed leaf fails the run\n{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("run {RUN} failed")), "{stdout}");
    let states = p.states("rules", RUN);
    let expected = [
        ("ok", "success"),
        ("bad", "failed"),
        ("skip", "skipped"),
        ("all_success", "success"),
        ("all_success_failed", "upstream_failed"),
        ("all_success_skipped", "skipped"),
        ("after_upstream_failed", "upstream_failed"),
        ("all_failed", "success"),
        ("all_failed_no", "skipped"),
        ("all_done", "success"),
        ("all_skipped", "success"),
        ("all_skipped_no", "skipped"),
        ("one_success", "success"),
        ("one_success_no", "upstream_failed"),
        ("one_failed", "success"),
        ("one_failed_no", "skipped"),
        ("one_done", "success"),
        ("one_done_no", "skipped"),
        ("none_failed", "success"),
        ("none_failed_no", "upstream_failed"),
        ("none_failed_min_one_success", "success"),
        ("none_failed_min_one_success_no", "skipped"),
        ("none_skipped", "success"),
        ("none_skipped_no", "skipped"),
        ("always", "success"),
    ];
    for (task, state) in expected {
        assert_eq!(states[task], state, "task {task}: {states:?}");
    }
}

/// Whether some line of `out` has the words of `words`, whatever the spacing.
fn has_line(out: &str, words: &str) -> bool {
    let want: Vec<&str> = words.split_whitespace().collect();
    out.lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == want)
}

/// The first log line's timestamp and the last line's, of one try.
fn try_times(log: &str) -> (jiff::Timestamp, jiff::Timestamp) {
    let stamp = |line: &str| -> jiff::Timestamp {
        line.trim_start_matches('[')
            .split(']')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let lines: Vec<&str> = log.lines().filter(|l| l.starts_with('[')).collect();
    (stamp(lines[0]), stamp(lines[lines.len() - 1]))
}

#[test]
fn retries_wait_with_exponential_backoff_then_succeed() {
    let p = Project::new();
    p.dag(
        "flaky",
        r#"
tasks:
  - id: flaky
    type: shell
    retries: 2
    retry_delay: 1s
    retry_exponential_backoff: true
    command: |
      n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count
      echo "attempt $n"
      [ "$n" -ge 3 ]
  - {id: after, type: empty, depends_on: [flaky]}
"#,
    );
    let stdout = p.ok(&["dags", "test", "flaky", "2026-01-15"]);
    assert!(has_line(&stdout, "flaky up_for_retry (try 1)"), "{stdout}");
    assert_eq!(p.states("flaky", RUN)["flaky"], "success");
    assert_eq!(p.tries("flaky", RUN)["flaky"], 3);
    let t1 = try_times(&p.log("flaky", RUN, "flaky", 1));
    let t2 = try_times(&p.log("flaky", RUN, "flaky", 2));
    let t3 = try_times(&p.log("flaky", RUN, "flaky", 3));
    let gap1 = t2.0.duration_since(t1.1).as_secs_f64();
    let gap2 = t3.0.duration_since(t2.1).as_secs_f64();
    assert!(
        gap1 >= 0.95,
        "first retry after retry_delay (1s), was {gap1}"
    );
    assert!(
        gap2 >= 1.95,
        "second retry after 2 x retry_delay, was {gap2}"
    );
    assert!(
        p.log("flaky", RUN, "flaky", 1)
            .contains("marked up_for_retry")
    );
    assert!(p.log("flaky", RUN, "flaky", 3).contains("attempt 3"));
}

#[test]
fn retries_run_out_and_the_run_fails() {
    let p = Project::new();
    p.dag("doomed", "tasks:\n  - {id: t, type: shell, command: 'echo nope; exit 3', retries: 1, retry_delay: 0s}\n");
    let (code, stdout, _) = p.run(&["dags", "test", "doomed", "2026-01-15"]);
    assert_eq!(code, 1);
    assert!(has_line(&stdout, "t failed (try 2)"), "{stdout}");
    assert!(
        p.log("doomed", RUN, "t", 2)
            .contains("task exited with return code 3")
    );
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    let p = Project::new();
    p.dag(
        "slow",
        r#"
tasks:
  - id: slow
    type: shell
    execution_timeout: 1s
    command: |
      sleep 1000 &
      echo $! > child.pid
      wait
"#,
    );
    let started = std::time::Instant::now();
    let (code, _, _) = p.run(&["dags", "test", "slow", "2026-01-15"]);
    assert_eq!(code, 1);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(p.states("slow", RUN)["slow"], "failed");
    assert!(
        p.log("slow", RUN, "slow", 1)
            .contains("task timed out after 1s")
    );
    let pid: i32 = std::fs::read_to_string(p.path().join("child.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // A killed orphan may linger as a zombie when nothing reaps it (PID 1 in a container):
    // dead is "no such process" or state Z.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next();
    assert!(
        stat.is_empty() || state == Some("Z"),
        "the child sleep {pid} outlived the timeout: {stat}"
    );
}

#[test]
fn xcom_flows_between_shell_and_python_tasks() {
    xcom_flow(&Project::new());
}

#[test]
fn a_dag_runs_the_same_on_postgres_metadata() {
    // Under CI=true a missing PostgreSQL fails here rather than skipping.
    let Some(p) = Project::on_postgres() else {
        return;
    };
    xcom_flow(&p);
    let (code, _, _) = p.run(&["dags", "test", "xcom", "2026-01-15"]);
    assert_eq!(
        code, 0,
        "a second test of the same date clears and reruns the run"
    );
    assert_eq!(p.tries("xcom", RUN)["use"], 2);
}

fn xcom_flow(p: &Project) {
    p.write(
        "scripts/lib.py",
        "def double(n):\n    return {'doubled': n * 2}\n",
    );
    p.dag(
        "xcom",
        r#"
tasks:
  - id: file
    type: shell
    command: |
      echo '{"n": 21}' > "$WEIR_XCOM"
  - id: last
    type: shell
    command: "echo noise; echo hello-from-last"
    xcom: last_line
  - id: call
    type: python
    callable: lib:double
    kwargs: {n: 21}
  - id: use
    type: shell
    depends_on: [file, last, call]
    command: |
      echo "{{ ti.xcom_pull(task_ids='file')['n'] * 2 }} {{ ti.xcom_pull(task_ids='last') }} {{ ti.xcom_pull(task_ids='call')['doubled'] }}" > out.txt
"#,
    );
    p.ok(&["dags", "test", "xcom", "2026-01-15"]);
    assert_eq!(
        std::fs::read_to_string(p.path().join("out.txt"))
            .unwrap()
            .trim(),
        "42 hello-from-last 42"
    );
}

/// A task's output goes to its log as it was written (straight into the file when there is
/// nothing to mask), and weir's own lines still start on lines of their own.
#[test]
fn output_without_a_final_newline_ends_its_own_line_and_is_the_last_line_xcom() {
    let p = Project::new();
    p.dag(
        "partial",
        r#"
tasks:
  - id: say
    type: shell
    command: "echo to-stderr >&2; echo first; printf 'no-newline'"
    xcom: last_line
  - id: use
    type: shell
    depends_on: [say]
    command: "echo '{{ ti.xcom_pull(task_ids=\"say\") }}' > out.txt"
"#,
    );
    p.ok(&["dags", "test", "partial", "2026-01-15"]);
    assert_eq!(
        std::fs::read_to_string(p.path().join("out.txt")).unwrap(),
        "no-newline\n"
    );
    let log = p.ok(&["tasks", "logs", "partial", RUN, "say"]);
    let lines: Vec<&str> = log.lines().collect();
    let at = lines.iter().position(|l| *l == "no-newline").expect(&log);
    assert!(
        lines.contains(&"to-stderr") && lines.contains(&"first"),
        "{log}"
    );
    assert!(
        lines[at + 1].contains("INFO - task exited with return code 0"),
        "{log}"
    );
}

#[test]
fn conf_overrides_params_in_templates_and_env() {
    let p = Project::new();
    p.dag(
        "params",
        r#"
params: {country: KR, limit: 5}
tasks:
  - id: show
    type: shell
    params: {limit: 7}
    env: {COUNTRY: "{{ params.country }}"}
    command: echo "{{ params.country }} {{ params.limit }} {{ conf.get('country', 'none') }} $COUNTRY $WEIR_DS" > out.txt
"#,
    );
    p.ok(&["dags", "test", "params", "2026-01-15"]);
    assert_eq!(
        std::fs::read_to_string(p.path().join("out.txt"))
            .unwrap()
            .trim(),
        "KR 7 none KR 2026-01-15"
    );
    p.ok(&[
        "dags",
        "test",
        "params",
        "2026-01-16",
        "--conf",
        r#"{"country": "JP"}"#,
    ]);
    assert_eq!(
        std::fs::read_to_string(p.path().join("out.txt"))
            .unwrap()
            .trim(),
        "JP 7 JP JP 2026-01-16"
    );
}

#[test]
fn tasks_run_runs_one_task_and_logs_it() {
    let p = Project::new();
    p.dag("one", "tasks:\n  - {id: a, type: shell, command: 'echo first > a.txt'}\n  - {id: b, type: shell, command: 'echo second; exit 4', depends_on: [a]}\n");
    let (code, stdout, stderr) = p.run(&["tasks", "run", "one", "b", "2026-01-15"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("b failed"));
    assert!(
        stderr.contains("second"),
        "the try's log is shown: {stderr}"
    );
    assert!(!p.path().join("a.txt").exists(), "upstream not run");
    let log = p.ok(&["tasks", "logs", "one", RUN, "b"]);
    assert!(log.contains("task exited with return code 4"), "{log}");
    let states = p.states("one", RUN);
    assert_eq!(states["a"], "none");
}

/// The largest number of tasks between their "start" and "end" lines at once.
fn max_concurrency(trace: &str) -> usize {
    let (mut now, mut max) = (0usize, 0usize);
    for line in trace.lines() {
        if line.ends_with("start") {
            now += 1;
            max = max.max(now);
        } else if line.ends_with("end") {
            now -= 1;
        }
    }
    max
}

#[test]
fn pools_and_parallelism_bound_concurrency() {
    let settings = format!("{}\n[pools]\nsingle = 1\n", crate::support::FAST_SETTINGS);
    let p = Project::with_settings(&settings);
    let step =
        "echo \"$WEIR_TASK_ID start\" >> trace; sleep 0.3; echo \"$WEIR_TASK_ID end\" >> trace";
    let mut yaml = String::from("tasks:\n");
    for i in 0..4 {
        yaml.push_str(&format!(
            "  - {{id: pooled{i}, type: shell, pool: single, command: '{step}'}}\n"
        ));
    }
    p.dag("pooled", &yaml);
    p.ok(&["dags", "test", "pooled", "2026-01-15"]);
    let trace = std::fs::read_to_string(p.path().join("trace")).unwrap();
    assert_eq!(trace.lines().count(), 8);
    assert_eq!(
        max_concurrency(&trace),
        1,
        "a one-slot pool runs one task at a time:\n{trace}"
    );

    let settings = crate::support::FAST_SETTINGS.replace("parallelism = 32", "parallelism = 2");
    let p = Project::with_settings(&settings);
    let mut yaml = String::from("tasks:\n");
    for i in 0..6 {
        yaml.push_str(&format!(
            "  - {{id: par{i}, type: shell, command: '{step}'}}\n"
        ));
    }
    p.dag("par", &yaml);
    p.ok(&["dags", "test", "par", "2026-01-15"]);
    let trace = std::fs::read_to_string(p.path().join("trace")).unwrap();
    assert_eq!(max_concurrency(&trace), 2, "parallelism = 2:\n{trace}");
}

#[test]
fn room_goes_to_the_heaviest_ready_task_across_runs_not_to_the_run_evaluated_first() {
    // One slot for everything: while `chain` runs its first task, `urgent` becomes ready;
    // when the slot frees, Airflow gives it to the ready instance of highest priority weight
    // (urgent's 100 over the chain's next task, 3), whichever run it belongs to.
    let settings = crate::support::FAST_SETTINGS.replace("parallelism = 32", "parallelism = 1");
    let p = Project::with_settings(&settings);
    let step = |name: &str, pause: &str| {
        format!("echo {name} >> order; echo started > {name}.started; sleep {pause}")
    };
    p.dag(
        "chain",
        &format!(
            "tasks:\n  - {{id: c1, type: shell, command: '{}'}}\n  - {{id: c2, type: shell, command: '{}', depends_on: [c1]}}\n  - {{id: c3, type: shell, command: '{}', depends_on: [c2]}}\n",
            step("c1", "1"),
            step("c2", "0.1"),
            step("c3", "0.1")
        ),
    );
    p.dag(
        "urgent",
        &format!(
            "tasks:\n  - {{id: u, type: shell, priority_weight: 100, command: '{}'}}\n",
            step("u", "0.1")
        ),
    );
    let _weir = p.start();
    p.ok(&["dags", "trigger", "chain"]);
    wait_for("c1 to start", Duration::from_secs(30), || {
        p.path().join("c1.started").exists().then_some(())
    });
    p.ok(&["dags", "trigger", "urgent"]);
    wait_for("every task to run", Duration::from_secs(30), || {
        std::fs::read_to_string(p.path().join("order"))
            .ok()
            .filter(|o| o.lines().count() == 4)
    });
    let order = std::fs::read_to_string(p.path().join("order")).unwrap();
    assert_eq!(
        order.lines().collect::<Vec<_>>(),
        ["c1", "u", "c2", "c3"],
        "{order}"
    );
}
