//! Template values against Airflow's for the same dates (Airflow 3, create_cron_data_intervals).

use jiff::Timestamp;
use serde_json::json;
use std::collections::BTreeMap;
use weir_template::{Renderer, TemplateContext, check_syntax};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn ctx(tz: &str, logical: &str, start: &str, end: &str) -> TemplateContext {
    let mut variables = BTreeMap::new();
    variables.insert("region".to_string(), "eu".to_string());
    variables.insert("limits".to_string(), r#"{"rows": 10}"#.to_string());
    // As the store keeps them: JSON text, a shell task's last line as is, a mapped task's
    // values one row per map_index.
    let xcoms = weir_template::pulled_xcoms(
        [
            ("extract", -1, "return_value", r#"{"n": 3}"#),
            ("load", -1, "return_value", "done"),
            ("load", -1, "rows", "7"),
            ("fetch", 0, "return_value", "1"),
            ("fetch", 1, "return_value", r#""b""#),
        ]
        .into_iter()
        .map(|(t, i, k, v)| (t.to_string(), i, k.to_string(), v.to_string()))
        .collect(),
    );
    TemplateContext {
        connections: Default::default(),
        dag_id: "sales".into(),
        task_id: "report".into(),
        run_id: "manual__2026-01-15T00:00:00+00:00".into(),
        try_number: 2,
        timezone: tz.into(),
        logical_date: ts(logical),
        data_interval_start: ts(start),
        data_interval_end: ts(end),
        prev_logical_date: Some(ts(start)),
        next_logical_date: Some(ts(end)),
        params: json!({"country": "JP", "limit": 5})
            .as_object()
            .unwrap()
            .clone(),
        conf: json!({"country": "JP"}).as_object().unwrap().clone(),
        variables,
        xcoms,
        task: json!({"task_id": "report"}),
        dag: json!({"dag_id": "sales"}),
        map_index: -1,
        item: None,
        triggering_asset_events: Default::default(),
    }
}

#[test]
fn values_equal_airflows() {
    let utc = ctx(
        "UTC",
        "2026-01-15T00:00:00Z",
        "2026-01-14T00:00:00Z",
        "2026-01-15T00:00:00Z",
    );
    let seoul = ctx(
        "Asia/Seoul",
        "2026-01-14T15:00:00Z",
        "2026-01-13T15:00:00Z",
        "2026-01-14T15:00:00Z",
    );
    let cases: &[(&TemplateContext, &str, &str)] = &[
        (&utc, "{{ ds }}", "2026-01-15"),
        (&utc, "{{ ds_nodash }}", "20260115"),
        (&utc, "{{ ts }}", "2026-01-15T00:00:00+00:00"),
        (&utc, "{{ ts_nodash }}", "20260115T000000"),
        (&utc, "{{ ts_nodash_with_tz }}", "20260115T000000+0000"),
        (&utc, "{{ logical_date }}", "2026-01-15 00:00:00+00:00"),
        (
            &utc,
            "{{ data_interval_start }}",
            "2026-01-14 00:00:00+00:00",
        ),
        (&utc, "{{ data_interval_end }}", "2026-01-15 00:00:00+00:00"),
        (
            &utc,
            "{{ prev_ds }} {{ next_ds }} {{ prev_ds_nodash }}",
            "2026-01-14 2026-01-15 20260114",
        ),
        (
            &utc,
            "{{ logical_date.strftime('%Y/%m/%d %H') }}",
            "2026/01/15 00",
        ),
        (
            &utc,
            "{{ logical_date.isoformat() }}",
            "2026-01-15T00:00:00+00:00",
        ),
        (
            &utc,
            "{{ data_interval_end.in_timezone('Asia/Seoul') }}",
            "2026-01-15 09:00:00+09:00",
        ),
        (
            &utc,
            "{{ logical_date.add(days=1, hours=2) }}",
            "2026-01-16 02:00:00+00:00",
        ),
        (
            &utc,
            "{{ logical_date.year }}-{{ logical_date.month }}",
            "2026-1",
        ),
        (&utc, "{{ macros.ds_add('2026-01-31', 1) }}", "2026-02-01"),
        (&utc, "{{ macros.ds_add(ds, -15) }}", "2025-12-31"),
        (
            &utc,
            "{{ macros.ds_format('2026-01-15', '%Y-%m-%d', '%d/%m/%Y') }}",
            "15/01/2026",
        ),
        (
            &utc,
            "{{ macros.datetime(2026, 1, 1) }}",
            "2026-01-01 00:00:00+00:00",
        ),
        (
            &utc,
            "{{ params.country }} {{ params.limit }} {{ conf.country }}",
            "JP 5 JP",
        ),
        (
            &utc,
            "{{ dag_run.conf.country }} {{ run_id }}",
            "JP manual__2026-01-15T00:00:00+00:00",
        ),
        (
            &utc,
            "{{ var.value.region }} {{ var.json.limits.rows }}",
            "eu 10",
        ),
        (
            &utc,
            "{{ var.value.get('missing', 'fallback') }}",
            "fallback",
        ),
        (&utc, "{{ ti.xcom_pull(task_ids='extract')['n'] }}", "3"),
        (&utc, "{{ ti.xcom_pull(task_ids='load', key='rows') }}", "7"),
        (
            &utc,
            "{{ ti.xcom_pull(task_ids=['extract', 'load']) | tojson }}",
            r#"[{"n": 3}, "done"]"#,
        ),
        (&utc, "{{ ti.xcom_pull(task_ids='nothing') }}", "None"),
        (
            &utc,
            "{{ ti.xcom_pull(task_ids='fetch') | tojson }}",
            r#"[1, "b"]"#,
        ),
        (
            &utc,
            "{{ ti.try_number }} {{ task.task_id }} {{ dag.dag_id }}",
            "2 report sales",
        ),
        (&seoul, "{{ ds }}", "2026-01-15"),
        (&seoul, "{{ ts }}", "2026-01-14T15:00:00+00:00"),
        (
            &seoul,
            "{{ logical_date.in_timezone('Asia/Seoul').strftime('%Y-%m-%d %H:%M %Z') }}",
            "2026-01-15 00:00 KST",
        ),
    ];
    let r = Renderer::new();
    for (ctx, template, expected) in cases {
        assert_eq!(
            r.render_str(template, ctx).unwrap(),
            *expected,
            "{template}"
        );
    }
}

#[test]
fn errors_name_what_is_wrong() {
    let r = Renderer::new();
    let c = ctx(
        "UTC",
        "2026-01-15T00:00:00Z",
        "2026-01-14T00:00:00Z",
        "2026-01-15T00:00:00Z",
    );
    let e = r
        .render_str("select {{ nope }}", &c)
        .unwrap_err()
        .to_string();
    assert!(e.contains("undefined"), "{e}");
    assert!(e.contains("select {{ nope }}"), "{e}");
    let e = r
        .render_str("{{ var.value.get('missing') }}", &c)
        .unwrap_err()
        .to_string();
    assert!(e.contains("variable 'missing' does not exist"), "{e}");
    let e = r
        .render_str("{{ macros.ds_add('15-01-2026', 1) }}", &c)
        .unwrap_err()
        .to_string();
    assert!(e.contains("'15-01-2026' is not a YYYY-MM-DD date"), "{e}");
    let (message, line) = check_syntax("ok\n{{ broken ").unwrap_err();
    assert_eq!(line, 2);
    assert!(message.contains("syntax error"), "{message}");
    assert!(check_syntax("{{ ds }} {% if x %}y{% endif %}").is_ok());
}

#[test]
fn render_value_walks_nested_json() {
    let r = Renderer::new();
    let c = ctx(
        "UTC",
        "2026-01-15T00:00:00Z",
        "2026-01-14T00:00:00Z",
        "2026-01-15T00:00:00Z",
    );
    let value = json!({"day": "{{ ds }}", "list": ["{{ ds_nodash }}", 3, true], "n": null});
    assert_eq!(
        r.render_value(&value, &c).unwrap(),
        json!({"day": "2026-01-15", "list": ["20260115", 3, true], "n": null})
    );
    let env: BTreeMap<_, _> = Renderer::context_strings(&c).into_iter().collect();
    assert_eq!(env["ds"], "2026-01-15");
    assert_eq!(env["ts"], "2026-01-15T00:00:00+00:00");
    assert_eq!(env["try_number"], "2");
}

#[test]
fn render_json_keeps_a_single_expressions_value_and_reads_json_text() {
    let mut c = ctx(
        "UTC",
        "2026-01-15T00:00:00Z",
        "2026-01-14T00:00:00Z",
        "2026-01-15T00:00:00Z",
    );
    c.params.insert("files".into(), json!(["a.csv", "b.csv"]));
    let r = Renderer::new();
    let cases = [
        ("{{ params.files }}", json!(["a.csv", "b.csv"])),
        (" {{ params.files | length }} ", json!(2)),
        ("{{ params.files | tojson }}", json!(["a.csv", "b.csv"])),
        (
            "[{% for f in params.files %}\"{{ f }}\"{% if not loop.last %}, {% endif %}{% endfor %}]",
            json!(["a.csv", "b.csv"]),
        ),
        ("{{ params.country }}", json!("JP")),
        // Undefined gives null: the caller says what it expected instead.
        ("{{ params.missing }}", json!(null)),
    ];
    for (template, expected) in cases {
        assert_eq!(r.render_json(template, &c).unwrap(), expected, "{template}");
    }
    // The item of a mapped instance and its index.
    c.map_index = 3;
    c.item = Some(json!({"file": "a.csv", "region": "kr"}));
    assert_eq!(
        r.render_str("{{ item.file }} {{ item.region }} {{ map_index }}", &c)
            .unwrap(),
        "a.csv kr 3"
    );
    c.item = None;
    assert!(
        r.render_str("{{ item }}", &c).is_err(),
        "no item outside a mapped task"
    );
}
