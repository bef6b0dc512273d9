//! Bad DAG files get clear errors with file:line and a hint; good ones build the right Dag.

use weir_core::{Schedule, TriggerRule};
use weir_spec::{ParseOptions, SpecError, parse_dag};

fn errors(yaml: &[u8]) -> Vec<SpecError> {
    parse_dag("dags/sales.yaml", yaml, &ParseOptions::default())
        .expect_err("should fail")
        .0
}

/// (what, file text, line, message part, hint part)
const CASES: &[(&str, &str, u32, &str, &str)] = &[
    (
        "yaml syntax",
        "dag_id: x\ntasks:\n  - id: a\n   type: shell\n",
        4,
        "invalid YAML",
        "indentation",
    ),
    ("empty file", "", 1, "file is empty", "tasks:"),
    (
        "comments only",
        "# nothing here\n",
        1,
        "file is empty",
        "tasks:",
    ),
    ("not a mapping", "- a\n- b\n", 1, "must be a mapping", ""),
    (
        "unknown key",
        "tasks:\n  - id: load\n    type: shell\n    command: x\n    dependsOn: [a]\n",
        5,
        "unknown key 'dependsOn' in task 'load'",
        "did you mean 'depends_on'?",
    ),
    (
        "airflow name",
        "schedule_interval: '@daily'\ntasks:\n  - {id: a, type: empty}\n",
        1,
        "unknown key 'schedule_interval' at the top level",
        "weir calls it 'schedule'",
    ),
    (
        "missing tasks",
        "dag_id: x\n",
        1,
        "missing 'tasks'",
        "add a list of tasks",
    ),
    (
        "missing id",
        "tasks:\n  - type: empty\n",
        2,
        "task #1 has no 'id'",
        "add id",
    ),
    (
        "missing required",
        "tasks:\n  - id: q\n    type: sql\n    sql: select 1\n",
        2,
        "task 'q' (sql) needs 'connection'",
        "connection id",
    ),
    (
        "missing one of",
        "tasks:\n  - id: s\n    type: shell\n",
        2,
        "task 's' (shell) needs 'command' or 'script'",
        "",
    ),
    (
        "wrong type",
        "tasks:\n  - id: a\n    type: empty\n    retries: three\n",
        4,
        "'retries' must be a whole number, not 'three'",
        "",
    ),
    (
        "wrong bool",
        "catchup: sometimes\ntasks:\n  - {id: a, type: empty}\n",
        1,
        "'catchup' must be true or false",
        "",
    ),
    (
        "duplicate id",
        "tasks:\n  - id: a\n    type: empty\n  - id: a\n    type: empty\n",
        4,
        "duplicate task id 'a' (first defined on line 2)",
        "own id",
    ),
    (
        "unknown dependency",
        "tasks:\n  - {id: extract, type: empty}\n  - id: load\n    type: empty\n    depends_on: [extrct]\n",
        5,
        "task 'load' depends on unknown task 'extrct'",
        "did you mean 'extract'?",
    ),
    (
        "self dependency",
        "tasks:\n  - id: a\n    type: empty\n    depends_on: a\n",
        4,
        "task 'a' depends on itself",
        "",
    ),
    (
        "cycle",
        "tasks:\n  - {id: a, type: empty, depends_on: [c]}\n  - {id: b, type: empty, depends_on: [a]}\n  - {id: c, type: empty, depends_on: [b]}\n",
        2,
        "dependency cycle: a -> c -> b -> a",
        "remove one",
    ),
    (
        "unknown task type",
        "tasks:\n  - id: a\n    type: shel\n",
        3,
        "unknown task type 'shel' in task 'a'",
        "did you mean 'shell'?",
    ),
    (
        "missing type",
        "tasks:\n  - id: a\n",
        2,
        "task 'a' has no 'type'",
        "shell, python",
    ),
    (
        "bad cron",
        "schedule: '61 3 * * *'\ntasks:\n  - {id: a, type: empty}\n",
        1,
        "invalid schedule",
        "0 3 * * *",
    ),
    (
        "cron fields",
        "schedule: '0 3 * *'\ntasks:\n  - {id: a, type: empty}\n",
        1,
        "has 4 fields",
        "@daily",
    ),
    (
        "bad preset",
        "schedule: '@dayly'\ntasks:\n  - {id: a, type: empty}\n",
        1,
        "unknown schedule preset '@dayly'",
        "did you mean '@daily'?",
    ),
    (
        "unknown time zone",
        "timezone: Asia/Seol\ntasks:\n  - {id: a, type: empty}\n",
        1,
        "unknown time zone 'Asia/Seol'",
        "did you mean 'Asia/Seoul'?",
    ),
    (
        "bad duration",
        "tasks:\n  - id: a\n    type: empty\n    retry_delay: 5 parsecs\n",
        4,
        "'retry_delay' is not a duration",
        "5m",
    ),
    (
        "bad default_args duration",
        "default_args: {execution_timeout: soon}\ntasks:\n  - {id: a, type: empty}\n",
        1,
        "'execution_timeout' is not a duration",
        "30s",
    ),
    (
        "unknown trigger rule",
        "tasks:\n  - id: a\n    type: empty\n    trigger_rule: all_sucess\n",
        4,
        "unknown trigger_rule 'all_sucess'",
        "did you mean 'all_success'?",
    ),
    (
        "jinja syntax",
        "tasks:\n  - id: a\n    type: shell\n    command: echo {{ ds \n",
        4,
        "template syntax error in 'command' of task 'a'",
        "balanced",
    ),
    (
        "jinja in a block",
        "tasks:\n  - id: a\n    type: shell\n    command: |\n      echo ok\n      echo {% if x %}\n",
        6,
        "template syntax error in 'command'",
        "",
    ),
    (
        "not utf-8",
        "tasks:\n  - id: a\n    type: shell\n    command: echo \u{0}",
        0,
        "",
        "",
    ),
    (
        "bad start_date",
        "start_date: yesterday\ntasks:\n  - {id: a, type: empty}\n",
        1,
        "bad start_date",
        "",
    ),
    (
        "every without start",
        "schedule: every 15m\ntasks:\n  - {id: a, type: empty}\n",
        1,
        "needs a start_date",
        "start_date",
    ),
    (
        "unknown xcom value",
        "tasks:\n  - id: x\n    type: shell\n    command: echo hi\n    xcom: lastline\n",
        5,
        "unknown value 'lastline' for 'xcom' in task 'x'",
        "did you mean 'last_line'?",
    ),
    (
        "unknown sql mode",
        "tasks:\n  - id: t\n    type: sql\n    connection: wh\n    sql: select 1\n    mode: incremantal\n",
        6,
        "unknown value 'incremantal' for 'mode' in task 't'",
        "did you mean 'incremental'?",
    ),
    (
        "unknown sql xcom",
        "tasks:\n  - id: t\n    type: sql\n    connection: wh\n    sql: select 1\n    xcom: all\n",
        6,
        "unknown value 'all' for 'xcom' in task 't'",
        "allowed: rows, first_row",
    ),
    (
        "unknown severity",
        "tasks:\n  - id: c\n    type: check\n    connection: wh\n    sql: select 1\n    expect: 1\n    severity: warning\n",
        7,
        "unknown value 'warning' for 'severity' in task 'c'",
        "did you mean 'warn'?",
    ),
    (
        "unknown http method",
        "tasks:\n  - id: h\n    type: http\n    url: https://example.com\n    method: FETCH\n",
        5,
        "unknown value 'FETCH' for 'method' in task 'h'",
        "allowed: GET, POST",
    ),
    (
        "unknown http xcom",
        "tasks:\n  - id: h\n    type: http\n    url: https://example.com\n    xcom: jsn\n",
        5,
        "unknown value 'jsn' for 'xcom' in task 'h'",
        "did you mean 'json'?",
    ),
    (
        "unknown nested value",
        "tasks:\n  - id: h\n    type: http\n    url: https://example.com\n    save_to: {connection: wh, table: t, format: parquet}\n",
        5,
        "unknown value 'parquet' for 'save_to.format' in task 'h'",
        "allowed: json, csv",
    ),
    (
        "unknown nested key",
        "tasks:\n  - id: h\n    type: http\n    url: https://example.com\n    save_to:\n      connection: wh\n      table: t\n      fromat: csv\n",
        8,
        "unknown key 'fromat' in 'save_to' in task 'h'",
        "did you mean 'format'?",
    ),
    (
        "missing nested key",
        "tasks:\n  - id: c\n    type: check\n    connection: wh\n    table: t\n    freshness: {column: loaded_at}\n",
        6,
        "'freshness' in task 'c' needs 'max_age'",
        "old",
    ),
    (
        "own key wrong type",
        "tasks:\n  - id: h\n    type: http\n    url: https://example.com\n    request_retries: three\n",
        5,
        "'request_retries' in task 'h' must be a whole number >= 0, not 'three'",
        "",
    ),
    (
        "own key list item wrong type",
        "tasks:\n  - id: h\n    type: http\n    url: https://example.com\n    expect_status: [200, ok]\n",
        5,
        "'expect_status[1]' in task 'h' must be a whole number, not 'ok'",
        "",
    ),
    (
        "own key bool",
        "tasks:\n  - id: m\n    type: models\n    expand: yes please\n",
        4,
        "'expand' in task 'm' must be true or false, not 'yes please'",
        "",
    ),
    (
        "own key duration",
        "tasks:\n  - id: h\n    type: http\n    url: https://example.com\n    timeout: soon\n",
        5,
        "'timeout' in task 'h' is not a duration",
        "30s",
    ),
    (
        "own key string given a list",
        "tasks:\n  - id: s\n    type: shell\n    command: [echo, hi]\n",
        4,
        "'command' in task 's' must be a string (template), not a list",
        "",
    ),
    (
        "unknown notify channel",
        "on_failure: [{notify: slak, connection: alerts}]\ntasks:\n  - {id: a, type: empty}\n",
        1,
        "unknown value 'slak' for 'on_failure[0].notify' at the top level",
        "did you mean 'slack'?",
    ),
    (
        "task callback unknown key",
        "tasks:\n  - id: a\n    type: empty\n    on_failure: {notify: email, connection: smtp, too: me@example.com}\n",
        4,
        "unknown key 'too' in 'on_failure' in task 'a'",
        "did you mean 'to'?",
    ),
    (
        "notify task channel",
        "tasks:\n  - id: n\n    type: notify\n    channel: sms\n    connection: x\n",
        4,
        "unknown value 'sms' for 'channel' in task 'n'",
        "allowed: webhook, slack, email",
    ),
    (
        "sensor mode",
        "tasks:\n  - id: w\n    type: wait_for\n    file: /tmp/x\n    mode: pokey\n",
        5,
        "unknown value 'pokey' for 'mode' in task 'w'",
        "did you mean 'poke'?",
    ),
    (
        "bad dag id",
        "dag_id: 'my dag'\ntasks:\n  - {id: a, type: empty}\n",
        1,
        "dag_id 'my dag' may only contain",
        "",
    ),
];

#[test]
fn every_kind_of_mistake_gets_file_line_message_and_hint() {
    for (what, yaml, line, message, hint) in CASES {
        if *what == "not utf-8" {
            continue;
        }
        let errs = errors(yaml.as_bytes());
        let e = errs
            .iter()
            .find(|e| e.message.contains(message))
            .unwrap_or_else(|| panic!("{what}: no error containing {message:?} in {errs:#?}"));
        assert_eq!(e.file, "dags/sales.yaml", "{what}");
        assert_eq!(e.line, *line, "{what}: {e:?}");
        if !hint.is_empty() {
            assert!(
                e.hint.as_deref().unwrap_or("").contains(hint),
                "{what}: hint {:?} lacks {hint:?}",
                e.hint
            );
        }
    }
}

#[test]
fn a_file_that_is_not_utf8_names_the_line() {
    let errs = errors(b"tasks:\n  - id: a\n    type: shell\n    command: echo \xff\xfe\n");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line, 4);
    assert!(errs[0].message.contains("not valid UTF-8"), "{:?}", errs[0]);
    assert_eq!(errs[0].hint.as_deref(), Some("save the file as UTF-8"));
}

#[test]
fn every_problem_is_reported_at_once_in_line_order() {
    let errs = errors(b"timezone: Mars/Base\nschedule: 'nope'\ntasks:\n  - id: a\n    type: shel\n  - id: b\n    type: empty\n    retries: -1\n    depends_on: [zz]\n");
    let lines: Vec<u32> = errs.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![1, 2, 5, 8, 9], "{errs:#?}");
}

#[test]
fn display_is_file_line_message_then_hint() {
    let errs = errors(b"tasks:\n  - id: a\n    type: shel\n");
    assert_eq!(
        errs[0].to_string(),
        "dags/sales.yaml:3: unknown task type 'shel' in task 'a'\n  hint: did you mean 'shell'?"
    );
}

#[test]
fn a_type_missing_from_this_build_is_refused() {
    let opts = ParseOptions {
        default_timezone: "UTC".into(),
        available_types: vec!["shell".into(), "empty".into()],
    };
    let err = parse_dag(
        "d.yaml",
        b"tasks:\n  - {id: q, type: sql, connection: wh, sql: select 1}\n",
        &opts,
    )
    .unwrap_err();
    assert!(
        err.0[0]
            .message
            .contains("task type 'sql' is not available in this build"),
        "{err}"
    );
    assert_eq!(err.0[0].hint.as_deref(), Some("available: shell, empty"));
}

#[test]
fn the_design_example_builds_with_defaults_applied() {
    let yaml = br#"
dag_id: user_events_daily
description: Load raw events, build models, check them
owner: data-eng
tags: [abtest]
schedule: "0 3 * * *"
timezone: Asia/Seoul
start_date: 2026-01-01
catchup: false
max_active_runs: 1
params: {country: KR}
default_args: {retries: 2, retry_delay: 5m, retry_exponential_backoff: true, execution_timeout: 30m}
on_failure: [{notify: slack, connection: slack_alerts}]
tasks:
  - id: extract
    type: http
    url: "https://example.com/events?date={{ ds }}"
    connection: events_api
  - id: load_names
    type: sql
    connection: warehouse
    sql: sql/load_names.sql
  - id: transform
    type: models
    select: "+fact_user_event"
    expand: true
    depends_on: [extract, load_names]
  - id: row_count_ok
    type: check
    connection: warehouse
    sql: "select count(*) from core.fact_user_event where event_date = '{{ ds }}'"
    expect: "> 0"
    depends_on: transform
  - id: report
    type: python
    script: scripts/report.py
    depends_on: [row_count_ok]
    trigger_rule: all_done
    retries: 0
"#;
    let dag = parse_dag(
        "dags/user_events_daily.yaml",
        yaml,
        &ParseOptions::default(),
    )
    .unwrap();
    assert_eq!(dag.dag_id, "user_events_daily");
    assert_eq!(
        dag.schedule,
        Schedule::Cron {
            expr: "0 3 * * *".into(),
            text: "0 3 * * *".into()
        }
    );
    assert_eq!(dag.timezone, "Asia/Seoul");
    let start: jiff::Timestamp = "2025-12-31T15:00:00Z".parse().unwrap();
    assert_eq!(dag.start_date, Some(start.as_microsecond()));
    assert_eq!(dag.max_active_runs, 1);
    assert_eq!(dag.params["country"], "KR");
    assert_eq!(dag.callbacks["on_failure"][0]["notify"], "slack");
    assert_eq!(dag.tasks.len(), 5);
    let transform = dag.task("transform").unwrap();
    assert_eq!(transform.depends_on, vec!["extract", "load_names"]);
    assert_eq!(transform.retries, 2, "from default_args");
    assert_eq!(transform.retry_delay.as_secs(), 300);
    assert!(transform.retry_exponential_backoff);
    assert_eq!(transform.execution_timeout.map(|d| d.as_secs()), Some(1800));
    assert_eq!(transform.config["select"], "+fact_user_event");
    assert_eq!(
        dag.task("row_count_ok").unwrap().depends_on,
        vec!["transform"]
    );
    let report = dag.task("report").unwrap();
    assert_eq!(report.retries, 0, "the task's own value wins");
    assert_eq!(report.trigger_rule, TriggerRule::AllDone);
    assert_eq!(report.line, 34);
    assert_eq!(report.pool, "default_pool");
}

#[test]
fn schedules_presets_every_and_defaults() {
    let parse = |s: &str| {
        parse_dag(
            "d.yaml",
            format!("schedule: {s}\nstart_date: 2026-01-01\ntasks:\n  - {{id: a, type: empty}}\n")
                .as_bytes(),
            &ParseOptions::default(),
        )
        .unwrap()
    };
    assert_eq!(
        parse("'@daily'").schedule,
        Schedule::Cron {
            expr: "0 0 * * *".into(),
            text: "@daily".into()
        }
    );
    assert_eq!(parse("null").schedule, Schedule::Never);
    assert_eq!(parse("'@once'").schedule, Schedule::Once);
    assert!(
        matches!(parse("every 15m").schedule, Schedule::Every { every, .. } if every.as_secs() == 900)
    );
    let dag = parse("null");
    assert_eq!(dag.dag_id, "d");
    assert_eq!(dag.timezone, "UTC");
    assert!(!dag.catchup);
}

#[test]
fn the_brief_example_reads_as_a_user_sees_it() {
    let errs =
        errors(b"tasks:\n  - id: x\n    type: shell\n    command: echo hi\n    xcom: lastline\n");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        errs[0].to_string(),
        "dags/sales.yaml:5: unknown value 'lastline' for 'xcom' in task 'x'\n  hint: did you mean 'last_line'?"
    );
}

#[test]
fn several_wrong_values_are_reported_at_once() {
    let errs = errors(b"tasks:\n  - id: s\n    type: sql\n    connection: wh\n    sql: select 1\n    mode: upsert\n    xcom: row\n  - id: h\n    type: http\n    url: u\n    method: GRAB\n");
    let lines: Vec<u32> = errs.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![6, 7, 11], "{errs:#?}");
}

#[test]
fn values_the_operators_accepted_before_still_validate() {
    let yaml = b"tasks:
  - {id: a, type: shell, command: echo, xcom: file}
  - {id: b, type: http, url: u, method: post, timeout: 30, retry_backoff: 2s, expect_status: 201}
  - {id: c, type: http, url: u, expect_status: [200, 204], save_to: {connection: wh, table: t, mode: append, format: csv}}
  - {id: d, type: sql, connection: wh, sql: s.sql, unique_key: id, mode: incremental, table: t}
  - {id: e, type: check, connection: wh, table: t, unique: id, row_count: {min: 1, max: 2.5}, freshness: {column: at, max_age: 1d}, severity: warn}
  - {id: f, type: python, callable: m:f, args: [1, \"{{ ds }}\"], kwargs: {a: 1}, xcom: last_line}
  - {id: g, type: notify, channel: email, connection: smtp, to: me@example.com}
  - {id: h, type: empty, on_failure: {channel: slack, connection: alerts}}
";
    let dag = parse_dag("d.yaml", yaml, &ParseOptions::default()).unwrap();
    assert_eq!(dag.tasks.len(), 8);
    assert_eq!(dag.task("b").unwrap().config["method"], "post");
}

#[test]
fn the_declared_trigger_rules_are_the_ones_weir_core_evaluates() {
    let core: Vec<&str> = TriggerRule::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(weir_spec::values::TRIGGER_RULES, core.as_slice());
}

#[test]
fn every_declared_example_validates() {
    parse_dag(
        "dags/user_events_daily.yaml",
        weir_spec::EXAMPLE_DAG.as_bytes(),
        &ParseOptions::default(),
    )
    .unwrap_or_else(|e| panic!("the reference's example DAG: {e}"));
    for t in weir_spec::TASK_TYPES {
        let yaml = format!("tasks:\n{}", t.example);
        let dag = parse_dag("d.yaml", yaml.as_bytes(), &ParseOptions::default())
            .unwrap_or_else(|e| panic!("example of {}: {e}", t.name));
        assert_eq!(dag.tasks[0].task_type, t.name);
    }
}

#[test]
fn the_schema_and_the_reference_name_every_task_type_and_key() {
    let schema = weir_spec::json_schema();
    let reference = weir_spec::reference_markdown(&[]);
    for t in weir_spec::TASK_TYPES {
        let def = &schema["definitions"][format!("task_{}", t.name)];
        assert_eq!(def["properties"]["type"]["const"], t.name);
        assert!(
            reference.contains(&format!("### `{}`", t.name)),
            "{}",
            t.name
        );
        for k in t.keys.iter().chain(weir_spec::COMMON_TASK_KEYS) {
            assert!(
                def["properties"][k.name].is_object(),
                "{}.{}",
                t.name,
                k.name
            );
            assert!(
                reference.contains(&format!("| `{}` |", k.name)),
                "{}",
                k.name
            );
        }
        assert_eq!(def["additionalProperties"], false);
    }
    for k in weir_spec::DAG_KEYS {
        assert!(schema["properties"][k.name].is_object(), "{}", k.name);
    }
    assert_eq!(schema["required"], serde_json::json!(["tasks"]));
    assert_eq!(
        schema["definitions"]["task_shell"]["properties"]["xcom"]["enum"],
        serde_json::json!(["last_line", "file"])
    );
}
