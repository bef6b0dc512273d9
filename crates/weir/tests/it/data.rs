//! Data tasks: `sql` and `check` against DuckDB (the default warehouse) and PostgreSQL,
//! connections and their secrets.

use crate::support::Project;
use serde_json::{Value, json};

const RUN: &str = "manual__2026-01-15T00:00:00+00:00";

const DUCKDB: &str = "duckdb://.weir/warehouse.duckdb";

#[test]
fn a_failing_second_statement_leaves_the_table_as_it_was() {
    let p = Project::new();
    p.dag(
        "setup",
        r#"
tasks:
  - id: create
    type: sql
    connection: warehouse
    sql: |
      create table names (id integer, name varchar);
      insert into names values (1, 'Ann'), (2, 'Bo');
"#,
    );
    p.ok(&["dags", "test", "setup", "2026-01-15"]);
    p.dag(
        "broken",
        r#"
tasks:
  - id: rewrite
    type: sql
    connection: warehouse
    sql: |
      delete from names;
      insert into names values (3, 'Cy', 'too many columns');
"#,
    );
    let (code, stdout, _) = p.run(&["dags", "test", "broken", "2026-01-15"]);
    assert_eq!(code, 1, "{stdout}");
    let log = p.log("broken", RUN, "rewrite", 1);
    assert!(
        log.contains("task 'rewrite' on connection 'warehouse'"),
        "the error names the task and connection:\n{log}"
    );
    assert_eq!(
        p.warehouse_rows(DUCKDB, "select id, name from names"),
        vec![
            json!({"id": 1, "name": "Ann"}),
            json!({"id": 2, "name": "Bo"})
        ]
    );
}

#[test]
fn a_failed_check_logs_its_offending_rows_and_fails_downstream() {
    let p = Project::new();
    p.dag(
        "checked",
        r#"
tasks:
  - id: load
    type: sql
    connection: warehouse
    mode: full_refresh
    table: core.users
    sql: select * from (values (1, 'a'), (2, 'b'), (2, 'c'), (3, null)) t(id, email)
  - id: pk
    type: check
    connection: warehouse
    table: core.users
    unique: id
    not_null: [email]
    depends_on: [load]
  - id: rows
    type: check
    connection: warehouse
    sql: select count(*) from core.users
    expect: between 1 and 10
    depends_on: [load]
  - id: publish
    type: shell
    command: echo published
    depends_on: [pk, rows]
"#,
    );
    let (code, stdout, _) = p.run(&["dags", "test", "checked", "2026-01-15"]);
    assert_eq!(code, 1, "{stdout}");
    let states = p.states("checked", RUN);
    assert_eq!(states["load"], "success");
    assert_eq!(states["pk"], "failed");
    assert_eq!(states["rows"], "success");
    assert_eq!(states["publish"], "upstream_failed");
    let log = p.log("checked", RUN, "pk", 1);
    assert!(
        log.contains("check failed: 1 duplicated values of unique(id) in core.users"),
        "{log}"
    );
    assert!(
        log.contains("offending rows (showing 1 of 1):\nid | n\n---+--\n2  | 2"),
        "{log}"
    );
    assert!(
        log.contains("1 rows of core.users have NULL in email"),
        "{log}"
    );
    assert!(log.contains("3  | NULL"), "{log}");
}

#[test]
fn sql_modes_rerun_and_backfill_on_duckdb_and_postgres() {
    let sqlite = Project::new();
    sqlite.ok(&[
        "connections",
        "add",
        "warehouse",
        "--conn-uri",
        "sqlite://.weir/warehouse.db",
    ]);
    let mut projects = vec![
        (Project::new(), DUCKDB.to_string(), "mart."),
        (sqlite, "sqlite://.weir/warehouse.db".to_string(), ""),
    ];
    if let Some(pg) = Project::on_postgres() {
        // The same DAG on PostgreSQL: one connection changes.
        let url = pg.database_url.clone().unwrap();
        pg.ok(&["connections", "add", "warehouse", "--conn-uri", &url]);
        projects.push((pg, url, "mart."));
    }
    for (p, uri, schema) in &projects {
        p.dag(
            "modes",
            &r#"
schedule: "@daily"
start_date: 2026-01-01
tasks:
  - id: daily
    type: sql
    connection: warehouse
    mode: replace_partition
    table: SCHEMAdaily
    partition: {ds: "{{ ds }}"}
    sql: "select '{{ ds }}' as ds, {{ macros.ds_format(ds, '%Y-%m-%d', '%d') | int }} as n"
  - id: latest
    type: sql
    connection: warehouse
    mode: incremental
    unique_key: [k]
    table: SCHEMAlatest
    sql: "select 'x' as k, '{{ ds }}' as ds"
  - id: snapshot
    type: sql
    connection: warehouse
    mode: full_refresh
    table: SCHEMAsnapshot
    sql: select count(*) as days from SCHEMAdaily
    depends_on: [daily]
"#
            .replace("SCHEMA", schema),
        );
        for args in [
            vec![
                "dags",
                "backfill",
                "modes",
                "--start",
                "2026-01-01",
                "--end",
                "2026-01-05",
            ],
            vec![
                "dags",
                "backfill",
                "modes",
                "--start",
                "2026-01-01",
                "--end",
                "2026-01-05",
                "--reset",
            ],
        ] {
            p.ok(&args);
            let states = p.states("modes", "backfill__2026-01-03T00:00:00+00:00");
            assert!(states.values().all(|s| s == "success"), "{states:?}");
        }
        let daily = p.warehouse_rows(uri, &format!("select ds, n from {schema}daily"));
        assert_eq!(daily.len(), 5, "{uri}: {daily:?}");
        assert_eq!(daily[2], json!({"ds": "2026-01-03", "n": 3}));
        let latest = p.warehouse_rows(uri, &format!("select k from {schema}latest"));
        assert_eq!(
            latest,
            vec![json!({"k": "x"})],
            "{uri}: one row per unique key"
        );
        let snapshot = p.warehouse_rows(uri, &format!("select days from {schema}snapshot"));
        assert_eq!(snapshot.len(), 1, "{uri}");
    }
}

#[test]
fn secrets_are_encrypted_at_rest_and_masked_everywhere() {
    let p = Project::new();
    p.ok(&[
        "connections",
        "add",
        "api",
        "--conn-uri",
        "https://etl_user:S3cretPassw0rd@api.example.com/v1?api_key=KeyValue123",
    ]);
    p.ok(&["variables", "set", "db_password", "VarSecret456"]);
    p.ok(&["variables", "set", "region", "eu-west"]);

    let raw = std::fs::read(p.path().join(".weir/metadata.db")).unwrap();
    let wal = std::fs::read(p.path().join(".weir/metadata.db-wal")).unwrap_or_default();
    for secret in ["S3cretPassw0rd", "KeyValue123", "VarSecret456"] {
        for bytes in [&raw, &wal] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} is stored in plain text"
            );
        }
    }

    let listed = p.ok(&["connections", "list"]);
    assert!(
        listed.contains("***")
            && !listed.contains("S3cretPassw0rd")
            && !listed.contains("KeyValue123"),
        "{listed}"
    );
    let got = p.ok(&["connections", "get", "api"]);
    assert!(!got.contains("S3cretPassw0rd"), "{got}");
    let shown = p.ok(&["connections", "get", "api", "--show-secrets"]);
    assert!(shown.contains("S3cretPassw0rd"), "{shown}");
    let exported = p.ok(&["connections", "export"]);
    assert!(
        !exported.contains("S3cretPassw0rd") && !exported.contains("KeyValue123"),
        "{exported}"
    );
    let full = p.ok(&["connections", "export", "-", "--include-secrets"]);
    assert!(full.contains("S3cretPassw0rd"), "{full}");
    let vars = p.ok(&["variables", "list"]);
    assert!(
        vars.contains("eu-west") && !vars.contains("VarSecret456"),
        "{vars}"
    );
    let vars = p.ok(&["variables", "export"]);
    assert!(!vars.contains("VarSecret456"), "{vars}");

    p.dag(
        "leaky",
        r#"
tasks:
  - id: echo
    type: shell
    command: |
      echo "password is {{ conn.api.password }} and key {{ conn.api.extra_dejson.api_key }}"
      echo "var is {{ var.value.db_password }}, region {{ var.value.region }}"
"#,
    );
    p.ok(&["dags", "test", "leaky", "2026-01-15"]);
    let log = p.log("leaky", RUN, "echo", 1);
    assert!(log.contains("password is *** and key ***"), "{log}");
    assert!(log.contains("var is ***, region eu-west"), "{log}");
}

#[test]
fn airflow_connection_and_variable_exports_import() {
    let p = Project::new();
    // What `airflow connections export conns.json` and `airflow variables export vars.json` write.
    p.write(
        "conns.json",
        r#"{
  "warehouse_pg": {"conn_type": "postgres", "description": "", "login": "etl", "password": "pgPass!99",
                   "host": "db.internal", "port": 5432, "schema": "analytics", "extra": "{\"sslmode\": \"disable\"}"},
  "events_api": {"conn_type": "http", "description": null, "login": null, "password": null,
                 "host": "events.example.com", "port": null, "schema": "https", "extra": ""}
}"#,
    );
    p.write("vars.json", r#"{"country": "KR", "limits": {"rows": 10}}"#);
    p.ok(&["connections", "import", "conns.json"]);
    p.ok(&["variables", "import", "vars.json"]);
    let conns = p.json(&["connections", "list", "--show-secrets"]);
    let pg = conns
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["conn_id"] == "warehouse_pg")
        .unwrap();
    assert_eq!(pg["host"], "db.internal");
    assert_eq!(pg["port"], 5432);
    assert_eq!(pg["password"], "pgPass!99");
    assert_eq!(pg["extra"], r#"{"sslmode":"disable"}"#);
    assert_eq!(p.ok(&["variables", "get", "country"]).trim(), "KR");
    // The round trip gives Airflow's shape back.
    let exported: Value =
        serde_json::from_str(&p.ok(&["connections", "export", "-", "--include-secrets"])).unwrap();
    assert_eq!(exported["warehouse_pg"]["schema"], "analytics");
    assert_eq!(exported["events_api"]["conn_type"], "http");
}

#[test]
fn bad_connections_and_sql_get_clear_errors() {
    let p = Project::new();
    let (code, _, stderr) = p.run(&["connections", "add", "x", "--conn-uri", "not a uri"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("is not a connection URI"), "{stderr}");
    p.dag(
        "bad",
        r#"
tasks:
  - id: no_conn
    type: sql
    connection: nowhere
    sql: select 1
  - id: bad_sql
    type: sql
    connection: warehouse
    sql: selec 1
  - id: no_table
    type: check
    connection: warehouse
    sql: select count(*) from missing_table
    expect: "> 0"
  - id: not_a_number
    type: check
    connection: warehouse
    sql: select 'abc'
    expect: "> 0"
"#,
    );
    let (code, _, _) = p.run(&["dags", "test", "bad", "2026-01-15"]);
    assert_eq!(code, 1);
    let expect = [
        ("no_conn", "connection 'nowhere' does not exist"),
        ("bad_sql", "task 'bad_sql' on connection 'warehouse'"),
        ("bad_sql", "syntax error"),
        ("no_table", "missing_table"),
        ("not_a_number", "which is not a number"),
    ];
    for (task, text) in expect {
        let log = p.log("bad", RUN, task, 1);
        assert!(log.contains(text), "{task}: expected '{text}' in:\n{log}");
        assert!(!log.contains("panicked"), "{log}");
    }
}

#[test]
fn an_http_body_that_cannot_be_parsed_fails_the_task_clearly() {
    let p = Project::new();
    p.write("data/broken.json", "[{\"a\": 1}, {\"a\": ");
    p.dag(
        "extract",
        r#"
tasks:
  - id: fetch
    type: http
    url: "file://data/broken.json"
    save_to: {connection: warehouse, table: raw.things, format: json}
"#,
    );
    let (code, _, _) = p.run(&["dags", "test", "extract", "2026-01-15"]);
    assert_eq!(code, 1);
    let log = p.log("extract", RUN, "fetch", 1);
    assert!(
        log.contains("task 'fetch': the response is not valid JSON at line 1 column"),
        "{log}"
    );
}

#[test]
fn row_count_and_freshness_checks() {
    let p = Project::new();
    p.dag(
        "fresh",
        r#"
tasks:
  - id: load
    type: sql
    connection: warehouse
    mode: full_refresh
    table: events
    sql: select range as id, now()::timestamp as loaded_at from range(5)
  - id: fresh_enough
    type: check
    connection: warehouse
    table: events
    freshness: {column: loaded_at, max_age: 1h}
    row_count: {min: 1, max: 10}
    depends_on: [load]
  - id: too_few
    type: check
    connection: warehouse
    table: events
    row_count: {min: 10}
    depends_on: [load]
  - id: too_stale
    type: check
    connection: warehouse
    table: events
    where: "id > 100"
    freshness: {column: loaded_at, max_age: 1h}
    severity: warn
    depends_on: [load]
"#,
    );
    let (code, _, _) = p.run(&["dags", "test", "fresh", "2026-01-15"]);
    assert_eq!(code, 1);
    let states = p.states("fresh", RUN);
    assert_eq!(states["fresh_enough"], "success");
    assert_eq!(states["too_few"], "failed");
    assert_eq!(states["too_stale"], "success", "severity warn only warns");
    let log = p.log("fresh", RUN, "too_few", 1);
    assert!(
        log.contains("events has 5 rows, expected at least 10"),
        "{log}"
    );
    let log = p.log("fresh", RUN, "too_stale", 1);
    assert!(
        log.contains("events has no rows, so loaded_at is not fresh"),
        "{log}"
    );
    assert!(log.contains("severity is warn: the task succeeds"), "{log}");
}

#[test]
fn connections_from_fields_and_from_the_environment() {
    let p = Project::new();
    p.ok(&[
        "connections",
        "add",
        "warehouse",
        "--conn-type",
        "sqlite",
        "--conn-host",
        "stored.db",
    ]);
    let got = p.json(&["connections", "get", "warehouse"]);
    assert_eq!(got[0]["conn_type"], "sqlite");
    assert_eq!(got[0]["host"], "stored.db");
    p.dag(
        "where_to",
        r#"
tasks:
  - id: write
    type: sql
    connection: warehouse
    sql: "create table hello as select '{{ conn.warehouse.host }}' as host"
"#,
    );
    // WEIR_CONN_<ID> wins over the metadata database, as AIRFLOW_CONN_ does.
    let out = p
        .weir()
        .args(["dags", "test", "where_to", "2026-01-15"])
        .env("WEIR_CONN_WAREHOUSE", "sqlite://from_env.db")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(p.path().join("from_env.db").is_file());
    assert!(!p.path().join("stored.db").exists());
    assert_eq!(
        p.warehouse_rows("sqlite://from_env.db", "select host from hello"),
        vec![json!({"host": "from_env.db"})]
    );
}
