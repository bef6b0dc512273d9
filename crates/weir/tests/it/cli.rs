//! Commands that need no scheduler: init, validate, variables, config, db, and tasks mark
//! (whose run a scheduler then finishes).

use crate::support::{Project, wait_for};
use std::time::Duration;

#[test]
fn init_writes_a_project_whose_example_runs_green() {
    let root = tempfile::tempdir().unwrap();
    let target = root.path().join("proj");
    let out = assert_cmd::Command::new(crate::support::weir_bin())
        .arg("init")
        .arg(&target)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(target.join("dags/example_daily.yaml").is_file());
    let out = assert_cmd::Command::new(crate::support::weir_bin())
        .args(["--project", target.to_str().unwrap()])
        .args(["dags", "test", "example_daily", "2026-01-15"])
        .env("NO_COLOR", "1")
        .env_remove("WEIR_HOME")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for task in ["extract", "summarise", "enough_rows", "report"] {
        assert!(
            stdout.contains(&task.to_string()),
            "{task} missing in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("run manual__2026-01-15T00:00:00+00:00 success"),
        "{stdout}"
    );
}

#[test]
fn validate_reports_file_line_and_hint_and_exits_1() {
    let p = Project::new();
    p.dag("good", "tasks:\n  - id: a\n    type: empty\n");
    p.dag(
        "bad",
        "dag_id: bad\ntasks:\n  - id: load\n    type: shell\n    command: echo hi\n    dependsOn: [extract]\n",
    );
    let (code, stdout, stderr) = p.run(&["dags", "validate"]);
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("dags/bad.yaml:6"), "{stderr}");
    assert!(stderr.contains("dependsOn"), "{stderr}");
    assert!(stderr.contains("did you mean 'depends_on'?"), "{stderr}");
    assert!(stderr.contains("1 of 2 files"), "{stderr}");
    let (code, stdout, _) = p.run(&["dags", "validate", "dags/good.yaml"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("1 DAG files valid"));
}

#[test]
fn bad_usage_exits_2_with_a_hint() {
    let p = Project::new();
    p.dag("sales", "tasks:\n  - id: a\n    type: empty\n");
    let (code, _, stderr) = p.run(&["dags", "trigger", "sale"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("error: DAG 'sale' not found"), "{stderr}");
    assert!(stderr.contains("hint: did you mean 'sales'?"), "{stderr}");
    let (code, _, stderr) = p.run(&["dags", "trigger", "sales", "--conf", "{not json"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--conf is not valid JSON"), "{stderr}");
    let (code, _, _) = p.run(&["dags", "frobnicate"]);
    assert_eq!(code, 2);
}

#[test]
fn variables_round_trip_in_airflows_json_format() {
    let p = Project::new();
    p.ok(&["variables", "set", "region", "eu-west"]);
    assert_eq!(p.ok(&["variables", "get", "region"]).trim(), "eu-west");
    p.write(
        "vars.json",
        r#"{"limits": {"rows": 10}, "owner": "data-eng"}"#,
    );
    p.ok(&["variables", "import", "vars.json"]);
    let exported: serde_json::Value =
        serde_json::from_str(&p.ok(&["variables", "export"])).unwrap();
    assert_eq!(exported["limits"]["rows"], 10);
    assert_eq!(exported["owner"], "data-eng");
    assert_eq!(exported["region"], "eu-west");
    let list = p.json(&["variables", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 3);
    p.ok(&["variables", "delete", "region"]);
    let (code, _, stderr) = p.run(&["variables", "get", "region"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("variable 'region' does not exist"));
}

#[test]
fn config_db_and_health() {
    let p = Project::new();
    assert_eq!(
        p.ok(&["config", "get-value", "core", "parallelism"]).trim(),
        "32"
    );
    let out = p
        .weir()
        .args(["config", "get-value", "core", "parallelism"])
        .env("WEIR__CORE__PARALLELISM", "7")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "7");
    assert!(p.ok(&["db", "migrate"]).contains("is current"));
    assert!(p.ok(&["db", "check"]).contains("reachable and current"));
    assert!(
        p.ok(&["db", "clean", "--keep-days", "30"])
            .contains("deleted 0")
    );
    let (code, stdout, _) = p.run(&["health"]);
    assert_eq!(code, 1, "no scheduler has run: unhealthy");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["metadatabase"]["status"], "healthy");
    assert_eq!(doc["scheduler"]["status"], "unhealthy");
}

#[test]
fn marking_a_failed_task_success_lets_its_run_go_on_and_succeed() {
    let p = Project::new();
    // `fix` fails until the file `fixed` exists; `report` runs after it.
    p.dag(
        "flaky",
        "tasks:\n  - {id: fix, type: shell, command: 'test -f fixed'}\n  - {id: report, type: shell, command: 'echo reported', depends_on: [fix]}\n",
    );
    let (code, stdout, _) = p.run(&["dags", "test", "flaky", "2026-01-15"]);
    assert_eq!(code, 1, "{stdout}");
    let run_id = "manual__2026-01-15T00:00:00+00:00";
    let states =
        |p: &Project| -> Vec<(String, String)> { p.states("flaky", run_id).into_iter().collect() };
    let before = vec![
        ("fix".into(), "failed".into()),
        ("report".into(), "upstream_failed".into()),
    ];
    assert_eq!(states(&p), before);

    // Without --yes: what would be marked, and nothing changes.
    let (code, stdout, stderr) = p.run(&[
        "tasks", "mark", "flaky", run_id, "--task", "^fix$", "--state", "success",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("fix") && stdout.contains("failed"),
        "{stdout}"
    );
    assert!(
        stderr.contains("would mark 1 task instances success"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: add --yes"), "{stderr}");
    assert_eq!(states(&p), before);

    let (code, stdout, stderr) = p.run(&[
        "tasks", "mark", "flaky", run_id, "--task", "^fix$", "--state", "success", "--yes",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("fix") && stdout.contains("failed"),
        "the state it had: {stdout}"
    );
    assert!(
        stderr.contains("marked 1 task instances success"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cleared 1 failed task instances downstream to run again: report"),
        "{stderr}"
    );
    // As Airflow's: the marked task keeps its state, what failed because of it runs again,
    // and the run is queued for the scheduler to decide.
    assert_eq!(
        states(&p),
        vec![
            ("fix".into(), "success".into()),
            ("report".into(), "none".into())
        ]
    );
    assert_eq!(p.runs("flaky")[0]["state"], "queued");

    let _weir = p.start();
    wait_for("the run to succeed", Duration::from_secs(30), || {
        (p.runs("flaky")[0]["state"] == "success").then_some(())
    });
    assert_eq!(
        states(&p),
        vec![
            ("fix".into(), "success".into()),
            ("report".into(), "success".into())
        ]
    );
    assert_eq!(
        p.tries("flaky", run_id)["fix"],
        1,
        "the marked task did not run again"
    );
    assert!(p.log("flaky", run_id, "report", 1).contains("reported"));

    let (code, _, stderr) = p.run(&[
        "tasks", "mark", "flaky", run_id, "--task", "^nope$", "--state", "failed", "--yes",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("marked 0 task instances failed"),
        "{stderr}"
    );
    let (code, _, stderr) = p.run(&[
        "tasks", "mark", "flaky", run_id, "--task", "fix", "--state", "skipped",
    ]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn init_keeps_every_secret_in_a_private_weir_folder() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let target = root.path().join("proj");
    let out = assert_cmd::Command::new(crate::support::weir_bin())
        .arg("init")
        .arg(&target)
        .env_remove("WEIR_HOME")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let password = stdout
        .split("login: admin / ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no admin password in:\n{stdout}"));
    assert!(password.len() >= 16, "{password}");
    let state = target.join(".weir");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    let fernet = std::fs::read_to_string(state.join("fernet.key")).unwrap();
    let secret = std::fs::read_to_string(state.join("secret.key")).unwrap();
    for file in ["fernet.key", "secret.key", "metadata.db"] {
        assert_eq!(mode(&state.join(file)), 0o600, "{file}");
    }
    // No secret in any file a user might commit.
    let mut stack = vec![target.clone()];
    let mut checked = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path == state {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            for (what, value) in [
                ("fernet key", fernet.trim()),
                ("secret key", secret.trim()),
                ("password", password),
            ] {
                assert!(!text.contains(value), "{what} in {}", path.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 8, "{checked}");

    // A try's log is private too.
    let out = assert_cmd::Command::new(crate::support::weir_bin())
        .args(["--project", target.to_str().unwrap()])
        .args(["dags", "test", "example_daily", "2026-01-15"])
        .env_remove("WEIR_HOME")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let log = state.join("logs/example_daily/manual__2026-01-15T00:00:00+00:00/extract.1.log");
    assert_eq!(mode(&log), 0o600);
}
