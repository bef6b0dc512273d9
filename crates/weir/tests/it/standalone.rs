//! `weir standalone` in the background: scheduling, catchup, the DAG folder watch, import
//! errors, Ctrl-C, and crash safety under kill -9.

use crate::support::{FAST_SETTINGS, Project, wait_for};
use serde_json::Value;
use std::time::{Duration, Instant};

fn all_success(runs: &[Value]) -> bool {
    !runs.is_empty() && runs.iter().all(|r| r["state"] == "success")
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
fn catchup_true_creates_every_missed_interval_and_false_only_the_latest() {
    let p = Project::new();
    let dag = |id: &str, catchup: bool| {
        format!(
            "dag_id: {id}\nschedule: '@daily'\nstart_date: {}\ncatchup: {catchup}\ntasks:\n  - {{id: t, type: shell, command: 'echo {{{{ ds }}}}'}}\n",
            days_ago(5)
        )
    };
    p.dag("with_catchup", &dag("with_catchup", true));
    p.dag("without_catchup", &dag("without_catchup", false));
    let _weir = p.start();
    let with = wait_for("5 catchup runs to succeed", Duration::from_secs(60), || {
        let runs = p.runs("with_catchup");
        (runs.len() == 5 && all_success(&runs)).then_some(runs)
    });
    let mut dates: Vec<&str> = with
        .iter()
        .map(|r| r["logical_date"].as_str().unwrap())
        .collect();
    dates.sort();
    assert_eq!(dates[0], format!("{} 00:00:00+00:00", days_ago(5)));
    assert_eq!(dates[4], format!("{} 00:00:00+00:00", days_ago(1)));
    let without = wait_for("the latest run to succeed", Duration::from_secs(60), || {
        let runs = p.runs("without_catchup");
        all_success(&runs).then_some(runs)
    });
    assert_eq!(without.len(), 1);
    assert_eq!(
        without[0]["logical_date"],
        Value::from(format!("{} 00:00:00+00:00", days_ago(1)))
    );
    assert_eq!(without[0]["run_type"], Value::from("scheduled"));
    assert_eq!(
        p.runs("with_catchup").len(),
        5,
        "no run beyond the missed intervals"
    );
}

#[test]
fn new_files_are_picked_up_and_a_broken_file_does_not_stop_the_others() {
    let p = Project::new();
    p.dag(
        "first",
        "tasks:\n  - {id: t, type: shell, command: 'echo first'}\n",
    );
    let mut weir = p.start();
    wait_for("standalone to be healthy", Duration::from_secs(30), || {
        (p.run(&["health"]).0 == 0).then_some(())
    });

    // A new scheduled DAG: the scheduler (not this CLI) must create its run.
    let written = Instant::now();
    p.dag(
        "second",
        &format!("schedule: '@daily'\nstart_date: {}\ntasks:\n  - {{id: t, type: shell, command: 'echo second'}}\n", days_ago(2)),
    );
    wait_for("the new DAG's first run", Duration::from_secs(30), || {
        all_success(&p.runs("second")).then_some(())
    });
    eprintln!("new DAG file to finished run: {:?}", written.elapsed());

    p.dag(
        "broken",
        "dag_id: broken\ntasks:\n  - id: a\n    type: shel\n",
    );
    wait_for("the import error", Duration::from_secs(30), || {
        let (_, stdout, _) = p.run(&["dags", "list-import-errors"]);
        stdout.contains("dags/broken.yaml:4").then_some(())
    });
    let (code, stdout, stderr) = p.run(&["dags", "trigger", "first", "--wait"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("success"), "{stderr}");
    let listed = p.json(&["dags", "list"]);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["dag_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["first", "second"]);
    assert_eq!(
        weir.interrupt(Duration::from_secs(20)),
        Some(0),
        "Ctrl-C stops standalone cleanly"
    );
}

#[test]
fn kill_9_in_the_middle_of_a_20_task_dag_loses_nothing_and_runs_nothing_twice() {
    let p = Project::new();
    let mut yaml =
        String::from("dag_id: crash\ndefault_args: {retries: 2, retry_delay: 0s}\ntasks:\n");
    for chain in 0..4 {
        for step in 0..5 {
            let id = format!("c{chain}_{step}");
            let deps = if step == 0 {
                String::new()
            } else {
                format!(", depends_on: [c{chain}_{}]", step - 1)
            };
            yaml.push_str(&format!(
                "  - {{id: {id}, type: shell, command: 'echo \"$WEIR_TASK_ID $WEIR_TRY_NUMBER start\" >> trace; sleep 0.6; echo \"$WEIR_TASK_ID $WEIR_TRY_NUMBER end\" >> trace'{deps}}}\n"
            ));
        }
    }
    p.dag("crash", &yaml);
    let mut weir = p.start();
    wait_for("standalone to be healthy", Duration::from_secs(30), || {
        (p.run(&["health"]).0 == 0).then_some(())
    });
    let run_id = p.ok(&["dags", "trigger", "crash"]).trim().to_string();
    wait_for(
        "some tasks done and some running",
        Duration::from_secs(60),
        || {
            let states = p.states("crash", &run_id);
            let done = states.values().filter(|s| *s == "success").count();
            let running = states.values().filter(|s| *s == "running").count();
            (done >= 4 && running >= 1).then_some(())
        },
    );
    weir.kill9();
    let interrupted: Vec<String> = p
        .states("crash", &run_id)
        .into_iter()
        .filter(|(_, s)| s == "running")
        .map(|(t, _)| t)
        .collect();
    assert!(!interrupted.is_empty());

    let _weir = p.start();
    wait_for(
        "the run to finish after the restart",
        Duration::from_secs(90),
        || {
            let runs = p.runs("crash");
            runs[0]["state"]
                .as_str()
                .is_some_and(|s| s == "success" || s == "failed")
                .then_some(())
        },
    );
    let states = p.states("crash", &run_id);
    assert!(states.values().all(|s| s == "success"), "{states:?}");
    let tries = p.tries("crash", &run_id);
    for task in &interrupted {
        assert!(
            tries[task] >= 2,
            "{task} was running at the crash and must have been retried: {tries:?}"
        );
        assert!(
            p.log("crash", &run_id, task, 1).contains("zombie"),
            "the interrupted try's log says why"
        );
    }
    // No try overlaps another try of the same task: once try N+1 started, try N never wrote again.
    let trace = std::fs::read_to_string(p.path().join("trace")).unwrap();
    let lines: Vec<Vec<&str>> = trace
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    for (i, line) in lines.iter().enumerate() {
        let (task, try_no, what) = (line[0], line[1].parse::<i64>().unwrap(), line[2]);
        if what == "start" {
            for later in &lines[i + 1..] {
                if later[0] == task
                    && later[2] == "end"
                    && later[1].parse::<i64>().unwrap() < try_no
                {
                    panic!(
                        "try {} of {task} wrote after try {try_no} started:\n{trace}",
                        later[1]
                    );
                }
            }
        }
    }
    for task in states.keys() {
        let ends = lines
            .iter()
            .filter(|l| l[0] == task && l[2] == "end")
            .count();
        assert!(ends >= 1, "{task} completed at least once");
    }
}

#[test]
fn a_cli_trigger_wakes_a_running_standalone_without_waiting_for_its_poll() {
    // Polls a minute apart: only the CLI's poke can make this run start within seconds.
    let p = Project::with_settings(
        "[scheduler]\ndag_dir_list_interval = 60.0\npoll_s = 60.0\nheartbeat_s = 0.5\n",
    );
    p.dag(
        "poked",
        "tasks:\n  - {id: a, type: shell, command: 'echo a'}\n  - {id: b, type: empty, depends_on: [a]}\n",
    );
    let mut weir = p.start();
    wait_for("standalone to be healthy", Duration::from_secs(30), || {
        (p.run(&["health"]).0 == 0).then_some(())
    });
    let asked = Instant::now();
    let (code, stdout, stderr) = p.run(&["dags", "trigger", "poked", "--wait"]);
    let took = asked.elapsed();
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        took < Duration::from_secs(30),
        "the run waited for the scheduler's 60 s poll ({took:?})"
    );
    let runs = p.runs("poked");
    assert!(all_success(&runs), "{runs:?}");
    let states = p.states("poked", runs[0]["run_id"].as_str().unwrap());
    assert_eq!(
        states["b"], "success",
        "the empty join ends in the scheduler"
    );
    assert_eq!(weir.interrupt(Duration::from_secs(20)), Some(0));
}

/// The pids of the `weir warehouse-process` children of `parent`.
fn warehouse_children(parent: i32) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`: comm may hold spaces, so read after its last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(parent) && String::from_utf8_lossy(&cmdline).contains("warehouse-process") {
            found.push(pid);
        }
    }
    found
}

/// The suite's fast settings (ending in `[worker]`) with a short warehouse idle time.
fn warehouse_settings() -> String {
    format!("{FAST_SETTINGS}warehouse_idle_s = 3.0\n")
}

#[test]
fn sql_tasks_run_in_a_warehouse_process_that_exits_when_idle_and_releases_the_file() {
    let p = Project::with_settings(&warehouse_settings());
    p.dag(
        "load",
        "tasks:\n  - id: create\n    type: sql\n    connection: warehouse\n    sql: \"create or replace table loaded as select 42 as answer\"\n",
    );
    let weir = p.start();
    wait_for("standalone to be healthy", Duration::from_secs(30), || {
        (p.run(&["health"]).0 == 0).then_some(())
    });
    assert!(
        warehouse_children(weir.pid()).is_empty(),
        "no warehouse process before any warehouse work"
    );
    let (code, stdout, stderr) = p.run(&["dags", "trigger", "load", "--wait"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    // The child's log lines reach the try's log through the parent.
    let run = p.runs("load")[0]["run_id"].as_str().unwrap().to_string();
    let log = p.log("load", &run, "create", 1);
    assert!(log.contains("create or replace table loaded"), "{log}");
    assert_eq!(
        warehouse_children(weir.pid()).len(),
        1,
        "the SQL task ran in one warehouse process that is still up right after"
    );
    wait_for(
        "the idle warehouse process to exit",
        Duration::from_secs(30),
        || warehouse_children(weir.pid()).is_empty().then_some(()),
    );
    // Standalone still runs, and another process can open the DuckDB file it wrote.
    assert_eq!(p.run(&["health"]).0, 0);
    assert_eq!(
        p.warehouse_rows(
            "duckdb://.weir/warehouse.duckdb",
            "select answer from loaded"
        ),
        vec![serde_json::json!({"answer": 42})]
    );
}

#[test]
fn a_warehouse_process_killed_mid_task_fails_the_try_clearly_and_the_next_task_gets_a_new_one() {
    let p = Project::with_settings(&warehouse_settings());
    p.dag(
        "slow",
        "tasks:\n  - id: long\n    type: sql\n    connection: warehouse\n    sql: \"select count(*) from range(100000000000)\"\n",
    );
    p.dag(
        "quick",
        "tasks:\n  - id: one\n    type: sql\n    connection: warehouse\n    sql: \"select 1 as one\"\n",
    );
    let weir = p.start();
    wait_for("standalone to be healthy", Duration::from_secs(30), || {
        (p.run(&["health"]).0 == 0).then_some(())
    });
    let run = p.ok(&["dags", "trigger", "slow"]).trim().to_string();
    let child = wait_for("the long query to run", Duration::from_secs(30), || {
        let running = p.states("slow", &run).get("long").map(String::as_str) == Some("running");
        let children = warehouse_children(weir.pid());
        (running && children.len() == 1).then(|| children[0])
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for("the try to fail", Duration::from_secs(30), || {
        (p.states("slow", &run).get("long").map(String::as_str) == Some("failed")).then_some(())
    });
    let log = p.log("slow", &run, "long", 1);
    assert!(
        log.contains("the warehouse process exited (signal: 9 (SIGKILL))"),
        "{log}"
    );
    let (code, stdout, stderr) = p.run(&["dags", "trigger", "quick", "--wait"]);
    let quick_log = || {
        let run = p.runs("quick")[0]["run_id"]
            .as_str()
            .unwrap_or("")
            .to_string();
        p.log("quick", &run, "one", 1)
    };
    assert_eq!(
        code,
        0,
        "a new warehouse process runs the next task: {stdout}{stderr}\n{}",
        quick_log()
    );
}
