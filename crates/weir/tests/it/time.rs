//! Time: template values against Airflow's, time zones and DST, backfill and its reset.

use crate::support::Project;

/// Every value below is what Airflow 3 (create_cron_data_intervals=True) renders for the same
/// DAG and date, except `ds` in a non-UTC zone, which weir renders in the DAG's zone.
const TEMPLATE_DUMP: &str = r#"
tasks:
  - id: dump
    type: shell
    command: |
      cat > "values_{{ ds_nodash }}.txt" <<'EOF'
      ds={{ ds }}
      ds_nodash={{ ds_nodash }}
      ts={{ ts }}
      ts_nodash={{ ts_nodash }}
      logical_date={{ logical_date }}
      data_interval_start={{ data_interval_start }}
      data_interval_end={{ data_interval_end }}
      prev_ds={{ prev_ds }}
      next_ds={{ next_ds }}
      run_id={{ run_id }}
      ds_add={{ macros.ds_add(ds, 7) }}
      ds_format={{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%Y') }}
      strftime={{ logical_date.strftime('%Y/%m/%d %H:%M') }}
      local={{ data_interval_end.in_timezone('Asia/Seoul') }}
      EOF
"#;

fn values(p: &Project, ds_nodash: &str) -> Vec<String> {
    std::fs::read_to_string(p.path().join(format!("values_{ds_nodash}.txt")))
        .unwrap()
        .lines()
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn template_values_equal_airflows_for_a_manual_run() {
    let p = Project::new();
    p.dag("tpl", &format!("schedule: '@daily'\n{TEMPLATE_DUMP}"));
    p.ok(&["dags", "test", "tpl", "2026-01-15"]);
    assert_eq!(
        values(&p, "20260115"),
        [
            "ds=2026-01-15",
            "ds_nodash=20260115",
            "ts=2026-01-15T00:00:00+00:00",
            "ts_nodash=20260115T000000",
            "logical_date=2026-01-15 00:00:00+00:00",
            "data_interval_start=2026-01-14 00:00:00+00:00",
            "data_interval_end=2026-01-15 00:00:00+00:00",
            "prev_ds=2026-01-14",
            "next_ds=2026-01-15",
            "run_id=manual__2026-01-15T00:00:00+00:00",
            "ds_add=2026-01-22",
            "ds_format=15/01/2026",
            "strftime=2026/01/15 00:00",
            "local=2026-01-15 09:00:00+09:00",
        ]
    );
}

#[test]
fn template_values_equal_airflows_for_a_scheduled_interval() {
    let p = Project::new();
    p.dag(
        "tpl",
        &format!("schedule: '@daily'\nstart_date: 2026-01-01\n{TEMPLATE_DUMP}"),
    );
    p.ok(&[
        "dags",
        "backfill",
        "tpl",
        "--start",
        "2026-01-15",
        "--end",
        "2026-01-15",
    ]);
    let v = values(&p, "20260115");
    assert_eq!(v[0], "ds=2026-01-15");
    assert_eq!(v[2], "ts=2026-01-15T00:00:00+00:00");
    assert_eq!(v[5], "data_interval_start=2026-01-15 00:00:00+00:00");
    assert_eq!(v[6], "data_interval_end=2026-01-16 00:00:00+00:00");
    assert_eq!(v[7], "prev_ds=2026-01-14");
    assert_eq!(v[8], "next_ds=2026-01-16");
    assert_eq!(v[9], "run_id=backfill__2026-01-15T00:00:00+00:00");
}

#[test]
fn a_seoul_dag_renders_ds_in_its_own_zone() {
    let p = Project::new();
    p.dag(
        "seoul",
        &format!("schedule: '0 3 * * *'\ntimezone: Asia/Seoul\n{TEMPLATE_DUMP}"),
    );
    p.ok(&[
        "dags",
        "backfill",
        "seoul",
        "--start",
        "2026-01-15",
        "--end",
        "2026-01-15",
    ]);
    let v = values(&p, "20260115");
    assert_eq!(
        v[0], "ds=2026-01-15",
        "03:00 KST on the 15th is the 14th in UTC; ds follows the DAG's zone"
    );
    assert_eq!(v[2], "ts=2026-01-14T18:00:00+00:00");
    assert_eq!(v[5], "data_interval_start=2026-01-14 18:00:00+00:00");
    assert_eq!(v[6], "data_interval_end=2026-01-15 18:00:00+00:00");
}

fn logical_dates(p: &Project, dag: &str) -> Vec<String> {
    let mut dates: Vec<String> = p
        .runs(dag)
        .iter()
        .map(|r| r["logical_date"].as_str().unwrap().to_string())
        .collect();
    dates.sort();
    dates
}

#[test]
fn berlin_0230_across_both_dst_changes() {
    let p = Project::new();
    p.dag("berlin", "schedule: '30 2 * * *'\ntimezone: Europe/Berlin\ntasks:\n  - {id: t, type: shell, command: 'echo {{ ds }} {{ ts }} >> days.txt'}\n");
    p.ok(&[
        "dags",
        "backfill",
        "berlin",
        "--start",
        "2026-03-28",
        "--end",
        "2026-03-30",
    ]);
    p.ok(&[
        "dags",
        "backfill",
        "berlin",
        "--start",
        "2026-10-24",
        "--end",
        "2026-10-26",
    ]);
    assert_eq!(
        logical_dates(&p, "berlin"),
        [
            "2026-03-28 01:30:00+00:00",
            "2026-03-29 01:30:00+00:00", // 02:30 does not exist: 03:30 CEST, as Airflow
            "2026-03-30 00:30:00+00:00",
            "2026-10-24 00:30:00+00:00",
            "2026-10-25 01:30:00+00:00", // 02:30 happens twice: once, at the second (CET), as Airflow
            "2026-10-26 01:30:00+00:00",
        ]
    );
    let mut days: Vec<String> = std::fs::read_to_string(p.path().join("days.txt"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    days.sort();
    assert_eq!(
        days,
        [
            "2026-03-28 2026-03-28T01:30:00+00:00",
            "2026-03-29 2026-03-29T01:30:00+00:00",
            "2026-03-30 2026-03-30T00:30:00+00:00",
            "2026-10-24 2026-10-24T00:30:00+00:00",
            "2026-10-25 2026-10-25T01:30:00+00:00",
            "2026-10-26 2026-10-26T01:30:00+00:00",
        ]
    );
}

fn snapshot(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn backfill_of_ten_intervals_and_reset_gives_the_same_results() {
    let p = Project::new();
    p.dag(
        "daily",
        r#"
schedule: "@daily"
start_date: 2025-12-01
tasks:
  - id: load
    type: shell
    command: |
      mkdir -p out
      echo "{{ ds }} {{ data_interval_start }} {{ data_interval_end }} {{ run_id }}" > "out/{{ ds }}.txt"
  - {id: check, type: shell, command: 'test -s "out/{{ ds }}.txt"', depends_on: [load]}
"#,
    );
    let dry = p.ok(&[
        "dags",
        "backfill",
        "daily",
        "--start",
        "2026-01-01",
        "--end",
        "2026-01-10",
        "--dry-run",
    ]);
    assert_eq!(dry.lines().count(), 10);
    assert!(p.runs("daily").is_empty(), "a dry run creates nothing");

    let out = p.ok(&[
        "dags",
        "backfill",
        "daily",
        "--start",
        "2026-01-01",
        "--end",
        "2026-01-10",
    ]);
    assert_eq!(out.matches("success").count(), 10, "{out}");
    let runs = p.runs("daily");
    assert_eq!(runs.len(), 10);
    assert!(
        runs.iter()
            .all(|r| r["state"] == "success" && r["run_type"] == "backfill")
    );
    let first = snapshot(&p.path().join("out"));
    assert_eq!(first.len(), 10);
    assert_eq!(
        first[0].1.trim(),
        "2026-01-01 2026-01-01 00:00:00+00:00 2026-01-02 00:00:00+00:00 backfill__2026-01-01T00:00:00+00:00"
    );

    let (code, _, stderr) = p.run(&[
        "dags",
        "backfill",
        "daily",
        "--start",
        "2026-01-01",
        "--end",
        "2026-01-10",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        stderr.matches("use --reset").count(),
        10,
        "existing runs are skipped: {stderr}"
    );

    std::fs::remove_dir_all(p.path().join("out")).unwrap();
    let out = p.ok(&[
        "dags",
        "backfill",
        "daily",
        "--start",
        "2026-01-01",
        "--end",
        "2026-01-10",
        "--reset",
    ]);
    assert_eq!(out.matches("success").count(), 10, "{out}");
    assert_eq!(p.runs("daily").len(), 10, "reset reuses the runs");
    assert_eq!(snapshot(&p.path().join("out")), first);
}
