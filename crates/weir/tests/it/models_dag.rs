//! A `models` task with `expand: true` in a DAG: one task instance per dbt node (and per node's
//! tests), a failing model that fails only its downstream, `tasks clear` that re-runs only the
//! cleared node (or it and its downstream), a new model file that re-expands the DAG, `{{ ds }}`
//! in `vars` reaching `var()`, and a broken dbt project shown as the DAG's import error.

use crate::support::{Project, wait_for};
use std::collections::BTreeMap;
use std::time::Duration;

const DAY1: &str = "manual__2026-01-15T00:00:00+00:00";
const DAY2: &str = "manual__2026-01-16T00:00:00+00:00";
const DUCKDB: &str = "duckdb://models/shop.duckdb";

const REVENUE: &str = "select sum(amount) as total from {{ ref('stg_orders') }}\n";

/// A dbt project in the weir project's models/: a seed, a staging model, a fork of two models
/// and a model that joins them, with tests on two nodes (one across two parents).
fn shop(p: &Project) {
    p.write(
        "models/dbt_project.yml",
        "name: shop\nversion: '1.0'\nprofile: shop\nmodel-paths: [models]\nseed-paths: [seeds]\n",
    );
    p.write(
        "models/profiles.yml",
        "shop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: shop.duckdb\n      threads: 1\n",
    );
    p.write(
        "models/seeds/raw_orders.csv",
        "id,customer,amount\n1,ann,10\n2,bob,20\n3,ann,5\n",
    );
    p.write(
        "models/models/stg_orders.sql",
        "select id, customer, amount from {{ ref('raw_orders') }}\n",
    );
    p.write(
        "models/models/customers.sql",
        "select customer, count(*) as orders from {{ ref('stg_orders') }} group by customer\n",
    );
    p.write("models/models/revenue.sql", REVENUE);
    p.write(
        "models/models/report.sql",
        "select c.customer, r.total, '{{ var(\"day\", \"none\") }}' as day\nfrom {{ ref('customers') }} c cross join {{ ref('revenue') }} r\n",
    );
    p.write(
        "models/models/schema.yml",
        "version: 2\nmodels:\n  - name: stg_orders\n    columns:\n      - name: id\n        tests: [unique, not_null]\n  - name: customers\n    columns:\n      - name: customer\n        tests:\n          - not_null\n          - relationships: {to: ref('stg_orders'), field: customer}\n",
    );
    p.dag(
        "shop",
        "schedule: null\ntasks:\n  - {id: start, type: shell, command: 'true'}\n  - id: transform\n    type: models\n    expand: true\n    vars: {day: \"{{ ds }}\"}\n    depends_on: [start]\n  - {id: done, type: shell, command: 'echo done', depends_on: [transform]}\n",
    );
}

/// task id → its `depends_on`, as `weir tasks list` shows it.
fn tasks(p: &Project) -> BTreeMap<String, String> {
    p.json(&["tasks", "list", "shop"])
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["task_id"].as_str().unwrap().to_string(),
                t["depends_on"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The task ids of the DAG as the DAG processor last wrote it to the store.
fn stored_tasks(p: &Project) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = p.database_url.clone().unwrap_or_else(|| {
            format!("sqlite://{}", p.path().join(".weir/metadata.db").display())
        });
        let store = weir_store::Store::connect(&url).await.unwrap();
        let dag = store.get_dag("shop").await.unwrap();
        store.close().await;
        dag.map(|(d, _)| d.tasks.into_iter().map(|t| t.task_id).collect())
            .unwrap_or_default()
    })
}

#[test]
fn an_expanded_models_task_runs_node_by_node_and_clears_one_node() {
    let p = Project::new();
    shop(&p);

    // One task per node, and per node's tests; the relationships test (parents stg_orders and
    // customers) runs with customers, the parent built last.
    let listed = tasks(&p);
    let expected: BTreeMap<String, String> = [
        ("start", ""),
        ("transform.raw_orders", "start"),
        ("transform.stg_orders", "transform.raw_orders"),
        ("transform.stg_orders.test", "transform.stg_orders"),
        (
            "transform.customers",
            "transform.stg_orders,transform.stg_orders.test",
        ),
        (
            "transform.customers.test",
            "transform.customers,transform.stg_orders",
        ),
        (
            "transform.revenue",
            "transform.stg_orders,transform.stg_orders.test",
        ),
        (
            "transform.report",
            "transform.customers,transform.customers.test,transform.revenue",
        ),
        (
            "done",
            "transform.raw_orders,transform.stg_orders,transform.stg_orders.test,transform.customers,transform.customers.test,transform.revenue,transform.report",
        ),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let mut sorted_listed = listed.clone();
    for deps in sorted_listed.values_mut() {
        let mut parts: Vec<&str> = deps.split(',').filter(|s| !s.is_empty()).collect();
        parts.sort();
        *deps = parts.join(",");
    }
    let mut sorted_expected = expected.clone();
    for deps in sorted_expected.values_mut() {
        let mut parts: Vec<&str> = deps.split(',').filter(|s| !s.is_empty()).collect();
        parts.sort();
        *deps = parts.join(",");
    }
    assert_eq!(sorted_listed, sorted_expected);
    p.ok(&["dags", "validate"]);

    // 1 and 5: the run goes node by node; `{{ ds }}` in vars reaches var('day').
    let stdout = p.ok(&["dags", "test", "shop", "2026-01-15"]);
    let states = p.states("shop", DAY1);
    for task in expected.keys() {
        assert_eq!(states[task], "success", "{task}: {states:?}\n{stdout}");
    }
    let log = p.log("shop", DAY1, "transform.stg_orders", 1);
    assert!(log.contains("1 of 1 START sql view model"), "{log}");
    assert!(log.contains("stg_orders"), "{log}");
    assert!(!log.contains("customers"), "only its own node runs:\n{log}");
    let tests_log = p.log("shop", DAY1, "transform.customers.test", 1);
    assert!(
        tests_log.contains("relationships_customers_customer"),
        "{tests_log}"
    );

    // 2: a failing model fails its task instance; its downstream is upstream_failed.
    p.write(
        "models/models/revenue.sql",
        "select sum(no_such_column) as total from {{ ref('stg_orders') }}\n",
    );
    let (code, stdout, _) = p.run(&["dags", "test", "shop", "2026-01-16"]);
    assert_eq!(code, 1, "{stdout}");
    let states = p.states("shop", DAY2);
    assert_eq!(states["transform.revenue"], "failed", "{states:?}");
    assert_eq!(states["transform.report"], "upstream_failed", "{states:?}");
    assert_eq!(states["done"], "upstream_failed", "{states:?}");
    assert_eq!(states["transform.customers"], "success", "{states:?}");
    assert_eq!(states["transform.customers.test"], "success", "{states:?}");
    let log = p.log("shop", DAY2, "transform.revenue", 1);
    assert!(
        log.contains("no_such_column"),
        "dbt's error is in the log:\n{log}"
    );

    // 3: after the fix, clearing the model re-runs only it; with --downstream, it and its
    // downstream.
    p.write("models/models/revenue.sql", REVENUE);
    p.ok(&["dags", "unpause", "shop"]);
    let mut weir = p.start();
    let before = p.tries("shop", DAY2);
    p.ok(&[
        "tasks",
        "clear",
        "shop",
        "--task",
        r"^transform\.revenue$",
        "--start",
        "2026-01-16",
    ]);
    wait_for("revenue to succeed again", Duration::from_secs(60), || {
        (p.states("shop", DAY2)["transform.revenue"] == "success").then_some(())
    });
    wait_for("the run to end again", Duration::from_secs(60), || {
        (p.runs("shop")
            .iter()
            .find(|r| r["run_id"] == DAY2)
            .is_some_and(|r| r["state"] == "failed"))
        .then_some(())
    });
    let after = p.tries("shop", DAY2);
    let states = p.states("shop", DAY2);
    assert_eq!(states["transform.report"], "upstream_failed", "{states:?}");
    for (task, tries) in &after {
        let expected = before[task] + i64::from(task == "transform.revenue");
        assert_eq!(*tries, expected, "{task}: {before:?} → {after:?}");
    }
    p.ok(&[
        "tasks",
        "clear",
        "shop",
        "--task",
        r"^transform\.revenue$",
        "--start",
        "2026-01-16",
        "--downstream",
    ]);
    wait_for("the run to succeed", Duration::from_secs(60), || {
        (p.runs("shop")
            .iter()
            .find(|r| r["run_id"] == DAY2)
            .is_some_and(|r| r["state"] == "success"))
        .then_some(())
    });
    let states = p.states("shop", DAY2);
    assert!(states.values().all(|s| s == "success"), "{states:?}");
    let tries = p.tries("shop", DAY2);
    assert_eq!(tries["transform.revenue"], 3, "{tries:?}");
    assert_eq!(tries["transform.report"], 1, "{tries:?}");
    assert_eq!(tries["done"], 1, "{tries:?}");
    for task in ["transform.stg_orders", "transform.customers", "start"] {
        assert_eq!(
            tries[task], before[task],
            "{task} did not run again: {tries:?}"
        );
    }

    // 4: a new model file re-expands the DAG at the DAG processor's next parse.
    p.write(
        "models/models/big_customers.sql",
        "select * from {{ ref('customers') }} where orders > 1\n",
    );
    wait_for(
        "the DAG processor to expand big_customers",
        Duration::from_secs(30),
        || {
            stored_tasks(&p)
                .contains(&"transform.big_customers".to_string())
                .then_some(())
        },
    );
    p.ok(&["dags", "trigger", "shop"]);
    let run_id = wait_for("the triggered run", Duration::from_secs(30), || {
        p.runs("shop")
            .iter()
            .find(|r| r["run_id"] != DAY1 && r["run_id"] != DAY2)
            .map(|r| r["run_id"].as_str().unwrap().to_string())
    });
    wait_for(
        "the new run to build big_customers",
        Duration::from_secs(60),
        || {
            let states = p.states("shop", &run_id);
            (states.get("transform.big_customers").map(String::as_str) == Some("success")
                && states.get("done").map(String::as_str) == Some("success"))
            .then_some(())
        },
    );
    assert!(weir.interrupt(Duration::from_secs(30)).is_some());

    // 5: the rows the models built, with the run's ds from vars.
    let rows = p.warehouse_rows(DUCKDB, "select customer, total, day from report");
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!(row["total"].to_string().trim_matches('"'), "35", "{rows:?}");
        let day = row["day"].as_str().unwrap();
        assert!(
            day.len() == 10 && day.as_bytes()[4] == b'-',
            "day is a ds: {rows:?}"
        );
    }
    let big = p.warehouse_rows(DUCKDB, "select customer from big_customers");
    assert_eq!(big, vec![serde_json::json!({"customer": "ann"})]);
}

#[test]
fn vars_reach_the_model_with_the_runs_ds() {
    let p = Project::new();
    shop(&p);
    p.ok(&["dags", "test", "shop", "2026-01-15"]);
    let rows = p.warehouse_rows(DUCKDB, "select distinct day from report");
    assert_eq!(rows, vec![serde_json::json!({"day": "2026-01-15"})]);
}

#[test]
fn a_broken_dbt_project_is_an_import_error_of_its_dag() {
    let p = Project::new();
    shop(&p);
    p.write(
        "models/models/revenue.sql",
        "select sum(amount) as total from {{ ref('stg_orderz') }}\n",
    );
    let errors = p.ok(&["dags", "list-import-errors"]);
    assert!(errors.contains("dags/shop.yaml:"), "{errors}");
    assert!(errors.contains("task 'transform'"), "{errors}");
    assert!(
        errors.contains("depends on a node named 'stg_orderz' which was not found"),
        "{errors}"
    );
    let (code, _, stderr) = p.run(&["dags", "test", "shop", "2026-01-15"]);
    assert_ne!(code, 0, "{stderr}");
    let (code, _, stderr) = p.run(&["dags", "validate"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("depends on a node named 'stg_orderz' which was not found"),
        "{stderr}"
    );

    // A Jinja syntax error, with the model's file and line.
    p.write(
        "models/models/revenue.sql",
        "select sum(amount) as total\nfrom {{ ref('stg_orders' }}\n",
    );
    let errors = p.ok(&["dags", "list-import-errors"]);
    assert!(
        errors.contains("Compilation Error in model revenue (models/revenue.sql)"),
        "{errors}"
    );
    assert!(errors.contains("(line 2)"), "{errors}");

    p.write("models/models/revenue.sql", REVENUE);
    assert_eq!(p.ok(&["dags", "list-import-errors"]).trim(), "");
    p.ok(&["dags", "validate"]);

    // The DAG processor sees a dbt file break: an import error, and the last good DAG stays.
    let _weir = p.start();
    wait_for(
        "the DAG processor to expand",
        Duration::from_secs(30),
        || {
            stored_tasks(&p)
                .contains(&"transform.revenue".to_string())
                .then_some(())
        },
    );
    p.write(
        "models/models/revenue.sql",
        "select sum(amount) as total from {{ ref('stg_orderz') }}\n",
    );
    wait_for(
        "standalone to see the import error",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(p.path().join("standalone.log"))
                .ok()
                .filter(|log| log.contains("import error in dags/shop.yaml"))
        },
    );
    assert!(
        stored_tasks(&p).contains(&"transform.revenue".to_string()),
        "the last good DAG is kept"
    );
}

#[test]
fn a_models_task_without_expand_runs_its_selection_in_one_task() {
    let p = Project::new();
    shop(&p);
    p.dag(
        "whole",
        "schedule: null\nparams: {sel: \"+customers\"}\ntasks:\n  - id: build\n    type: models\n    select: \"{{ params.sel }}\"\n    exclude: not_null_stg_orders_id\n    vars: {day: \"{{ ds }}\"}\n",
    );
    p.ok(&["dags", "test", "whole", "2026-01-20"]);
    let run = "manual__2026-01-20T00:00:00+00:00";
    assert_eq!(p.states("whole", run)["build"], "success");
    let log = p.log("whole", run, "build", 1);
    for line in [
        "OK loaded seed file main.raw_orders",
        "OK created sql view model main.stg_orders",
        "PASS unique_stg_orders_id",
        "OK created sql view model main.customers",
        "PASS relationships_customers_customer",
    ] {
        assert!(log.contains(line), "{line}:\n{log}");
    }
    for left_out in ["not_null_stg_orders_id", "revenue", "report"] {
        assert!(!log.contains(left_out), "{left_out} is not run:\n{log}");
    }

    // A node that errors fails the task, with dbt's error in the log.
    p.write(
        "models/models/customers.sql",
        "select no_such_column as customer from {{ ref('stg_orders') }}\n",
    );
    let (code, stdout, _) = p.run(&["dags", "test", "whole", "2026-01-21"]);
    assert_eq!(code, 1, "{stdout}");
    let run = "manual__2026-01-21T00:00:00+00:00";
    assert_eq!(p.states("whole", run)["build"], "failed");
    let log = p.log("whole", run, "build", 1);
    assert!(log.contains("no_such_column"), "{log}");
    assert!(log.contains("dbt nodes failed"), "{log}");
}
