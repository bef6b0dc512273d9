//! dbt's selection grammar on a small hand-written project, data-driven: `(selector, ids)`.

use std::collections::BTreeSet;
use std::path::Path;

use weir_models::project::{
    IndirectSelection, ResourceType, Selection, State, select, write_manifest,
};

use super::common::{PROFILE, load, project, write};

/// seed raw_orders → stg_orders → orders → summary → exposure dashboard;
/// source raw.customers → stg_customers → {orders, customers}; customers → summary;
/// stg_orders → snapshot orders_snapshot; orders → analysis explore; plus package helpers.
pub fn shop() -> tempfile::TempDir {
    project(&[
        (
            "dbt_project.yml",
            "name: shop\nprofile: p\nmodels:\n  shop:\n    staging:\n      +tags: [staging]\n      +materialized: view\n    marts:\n      +materialized: table\n",
        ),
        ("profiles.yml", PROFILE),
        ("seeds/raw_orders.csv", "id,customer_id,amount\n1,1,10\n"),
        (
            "models/staging/stg_orders.sql",
            "select * from {{ ref('raw_orders') }}\n",
        ),
        (
            "models/staging/stg_customers.sql",
            "select * from {{ source('raw', 'customers') }}\n",
        ),
        (
            "models/marts/orders.sql",
            "select o.*, c.name from {{ ref('stg_orders') }} o join {{ ref(\"stg_customers\") }} c using (customer_id)\n",
        ),
        (
            "models/marts/customers.sql",
            "select * from {{ ref('stg_customers') }}\n",
        ),
        (
            "models/marts/summary.sql",
            "select * from {{ ref('orders') }}, {{ ref('customers') }}\n",
        ),
        (
            "snapshots/orders_snapshot.sql",
            "{% snapshot orders_snapshot %}\n{{ config(unique_key='id', strategy='check', check_cols='all') }}\nselect * from {{ ref('stg_orders') }}\n{% endsnapshot %}\n",
        ),
        (
            "tests/assert_positive.sql",
            "select * from {{ ref('orders') }} where amount < 0\n",
        ),
        (
            "analyses/explore.sql",
            "select count(*) from {{ ref('orders') }}\n",
        ),
        (
            "models/schema.yml",
            r#"version: 2
sources:
  - name: raw
    freshness:
      warn_after: {count: 12, period: hour}
    loaded_at_field: _loaded_at
    tables:
      - name: customers
        columns:
          - name: id
            tests: [not_null]
models:
  - name: orders
    columns:
      - name: id
        data_tests: [unique, not_null]
      - name: customer_id
        data_tests:
          - relationships:
              arguments:
                to: ref('customers')
                field: id
  - name: customers
    config:
      materialized: incremental
  - name: summary
    config:
      tags: [nightly]
exposures:
  - name: dashboard
    type: dashboard
    owner: {name: ops}
    depends_on:
      - ref('summary')
unit_tests:
  - name: test_orders
    model: orders
    given:
      - input: ref('stg_orders')
        rows:
          - {id: 1, customer_id: 1}
    expect:
      rows:
        - {id: 1}
"#,
        ),
        (
            "selectors.yml",
            r#"selectors:
  - name: nightly_marts
    definition:
      union:
        - method: tag
          value: nightly
          parents: true
        - exclude:
            - method: resource_type
              value: source
  - name: staging_only
    definition:
      intersection:
        - method: path
          value: models/staging
        - tag: staging
  - name: cli_style
    definition: "stg_orders+1"
  - name: cautious_orders
    definition:
      method: fqn
      value: orders
      indirect_selection: cautious
"#,
        ),
        ("dbt_packages/helpers/dbt_project.yml", "name: helpers\n"),
        (
            "dbt_packages/helpers/models/helper_model.sql",
            "select 1 as one\n",
        ),
        (
            "dbt_packages/helpers/macros/cents.sql",
            "{% macro cents(x) %}{{ x }} * 100{% endmacro %}\n",
        ),
    ])
}

/// Ids with the hash suffix of generic tests dropped, so the table stays readable.
fn short(ids: BTreeSet<String>) -> BTreeSet<String> {
    ids.into_iter()
        .map(|id| {
            let parts: Vec<&str> = id.split('.').collect();
            if parts[0] == "test" && parts.len() == 4 {
                parts[..3].join(".")
            } else {
                id
            }
        })
        .collect()
}

const S: &str = "seed.shop.raw_orders";
const SRC: &str = "source.shop.raw.customers";
const STG_O: &str = "model.shop.stg_orders";
const STG_C: &str = "model.shop.stg_customers";
const ORDERS: &str = "model.shop.orders";
const CUSTOMERS: &str = "model.shop.customers";
const SUMMARY: &str = "model.shop.summary";
const SNAP: &str = "snapshot.shop.orders_snapshot";
const HELPER: &str = "model.helpers.helper_model";
const EXPLORE: &str = "analysis.shop.explore";
const DASHBOARD: &str = "exposure.shop.dashboard";
const T_UNIQUE: &str = "test.shop.unique_orders_id";
const T_NOT_NULL: &str = "test.shop.not_null_orders_id";
const T_REL: &str = "test.shop.relationships_orders_customer_id__id__ref_customers_";
const T_SINGULAR: &str = "test.shop.assert_positive";
const T_SOURCE: &str = "test.shop.source_not_null_raw_customers_id";
const UNIT: &str = "unit_test.shop.orders.test_orders";
/// The tests hanging on `orders` (eager indirect selection adds them all).
const ORDERS_TESTS: &[&str] = &[T_UNIQUE, T_NOT_NULL, T_REL, T_SINGULAR, UNIT];

fn ids(parts: &[&[&str]]) -> BTreeSet<String> {
    parts
        .iter()
        .flat_map(|p| p.iter().map(|s| s.to_string()))
        .collect()
}

fn run(dir: &Path, selection: Selection) -> BTreeSet<String> {
    let project = load(dir);
    short(select(&project, &selection).unwrap_or_else(|e| panic!("{e}")))
}

fn cli(select: &str, exclude: &str) -> Selection {
    Selection {
        select: if select.is_empty() {
            vec![]
        } else {
            vec![select.to_string()]
        },
        exclude: if exclude.is_empty() {
            vec![]
        } else {
            vec![exclude.to_string()]
        },
        ..Default::default()
    }
}

#[test]
fn selection_methods_and_operators_pick_what_dbt_picks() {
    let dir = shop();
    let everything = ids(&[
        &[
            S, SRC, STG_O, STG_C, ORDERS, CUSTOMERS, SUMMARY, SNAP, HELPER, EXPLORE, DASHBOARD,
            T_SOURCE,
        ],
        ORDERS_TESTS,
    ]);
    let cases: Vec<(&str, &str, BTreeSet<String>)> = vec![
        ("orders", "", ids(&[&[ORDERS], ORDERS_TESTS])),
        (
            "+orders",
            "",
            ids(&[&[ORDERS, STG_O, STG_C, S, SRC, T_SOURCE], ORDERS_TESTS]),
        ),
        (
            "orders+",
            "",
            ids(&[&[ORDERS, SUMMARY, EXPLORE, DASHBOARD], ORDERS_TESTS]),
        ),
        (
            "1+summary",
            "",
            ids(&[&[SUMMARY, ORDERS, CUSTOMERS], ORDERS_TESTS]),
        ),
        (
            "stg_orders+1",
            "",
            ids(&[&[STG_O, ORDERS, SNAP], ORDERS_TESTS]),
        ),
        (
            "@stg_customers",
            "",
            ids(&[
                &[
                    STG_C, ORDERS, CUSTOMERS, SUMMARY, EXPLORE, DASHBOARD, SRC, STG_O, S, T_SOURCE,
                ],
                ORDERS_TESTS,
            ]),
        ),
        ("tag:staging", "", ids(&[&[STG_O, STG_C]])),
        ("tag:nightly", "", ids(&[&[SUMMARY]])),
        ("tag:stag*", "", ids(&[&[STG_O, STG_C]])),
        ("path:models/staging", "", ids(&[&[STG_O, STG_C]])),
        ("models/staging", "", ids(&[&[STG_O, STG_C]])),
        (
            "models/marts/orders.sql",
            "",
            ids(&[&[ORDERS], ORDERS_TESTS]),
        ),
        ("file:customers.sql", "", ids(&[&[CUSTOMERS, T_REL]])),
        ("source:raw", "", ids(&[&[SRC, T_SOURCE]])),
        (
            "source:raw.customers+",
            "",
            ids(&[
                &[
                    SRC, T_SOURCE, STG_C, ORDERS, CUSTOMERS, SUMMARY, EXPLORE, DASHBOARD,
                ],
                ORDERS_TESTS,
            ]),
        ),
        ("resource_type:seed", "", ids(&[&[S]])),
        ("resource_type:snapshot", "", ids(&[&[SNAP]])),
        ("resource_type:analysis", "", ids(&[&[EXPLORE]])),
        (
            "config.materialized:table",
            "",
            ids(&[&[ORDERS, SUMMARY], ORDERS_TESTS]),
        ),
        (
            "config.materialized:incremental",
            "",
            ids(&[&[CUSTOMERS, T_REL]]),
        ),
        ("config.tags:nightly", "", ids(&[&[SUMMARY]])),
        (
            "test_type:generic",
            "",
            ids(&[&[T_UNIQUE, T_NOT_NULL, T_REL, T_SOURCE]]),
        ),
        ("test_type:singular", "", ids(&[&[T_SINGULAR]])),
        ("test_type:unit", "", ids(&[&[UNIT]])),
        ("test_name:unique", "", ids(&[&[T_UNIQUE]])),
        ("package:helpers", "", ids(&[&[HELPER]])),
        ("helpers", "", ids(&[&[HELPER]])),
        ("fqn:shop.staging.*", "", ids(&[&[STG_O, STG_C]])),
        ("*.stg_*", "", ids(&[&[STG_O, STG_C]])),
        (
            "shop.marts",
            "",
            ids(&[&[ORDERS, CUSTOMERS, SUMMARY], ORDERS_TESTS]),
        ),
        ("exposure:dashboard", "", ids(&[&[DASHBOARD]])),
        (
            "+exposure:dashboard",
            "",
            everything
                .iter()
                .filter(|id| ![SNAP, HELPER, EXPLORE].contains(&id.as_str()))
                .cloned()
                .collect(),
        ),
        ("unit_test:test_orders", "", ids(&[&[UNIT]])),
        ("stg_orders stg_customers", "", ids(&[&[STG_O, STG_C]])),
        ("+summary,tag:staging", "", ids(&[&[STG_O, STG_C]])),
        ("orders,tag:nightly", "", ids(&[])),
        (
            "+orders",
            "stg_orders",
            ids(&[&[ORDERS, STG_C, S, SRC, T_SOURCE], ORDERS_TESTS]),
        ),
        // Excluding a model excludes its tests too, even a test with another selected parent.
        ("shop.marts", "orders", ids(&[&[CUSTOMERS, SUMMARY]])),
        (
            "*",
            "",
            everything
                .iter()
                .filter(|id| ![SRC, DASHBOARD].contains(&id.as_str()))
                .cloned()
                .collect(),
        ),
        ("customers", "", ids(&[&[CUSTOMERS, T_REL]])),
        ("", "", everything.clone()),
        (
            "",
            "tag:staging resource_type:test",
            everything
                .iter()
                .filter(|id| ![STG_O, STG_C].contains(&id.as_str()) && !id.starts_with("test."))
                .cloned()
                .collect(),
        ),
    ];
    let project = load(dir.path());
    let mut failures = Vec::new();
    for (selector, exclude, expected) in cases {
        let got = match select(&project, &cli(selector, exclude)) {
            Ok(got) => short(got),
            Err(e) => {
                failures.push(format!("{selector:?} --exclude {exclude:?}: error {e}"));
                continue;
            }
        };
        if got != expected {
            failures.push(format!(
                "{selector:?} --exclude {exclude:?}:\n  missing {:?}\n  extra   {:?}",
                expected.difference(&got).collect::<Vec<_>>(),
                got.difference(&expected).collect::<Vec<_>>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn build_order_and_tests_of_a_node() {
    let dir = shop();
    let project = load(dir.path());
    let order = project.graph.topological_order();
    assert_eq!(order.len(), project.nodes.len());
    let at = |id: &str| {
        order
            .iter()
            .position(|o| o == id)
            .unwrap_or_else(|| panic!("{id} not ordered"))
    };
    for node in project.nodes.values() {
        for parent in &node.depends_on {
            assert!(
                at(parent) < at(&node.unique_id),
                "{parent} after {}",
                node.unique_id
            );
        }
    }
    let tests: BTreeSet<String> = project
        .tests_of(ORDERS)
        .iter()
        .map(|n| n.unique_id.clone())
        .collect();
    assert_eq!(short(tests), ids(&[ORDERS_TESTS]));
}

#[test]
fn indirect_selection_modes_and_resource_type_filter() {
    let dir = shop();
    let with = |mode| Selection {
        indirect_selection: mode,
        ..cli("orders", "")
    };
    // Cautious leaves out the relationships test, whose other parent (customers) is unselected.
    assert_eq!(
        run(dir.path(), with(IndirectSelection::Cautious)),
        ids(&[&[ORDERS, T_UNIQUE, T_NOT_NULL, T_SINGULAR, UNIT]])
    );
    assert_eq!(
        run(dir.path(), with(IndirectSelection::Empty)),
        ids(&[&[ORDERS]])
    );
    assert_eq!(
        run(
            dir.path(),
            Selection {
                indirect_selection: IndirectSelection::Cautious,
                ..cli("orders customers", "")
            }
        ),
        ids(&[&[ORDERS, CUSTOMERS], ORDERS_TESTS])
    );
    // Buildable: a test whose other parent is upstream of the selection is kept.
    assert_eq!(
        run(
            dir.path(),
            Selection {
                indirect_selection: IndirectSelection::Buildable,
                ..cli("summary customers", "")
            }
        ),
        ids(&[&[SUMMARY, CUSTOMERS, T_REL]])
    );
    // Exclusion is always eager: excluding customers drops the test it shares with orders.
    assert_eq!(
        run(
            dir.path(),
            Selection {
                indirect_selection: IndirectSelection::Cautious,
                ..cli("orders customers", "customers")
            }
        ),
        ids(&[&[ORDERS, T_UNIQUE, T_NOT_NULL, T_SINGULAR, UNIT]])
    );
    let models_only = Selection {
        resource_types: Some(vec![ResourceType::Model]),
        ..cli("+orders", "")
    };
    assert_eq!(
        run(dir.path(), models_only),
        ids(&[&[ORDERS, STG_O, STG_C]])
    );
}

#[test]
fn selectors_yml_definitions() {
    let dir = shop();
    let by_name = |name: &str| Selection {
        selector: Some(name.to_string()),
        ..Default::default()
    };
    assert_eq!(
        run(dir.path(), by_name("nightly_marts")),
        ids(&[&[SUMMARY, ORDERS, CUSTOMERS, STG_O, STG_C, S], ORDERS_TESTS])
    );
    assert_eq!(
        run(dir.path(), by_name("staging_only")),
        ids(&[&[STG_O, STG_C]])
    );
    assert_eq!(
        run(dir.path(), by_name("cli_style")),
        ids(&[&[STG_O, ORDERS, SNAP], ORDERS_TESTS])
    );
    assert_eq!(
        run(dir.path(), by_name("cautious_orders")),
        ids(&[&[ORDERS, T_UNIQUE, T_NOT_NULL, T_SINGULAR, UNIT]])
    );

    let project = load(dir.path());
    let error = select(&project, &by_name("nightly_mart")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid selector 'nightly_mart'\nhint: did you mean 'nightly_marts'?"
    );
    let error = select(&project, &cli("tags:nightly", "")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid selector 'tags:nightly'\nhint: unknown selector method 'tags'; did you mean 'tag'?"
    );
    let error = select(&project, &cli("state:modified", "")).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("state selection needs --state DIR"),
        "{error}"
    );
}

#[test]
fn state_modified_and_result_against_a_previous_run() {
    let dir = shop();
    let state_dir = tempfile::tempdir().unwrap();
    write_manifest(&load(dir.path()), state_dir.path()).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(state_dir.path().join("manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["metadata"]["dbt_schema_version"],
        "https://schemas.getdbt.com/dbt/manifest/v12.json"
    );
    assert_eq!(manifest["nodes"][ORDERS]["checksum"]["name"], "sha256");
    assert_eq!(manifest["sources"][SRC]["source_name"], "raw");
    assert_eq!(manifest["child_map"][STG_C].as_array().unwrap().len(), 2);

    let with_state = |select: &str| Selection {
        state: Some(State::load(state_dir.path()).unwrap()),
        ..cli(select, "")
    };
    // Nothing changed yet.
    assert_eq!(run(dir.path(), with_state("state:modified")), ids(&[]));
    // dbt-core writes more config defaults (unset ones) than weir: they do not count.
    let mut dbt_like = manifest.clone();
    let config = dbt_like["nodes"][ORDERS]["config"].as_object_mut().unwrap();
    config.insert("incremental_strategy".into(), serde_json::Value::Null);
    config.insert("batch_size".into(), serde_json::Value::Null);
    config.insert("unrendered_extra".into(), serde_json::json!({}));
    // ... and microbatch's default `lookback: 1` in every node's config (dbt-core 1.11).
    for node in dbt_like["nodes"].as_object_mut().unwrap().values_mut() {
        node["config"]["lookback"] = serde_json::json!(1);
    }
    let dbt_dir = tempfile::tempdir().unwrap();
    std::fs::write(dbt_dir.path().join("manifest.json"), dbt_like.to_string()).unwrap();
    let dbt_state = Selection {
        state: Some(State::load(dbt_dir.path()).unwrap()),
        ..cli("state:modified", "")
    };
    assert_eq!(run(dir.path(), dbt_state), ids(&[]));

    // Edit one model's SQL, add a model, and change a folder config.
    write(
        dir.path(),
        &[
            (
                "models/staging/stg_orders.sql",
                "select *, 1 as edited from {{ ref('raw_orders') }}\n",
            ),
            ("models/marts/new_model.sql", "select 1\n"),
        ],
    );
    assert_eq!(
        run(dir.path(), with_state("state:modified+")),
        ids(&[
            &[
                STG_O,
                ORDERS,
                SNAP,
                SUMMARY,
                EXPLORE,
                DASHBOARD,
                "model.shop.new_model"
            ],
            ORDERS_TESTS
        ])
    );
    assert_eq!(
        run(dir.path(), with_state("state:new")),
        ids(&[&["model.shop.new_model"]])
    );
    assert_eq!(
        run(dir.path(), with_state("state:modified.body")),
        ids(&[&[STG_O, "model.shop.new_model"]])
    );

    write(
        dir.path(),
        &[(
            "dbt_project.yml",
            "name: shop\nprofile: p\nmodels:\n  shop:\n    staging:\n      +tags: [staging]\n      +materialized: table\n    marts:\n      +materialized: table\n",
        )],
    );
    // A new node counts as modified for every sub-check, as in dbt.
    assert_eq!(
        run(dir.path(), with_state("state:modified.configs")),
        ids(&[&[STG_O, STG_C, "model.shop.new_model"]])
    );

    // result: reads run_results.json from the state folder.
    std::fs::write(
        state_dir.path().join("run_results.json"),
        format!(
            r#"{{"results": [{{"unique_id": "{ORDERS}", "status": "error"}}, {{"unique_id": "{CUSTOMERS}", "status": "success"}}]}}"#
        ),
    )
    .unwrap();
    assert_eq!(
        run(dir.path(), with_state("result:error")),
        ids(&[&[ORDERS], ORDERS_TESTS])
    );
    assert_eq!(
        run(dir.path(), with_state("result:error+")),
        ids(&[&[ORDERS, SUMMARY, EXPLORE, DASHBOARD], ORDERS_TESTS])
    );
}
