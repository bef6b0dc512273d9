//! One project with the features jaffle_shop leaves out: ephemeral chains, `+schema`, seeds'
//! `column_types`, pre/post hooks, on-run-start/end, dbt_utils' macros and generic tests,
//! severity, warn_if/error_if, where, store_failures, singular tests.

use super::common::{Env, done_line, extract};
use serde_json::json;

const DBT_PROJECT_YML: &str = r#"name: feat
profile: feat
config-version: 2
on-run-start:
  - "create table if not exists {{ target.schema }}.run_log (event varchar)"
  - "insert into {{ target.schema }}.run_log values ('start')"
on-run-end:
  - "insert into {{ target.schema }}.run_log values ('end')"
models:
  feat:
    marts:
      +schema: marts
      +materialized: table
seeds:
  feat:
    +column_types:
      amount: decimal(10,2)
"#;

const SEEDS_ITEMS_CSV: &str = r#"id,name,amount,day
1,apple,1.50,2024-01-01
2,pear,2.25,2024-01-02
3,plum,-1.00,2024-01-03
"#;

const MODELS_BASE_ITEMS_SQL: &str = r#"{{ config(materialized='ephemeral') }}
select id, name, amount from {{ ref('items') }}
"#;

const MODELS_MID_ITEMS_SQL: &str = r#"{{ config(materialized='ephemeral') }}
select *, amount * 2 as doubled from {{ ref('base_items') }}
"#;

const MODELS_MARTS_ITEM_FACTS_SQL: &str = r#"{{ config(post_hook="insert into {{ target.schema }}.run_log values ('post ' || '{{ this.name }}')", pre_hook="insert into {{ target.schema }}.run_log values ('pre')") }}
with picked as (
    select * from {{ ref('mid_items') }}
)
select id, name, amount, doubled, {{ dbt_utils.generate_surrogate_key(['id', 'name']) }} as sk from picked
"#;

const MODELS_SCHEMA_YML: &str = r#"version: 2
models:
  - name: item_facts
    columns:
      - name: id
        tests:
          - unique
          - not_null
      - name: amount
        tests:
          - dbt_utils.accepted_range:
              min_value: 0
              config:
                severity: warn
          - dbt_utils.accepted_range:
              name: amount_positive_where
              min_value: 0
              config:
                where: "id < 3"
    tests:
      - dbt_utils.unique_combination_of_columns:
          combination_of_columns: ['id', 'name']
      - dbt_utils.expression_is_true:
          expression: "doubled = amount * 2"
      - dbt_utils.expression_is_true:
          name: amounts_stored
          expression: "amount > 0"
          config:
            store_failures: true
            error_if: ">5"
            warn_if: ">0"
"#;

const TESTS_NO_NEGATIVE_DOUBLES_SQL: &str = r#"{{ config(severity='warn') }}
select * from {{ ref('item_facts') }} where doubled < 0
"#;

#[test]
fn ephemerals_hooks_custom_schemas_and_dbt_utils_tests_run_as_dbt_does() {
    let env = Env::new("feat", "feat");
    extract(
        "dbt_utils-1.4.1-49b932c.tar.gz",
        &env.project.join("dbt_packages/dbt_utils"),
    );
    env.write(&[
        ("dbt_project.yml", DBT_PROJECT_YML),
        ("seeds/items.csv", SEEDS_ITEMS_CSV),
        ("models/base_items.sql", MODELS_BASE_ITEMS_SQL),
        ("models/mid_items.sql", MODELS_MID_ITEMS_SQL),
        ("models/marts/item_facts.sql", MODELS_MARTS_ITEM_FACTS_SQL),
        ("models/schema.yml", MODELS_SCHEMA_YML),
        (
            "tests/no_negative_doubles.sql",
            TESTS_NO_NEGATIVE_DOUBLES_SQL,
        ),
    ]);
    let (report, out) = env.build();
    assert!(report.success(), "{out}");
    assert_eq!(
        done_line(&out),
        "Done. PASS=10 WARN=3 ERROR=0 SKIP=0 NO-OP=0 TOTAL=13",
        "{out}"
    );
    // Project hooks are results, as in dbt: printed, counted, in run_results.json.
    assert!(
        out.contains("2 of 2 OK hook: feat.on-run-start.1 "),
        "{out}"
    );
    assert!(out.contains("1 of 1 OK hook: feat.on-run-end.0 "), "{out}");
    assert!(out.contains("Finished running 3 project hooks, "), "{out}");
    let run_results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.project.join("target/run_results.json")).unwrap(),
    )
    .unwrap();
    let hooks: Vec<(&str, &str)> = run_results["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["unique_id"].as_str().unwrap().starts_with("operation."))
        .map(|r| {
            (
                r["unique_id"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        hooks,
        vec![
            ("operation.feat.feat-on-run-start-0", "success"),
            ("operation.feat.feat-on-run-start-1", "success"),
            ("operation.feat.feat-on-run-end-0", "success"),
        ]
    );
    // `+schema: marts` builds in <target schema>_marts.
    assert!(
        out.contains("OK created sql table model main_marts.item_facts"),
        "{out}"
    );
    assert!(
        out.contains("WARN 1 dbt_utils_accepted_range_item_facts_amount__0"),
        "{out}"
    );
    // where: "id < 3" leaves out the negative amount, so that test passes.
    assert!(out.contains("PASS amount_positive_where"), "{out}");
    assert!(out.contains("WARN 1 amounts_stored"), "{out}");
    assert!(out.contains("WARN 1 no_negative_doubles"), "{out}");

    // The ephemeral chain is injected as CTEs, dependencies first.
    let compiled = std::fs::read_to_string(
        env.project
            .join("target/compiled/feat/models/marts/item_facts.sql"),
    )
    .unwrap();
    let base = compiled
        .find("__dbt__cte__base_items as (")
        .expect(&compiled);
    let mid = compiled
        .find("__dbt__cte__mid_items as (")
        .expect(&compiled);
    assert!(base < mid, "{compiled}");
    assert_eq!(
        env.rows("select id, name, cast(amount as varchar), cast(doubled as varchar), length(sk) from main_marts.item_facts order by id"),
        vec![
            vec![json!(1), json!("apple"), json!("1.50"), json!("3.00"), json!(32)],
            vec![json!(2), json!("pear"), json!("2.25"), json!("4.50"), json!(32)],
            vec![json!(3), json!("plum"), json!("-1.00"), json!("-2.00"), json!(32)],
        ]
    );
    // column_types win; the other columns get the types dbt infers (integers are INTEGER).
    assert_eq!(
        env.rows("select column_name, data_type from information_schema.columns where table_name = 'items' order by ordinal_position"),
        vec![
            vec![json!("id"), json!("INTEGER")],
            vec![json!("name"), json!("VARCHAR")],
            vec![json!("amount"), json!("DECIMAL(10,2)")],
            vec![json!("day"), json!("DATE")],
        ]
    );
    // Hooks ran in dbt's order: on-run-start, pre-hook, post-hook, on-run-end.
    assert_eq!(
        env.rows("select event from main.run_log"),
        vec![
            vec![json!("start")],
            vec![json!("pre")],
            vec![json!("post item_facts")],
            vec![json!("end")]
        ]
    );
    // store_failures keeps the failing rows in <schema>_dbt_test__audit.
    assert_eq!(
        env.rows("select name from main_dbt_test__audit.amounts_stored"),
        vec![vec![json!("plum")]]
    );
}
