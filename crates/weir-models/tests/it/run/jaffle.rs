//! jaffle_shop_duckdb, unmodified, built as `dbt build` builds it.
//!
//! Expected values come from the seed CSVs: raw_customers.csv has 100 rows and raw_orders.csv
//! 99, so `customers` has 100 rows and `orders` 99. Customer 1 (Michael P.) has orders 1
//! (2018-01-01) and 37 (2018-02-10), paid 1000 + 2300 cents = 33.0 dollars (stg_payments divides
//! by 100); customer 3 (Kathleen P.) has 3 orders from 2018-01-02 to 2018-03-11 paying 65.0.
//! Order 1 is `returned`, paid 10.0 by credit card. All payments sum to 1672.0.

use super::common::{Env, done_line, extract};
use serde_json::json;

fn jaffle() -> Env {
    let env = Env::new("jaffle_shop", "jaffle_shop");
    extract("jaffle_shop_duckdb-9b13827.tar.gz", &env.project);
    env
}

#[test]
fn jaffle_shop_builds_as_dbt_does() {
    let env = jaffle();
    let (report, out) = env.build();
    assert!(report.success(), "{out}");
    assert_eq!(
        done_line(&out),
        "Done. PASS=28 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=28",
        "{out}"
    );
    assert!(
        out.contains("START sql view model main.stg_customers")
            && out.contains("OK created sql table model main.customers"),
        "{out}"
    );
    assert!(out.contains("OK loaded seed file main.raw_orders"), "{out}");
    assert!(out.contains("[INSERT 99 in "), "{out}");
    assert!(
        out.contains("PASS relationships_orders_customer_id__customer_id__ref_customers_"),
        "{out}"
    );

    assert_eq!(
        env.rows("select count(*) from customers"),
        vec![vec![json!(100)]]
    );
    assert_eq!(
        env.rows("select count(*) from orders"),
        vec![vec![json!(99)]]
    );
    assert_eq!(
        env.rows(
            "select first_name, last_name, cast(first_order as varchar), cast(most_recent_order as varchar), \
             number_of_orders, cast(customer_lifetime_value as double) from customers where customer_id in (1, 3) order by customer_id"
        ),
        vec![
            vec![json!("Michael"), json!("P."), json!("2018-01-01"), json!("2018-02-10"), json!(2), json!(33.0)],
            vec![json!("Kathleen"), json!("P."), json!("2018-01-02"), json!("2018-03-11"), json!(3), json!(65.0)],
        ]
    );
    assert_eq!(
        env.rows("select status, cast(credit_card_amount as double), cast(amount as double) from orders where order_id = 1"),
        vec![vec![json!("returned"), json!(10.0), json!(10.0)]]
    );
    assert_eq!(
        env.rows("select cast(sum(amount) as double) from orders"),
        vec![vec![json!(1672.0)]]
    );
    // Views for staging, tables for the marts, as dbt_project.yml configures them.
    assert_eq!(
        env.rows("select table_name, table_type from information_schema.tables where table_schema = 'main' order by 1"),
        vec![
            vec![json!("customers"), json!("BASE TABLE")],
            vec![json!("orders"), json!("BASE TABLE")],
            vec![json!("raw_customers"), json!("BASE TABLE")],
            vec![json!("raw_orders"), json!("BASE TABLE")],
            vec![json!("raw_payments"), json!("BASE TABLE")],
            vec![json!("stg_customers"), json!("VIEW")],
            vec![json!("stg_orders"), json!("VIEW")],
            vec![json!("stg_payments"), json!("VIEW")],
        ]
    );

    // The artifacts dbt users read.
    let target = env.project.join("target");
    let compiled =
        std::fs::read_to_string(target.join("compiled/jaffle_shop/models/orders.sql")).unwrap();
    assert!(
        compiled.contains("from \"warehouse\".\"main\".\"stg_orders\""),
        "{compiled}"
    );
    assert!(
        compiled.contains(
            "sum(case when payment_method = 'gift_card' then amount else 0 end) as gift_card_amount"
        ),
        "{compiled}"
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(target.join("run_results.json")).unwrap())
            .unwrap();
    let results = results["results"].as_array().unwrap();
    assert_eq!(results.len(), 28);
    let customers = results
        .iter()
        .find(|r| r["unique_id"] == "model.jaffle_shop.customers")
        .unwrap();
    assert_eq!(customers["status"], "success");
    assert_eq!(
        customers["relation_name"],
        "\"warehouse\".\"main\".\"customers\""
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(target.join("manifest.json")).unwrap())
            .unwrap();
    let node = &manifest["nodes"]["model.jaffle_shop.customers"];
    assert_eq!(node["compiled"], true);
    assert_eq!(
        node["compiled_path"],
        "target/compiled/jaffle_shop/models/customers.sql"
    );

    // A second build replaces everything in place and passes again.
    let (report, out) = env.build();
    assert!(report.success(), "{out}");
    assert_eq!(
        env.rows("select count(*) from customers"),
        vec![vec![json!(100)]]
    );
}

#[test]
fn a_failing_test_skips_what_is_built_downstream_of_its_model() {
    let env = jaffle();
    // stg_orders' accepted_values test fails once a new status appears in the seed.
    let seeds = env.project.join("seeds/raw_orders.csv");
    let mut text = std::fs::read_to_string(&seeds).unwrap();
    text = text.replacen("1,1,2018-01-01,returned", "1,1,2018-01-01,lost", 1);
    std::fs::write(&seeds, text).unwrap();
    let (report, out) = env.build();
    assert!(!report.success());
    assert!(
        out.contains("FAIL 1 accepted_values_stg_orders_status__placed__shipped__completed__return_pending__returned"),
        "{out}"
    );
    assert!(out.contains("SKIP relation main.customers"), "{out}");
    assert!(out.contains("SKIP relation main.orders"), "{out}");
    assert!(done_line(&out).starts_with("Done. PASS="), "{out}");
    assert!(done_line(&out).contains("ERROR=1 "), "{out}");
}

/// `postgres://user:password@host:port/dbname` as profile fields.
fn pg_profile(url: &str, schema: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (auth, place) = rest.split_once('@').unwrap_or(("postgres:postgres", rest));
    let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
    let (hostport, dbname) = place.split_once('/').unwrap_or((place, "postgres"));
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "5432"));
    let dbname = dbname.split('?').next().unwrap_or(dbname);
    format!(
        "jaffle_shop:\n  target: pg\n  outputs:\n    pg:\n      type: postgres\n      host: {host}\n      port: {port}\n      user: {user}\n      password: '{password}'\n      dbname: {dbname}\n      schema: {schema}\n      threads: 4\n"
    )
}

#[test]
fn jaffle_shop_builds_on_postgres() {
    let Ok(url) = std::env::var("WEIR_TEST_PG_URL") else {
        eprintln!("WEIR_TEST_PG_URL is not set: jaffle_shop on PostgreSQL not run");
        return;
    };
    let env = jaffle();
    let schema = format!(
        "weir_models_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    std::fs::write(
        env.profiles_dir().join("profiles.yml"),
        pg_profile(&url, &schema),
    )
    .unwrap();
    let (report, out) = env.build();
    let (again, out2) = env.build();
    let rows = |sql: &str| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let conn = weir_core::connection::Connection::from_uri("pg", &url).unwrap();
            let wh = weir_warehouse::Warehouse::open(&conn, std::path::Path::new("/"))
                .await
                .unwrap();
            let out = wh.query(sql).await.map(|r| r.rows);
            wh.execute(&format!("drop schema if exists \"{schema}\" cascade"))
                .await
                .ok();
            out.unwrap()
        })
    };
    let counts = rows(&format!(
        "select (select count(*) from \"{schema}\".customers), (select count(*) from \"{schema}\".orders)"
    ));
    assert!(report.success(), "{out}");
    assert_eq!(
        done_line(&out),
        "Done. PASS=28 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=28",
        "{out}"
    );
    // The second build refills the seeds in place under the views built on them.
    assert!(again.success(), "{out2}");
    assert_eq!(counts, vec![vec![json!(100), json!(99)]]);
}
