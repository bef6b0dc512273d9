//! The warehouse suite, run against DuckDB, SQLite and PostgreSQL (`WEIR_TEST_PG_URL`; required
//! when CI=true): transactions, full refresh, incremental, replace partition, loads.

use serde_json::{Value, json};
use weir_core::connection::Connection;
use weir_warehouse::{LoadMode, Materialization, Rows, Warehouse};

struct Target {
    name: &'static str,
    conn: Connection,
    dir: tempfile::TempDir,
}

async fn targets() -> Vec<Target> {
    let mut out = vec![
        Target {
            name: "duckdb",
            conn: Connection::from_uri("wh", "duckdb://wh.duckdb").unwrap(),
            dir: tempfile::tempdir().unwrap(),
        },
        Target {
            name: "sqlite",
            conn: Connection::from_uri("wh", "sqlite://wh.db").unwrap(),
            dir: tempfile::tempdir().unwrap(),
        },
    ];
    match std::env::var("WEIR_TEST_PG_URL") {
        Ok(admin) => {
            let db = weir_store::testing::fresh_database(&admin).await.unwrap();
            let (base, _) = admin.rsplit_once('/').unwrap();
            out.push(Target {
                name: "postgres",
                conn: Connection::from_uri("wh", &format!("{base}/{db}")).unwrap(),
                dir: tempfile::tempdir().unwrap(),
            });
        }
        Err(_) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true but WEIR_TEST_PG_URL is not set: .ci/run must start PostgreSQL")
        }
        Err(_) => eprintln!("WEIR_TEST_PG_URL not set: PostgreSQL skipped"),
    }
    out
}

/// The table as sorted rows of JSON, for comparison across backends.
async fn table(wh: &Warehouse, sql: &str) -> Vec<Value> {
    let rows = wh.query(sql).await.unwrap();
    let mut objs = rows.objects();
    objs.sort_by_key(|v| v.to_string());
    objs
}

fn schema_for(t: &Target) -> &'static str {
    if t.name == "sqlite" { "" } else { "mart." }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_statement_rolls_back_the_whole_transaction() {
    for t in targets().await {
        let wh = Warehouse::open(&t.conn, t.dir.path()).await.unwrap();
        wh.execute(
            "CREATE TABLE names (id INTEGER, name TEXT); INSERT INTO names VALUES (1, 'a');",
        )
        .await
        .unwrap();
        let err = wh
            .execute("DELETE FROM names; INSERT INTO no_such_table VALUES (1);")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("no_such_table"), "{}: {err}", t.name);
        assert_eq!(
            table(&wh, "SELECT id, name FROM names").await,
            vec![json!({"id": 1, "name": "a"})],
            "{}: the delete must be rolled back",
            t.name
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn full_refresh_swaps_the_table_and_a_rerun_gives_the_same_rows() {
    for t in targets().await {
        let wh = Warehouse::open(&t.conn, t.dir.path()).await.unwrap();
        let target = format!("{}totals", schema_for(&t));
        wh.execute("CREATE TABLE src (k INTEGER, v INTEGER); INSERT INTO src VALUES (1, 10), (1, 5), (2, 7);")
            .await
            .unwrap();
        let select = "SELECT k, sum(v) AS total FROM src GROUP BY k";
        for _ in 0..2 {
            wh.materialize(&target, select, &Materialization::FullRefresh)
                .await
                .unwrap();
            assert_eq!(
                table(
                    &wh,
                    &format!("SELECT k, CAST(total AS INTEGER) AS total FROM {target}")
                )
                .await,
                vec![json!({"k": 1, "total": 15}), json!({"k": 2, "total": 7})],
                "{}",
                t.name
            );
        }
        // A failing build leaves the old table in place.
        let err = wh
            .materialize(
                &target,
                "SELECT k, nope FROM src",
                &Materialization::FullRefresh,
            )
            .await;
        assert!(err.is_err(), "{}", t.name);
        assert_eq!(
            table(&wh, &format!("SELECT k FROM {target}")).await.len(),
            2,
            "{}",
            t.name
        );
        assert!(
            !wh.table_exists(&format!("{target}__weir_new"))
                .await
                .unwrap(),
            "{}",
            t.name
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn incremental_merges_on_the_unique_key() {
    for t in targets().await {
        let wh = Warehouse::open(&t.conn, t.dir.path()).await.unwrap();
        let target = format!("{}users", schema_for(&t));
        let how = Materialization::Incremental {
            unique_key: vec!["id".into()],
        };
        wh.materialize(
            &target,
            "SELECT 1 AS id, 'ann' AS name UNION ALL SELECT 2, 'bob'",
            &how,
        )
        .await
        .unwrap();
        // id 2 changes, id 3 arrives; running the same batch twice changes nothing more.
        for _ in 0..2 {
            wh.materialize(
                &target,
                "SELECT 2 AS id, 'bobby' AS name UNION ALL SELECT 3, 'cy'",
                &how,
            )
            .await
            .unwrap();
            assert_eq!(
                table(&wh, &format!("SELECT id, name FROM {target}")).await,
                vec![
                    json!({"id": 1, "name": "ann"}),
                    json!({"id": 2, "name": "bobby"}),
                    json!({"id": 3, "name": "cy"})
                ],
                "{}",
                t.name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replace_partition_over_five_intervals_is_idempotent() {
    for t in targets().await {
        let wh = Warehouse::open(&t.conn, t.dir.path()).await.unwrap();
        let target = format!("{}daily", schema_for(&t));
        let run = |day: u32| {
            let ds = format!("2026-01-{day:02}");
            let select = format!(
                "SELECT '{ds}' AS event_date, 'kr' AS country, {day} AS n UNION ALL SELECT '{ds}', 'jp', {}",
                day * 10
            );
            (
                select,
                Materialization::ReplacePartition(vec![("event_date".into(), json!(ds))]),
            )
        };
        // A backfill of five intervals, then all five again (a --reset re-run).
        for _ in 0..2 {
            for day in 1..=5 {
                let (select, how) = run(day);
                wh.materialize(&target, &select, &how).await.unwrap();
            }
        }
        let rows = table(&wh, &format!("SELECT event_date, country, n FROM {target}")).await;
        assert_eq!(rows.len(), 10, "{}: {rows:?}", t.name);
        assert!(rows.contains(&json!({"event_date": "2026-01-03", "country": "jp", "n": 30})));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn loads_rows_and_csv_with_partitions() {
    for t in targets().await {
        let wh = Warehouse::open(&t.conn, t.dir.path()).await.unwrap();
        let target = format!("{}raw_names", schema_for(&t));
        let data = Rows {
            columns: vec!["name".into(), "gender".into(), "n".into()],
            rows: vec![
                vec![json!("Ann"), json!("F"), json!(3)],
                vec![json!("Bo"), json!("M"), Value::Null],
            ],
        };
        let mode = LoadMode::ReplacePartition(vec![("ds".into(), json!("2026-01-15"))]);
        for _ in 0..2 {
            assert_eq!(wh.load_rows(&target, &data, &mode).await.unwrap(), 2);
        }
        assert_eq!(
            table(&wh, &format!("SELECT name, n, ds FROM {target}")).await,
            vec![
                json!({"name": "Ann", "n": 3, "ds": "2026-01-15"}),
                json!({"name": "Bo", "n": null, "ds": "2026-01-15"})
            ],
            "{}",
            t.name
        );
        let csv = t.dir.path().join("names.csv");
        std::fs::write(&csv, "name,gender\nCy,F\nDi,M\nEd,M\n").unwrap();
        let loaded = wh
            .load_csv(
                &format!("{}csv_names", schema_for(&t)),
                &csv,
                &LoadMode::Replace,
            )
            .await
            .unwrap();
        assert_eq!(loaded, 3, "{}", t.name);
        let rows = table(
            &wh,
            &format!("SELECT name FROM {}csv_names", schema_for(&t)),
        )
        .await;
        assert_eq!(rows.len(), 3, "{}", t.name);
        assert!(
            wh.relations()
                .await
                .unwrap()
                .iter()
                .any(|r| r.ends_with("csv_names"))
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = Warehouse::open(
        &Connection::from_uri("api", "http://example.com").unwrap(),
        dir.path(),
    )
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("connection 'api'") && err.contains("not a warehouse"),
        "{err}"
    );
    let err = Warehouse::open(
        &Connection::from_uri("pg", "postgres://u:secretpw@127.0.0.1:1/db").unwrap(),
        dir.path(),
    )
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("connection 'pg'") && !err.contains("secretpw"),
        "{err}"
    );
    let wh = Warehouse::open(
        &Connection::from_uri("w", "sqlite://x.db").unwrap(),
        dir.path(),
    )
    .await
    .unwrap();
    let err = wh
        .materialize("raw.t", "SELECT 1 AS a", &Materialization::FullRefresh)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("SQLite has no schemas"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duckdb_query_whose_caller_gave_up_is_interrupted_not_left_running() {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::from_uri("wh", "duckdb://wh.duckdb").unwrap();
    let wh = Warehouse::open(&conn, dir.path()).await.unwrap();
    // Minutes of work: the caller (a try past its timeout) stops waiting after 300 ms.
    let gave_up = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        wh.query("select count(*) from range(100000000000)"),
    )
    .await;
    assert!(gave_up.is_err(), "the long query cannot end in 300 ms");
    // The connection is free again at once, not after the abandoned query.
    let next = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        wh.query("select 1 as one"),
    )
    .await
    .expect("the abandoned query was interrupted")
    .unwrap();
    assert_eq!(next.objects(), vec![json!({"one": 1})]);
}
