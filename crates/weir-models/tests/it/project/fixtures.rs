//! The public fixtures: jaffle_shop_duckdb as a project, dbt_utils as a package.

use std::collections::BTreeSet;

use weir_models::project::{Checksum, ResourceType};

use super::common::{PROFILE, extract, load, write};

/// Every generic test id of jaffle_shop as dbt-core writes them in its manifest.
const JAFFLE_TEST_IDS: &[&str] = &[
    "test.jaffle_shop.accepted_values_orders_status__placed__shipped__completed__return_pending__returned.be6b5b5ec3",
    "test.jaffle_shop.accepted_values_stg_orders_status__placed__shipped__completed__return_pending__returned.080fb20aad",
    "test.jaffle_shop.accepted_values_stg_payments_payment_method__credit_card__coupon__bank_transfer__gift_card.3c3820f278",
    "test.jaffle_shop.not_null_customers_customer_id.5c9bf9911d",
    "test.jaffle_shop.not_null_orders_amount.106140f9fd",
    "test.jaffle_shop.not_null_orders_bank_transfer_amount.7743500c49",
    "test.jaffle_shop.not_null_orders_coupon_amount.ab90c90625",
    "test.jaffle_shop.not_null_orders_credit_card_amount.d3ca593b59",
    "test.jaffle_shop.not_null_orders_customer_id.c5f02694af",
    "test.jaffle_shop.not_null_orders_gift_card_amount.413a0d2d7a",
    "test.jaffle_shop.not_null_orders_order_id.cf6c17daed",
    "test.jaffle_shop.not_null_stg_customers_customer_id.e2cfb1f9aa",
    "test.jaffle_shop.not_null_stg_orders_order_id.81cfe2fe64",
    "test.jaffle_shop.not_null_stg_payments_payment_id.c19cc50075",
    "test.jaffle_shop.relationships_orders_customer_id__customer_id__ref_customers_.c6ec7f58f2",
    "test.jaffle_shop.unique_customers_customer_id.c5af1ff4b1",
    "test.jaffle_shop.unique_orders_order_id.fed79b3a6e",
    "test.jaffle_shop.unique_stg_customers_customer_id.c7614daada",
    "test.jaffle_shop.unique_stg_orders_order_id.e3b841c71a",
    "test.jaffle_shop.unique_stg_payments_payment_id.3744510712",
];

#[test]
fn jaffle_shop_loads_exactly_the_nodes_dbt_lists() {
    let dir = tempfile::tempdir().unwrap();
    extract("jaffle_shop_duckdb-9b13827.tar.gz", dir.path());
    let project = load(dir.path());

    let ids = |t: ResourceType| -> BTreeSet<String> {
        project.nodes_of(t).map(|n| n.unique_id.clone()).collect()
    };
    assert_eq!(
        ids(ResourceType::Seed),
        [
            "seed.jaffle_shop.raw_customers",
            "seed.jaffle_shop.raw_orders",
            "seed.jaffle_shop.raw_payments"
        ]
        .map(String::from)
        .into()
    );
    assert_eq!(
        ids(ResourceType::Model),
        [
            "model.jaffle_shop.customers",
            "model.jaffle_shop.orders",
            "model.jaffle_shop.stg_customers",
            "model.jaffle_shop.stg_orders",
            "model.jaffle_shop.stg_payments",
        ]
        .map(String::from)
        .into()
    );
    let expected: BTreeSet<String> = JAFFLE_TEST_IDS.iter().map(|s| s.to_string()).collect();
    assert_eq!(ids(ResourceType::Test), expected);
    assert_eq!(
        project.nodes.len(),
        3 + 5 + 20,
        "nothing else: no sources, snapshots, analyses"
    );

    // The profile comes from the project's own profiles.yml.
    let profile = project.profile.as_ref().expect("profile");
    assert_eq!(
        (profile.profile_name.as_str(), profile.target_name.as_str()),
        ("jaffle_shop", "dev")
    );
    assert_eq!(
        (profile.adapter_type.as_str(), profile.threads),
        ("duckdb", 24)
    );

    // Folder configs: `jaffle_shop: materialized: table`, `staging: materialized: view`.
    let node = |id: &str| project.node(id).unwrap_or_else(|| panic!("no {id}"));
    assert_eq!(
        node("model.jaffle_shop.customers").materialized(),
        Some("table")
    );
    assert_eq!(
        node("model.jaffle_shop.stg_orders").materialized(),
        Some("view")
    );
    assert_eq!(
        node("model.jaffle_shop.stg_orders").config["docs"]["node_color"],
        "silver"
    );
    assert_eq!(
        node("model.jaffle_shop.orders").config["docs"]["node_color"],
        "gold"
    );
    assert_eq!(
        node("seed.jaffle_shop.raw_orders").config["docs"]["node_color"],
        "#cd7f32"
    );

    // Fields as dbt's manifest has them.
    let stg = node("model.jaffle_shop.stg_orders");
    assert_eq!(stg.fqn, ["jaffle_shop", "staging", "stg_orders"]);
    assert_eq!(stg.path, "staging/stg_orders.sql");
    assert_eq!(stg.original_file_path, "models/staging/stg_orders.sql");
    assert_eq!(
        stg.patch_path.as_deref(),
        Some("jaffle_shop://models/staging/schema.yml")
    );
    assert_eq!(stg.depends_on, ["seed.jaffle_shop.raw_orders"]);
    let text = std::fs::read_to_string(dir.path().join("models/staging/stg_orders.sql")).unwrap();
    assert_eq!(stg.checksum, Checksum::sha256(text.trim().as_bytes()));
    assert_eq!(stg.checksum.checksum.len(), 64);
    assert_eq!(
        (
            stg.database.as_deref(),
            stg.schema.as_deref(),
            stg.alias.as_deref()
        ),
        (Some("jaffle_shop"), Some("main"), Some("stg_orders"))
    );

    let customers = node("model.jaffle_shop.customers");
    assert_eq!(
        customers
            .depends_on
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>(),
        [
            "model.jaffle_shop.stg_customers",
            "model.jaffle_shop.stg_orders",
            "model.jaffle_shop.stg_payments"
        ]
        .map(String::from)
        .into()
    );
    assert_eq!(
        customers.columns["customer_id"].description,
        "This is a unique identifier for a customer"
    );

    // Generic tests: metadata, attachment, long names shortened for the alias and file.
    let relationships = node(
        "test.jaffle_shop.relationships_orders_customer_id__customer_id__ref_customers_.c6ec7f58f2",
    );
    assert_eq!(
        relationships.attached_node.as_deref(),
        Some("model.jaffle_shop.orders")
    );
    assert_eq!(
        relationships
            .depends_on
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>(),
        ["model.jaffle_shop.customers", "model.jaffle_shop.orders"]
            .map(String::from)
            .into()
    );
    let metadata = relationships.test_metadata.as_ref().unwrap();
    assert_eq!(metadata.name, "relationships");
    assert_eq!(metadata.kwargs["to"], "ref('customers')");
    assert_eq!(
        metadata.kwargs["model"],
        "{{ get_where_subquery(ref('orders')) }}"
    );
    assert_eq!(relationships.config["severity"], "ERROR");
    assert_eq!(
        relationships.depends_on_macros,
        ["macro.dbt.test_relationships"]
    );
    let accepted = node(
        "test.jaffle_shop.accepted_values_orders_status__placed__shipped__completed__return_pending__returned.be6b5b5ec3",
    );
    assert_eq!(
        accepted.alias.as_deref(),
        Some("accepted_values_orders_1ce6ab157c285f7cd2ac656013faf758")
    );
    assert_eq!(
        accepted.path,
        "accepted_values_orders_1ce6ab157c285f7cd2ac656013faf758.sql"
    );
    assert_eq!(accepted.column_name.as_deref(), Some("status"));
    let staged = node("test.jaffle_shop.unique_stg_orders_order_id.e3b841c71a");
    assert_eq!(
        staged.fqn,
        ["jaffle_shop", "staging", "unique_stg_orders_order_id"]
    );
    assert_eq!(staged.path, "staging/unique_stg_orders_order_id.sql");

    // Docs blocks from models/*.md.
    assert!(
        project.docs.contains_key("doc.jaffle_shop.orders_status"),
        "{:?}",
        project.docs.keys()
    );
    assert!(project.docs.contains_key("doc.jaffle_shop.__overview__"));
}

#[test]
fn dbt_utils_loads_as_an_installed_package() {
    let dir = tempfile::tempdir().unwrap();
    extract(
        "dbt_utils-1.4.1-49b932c.tar.gz",
        &dir.path().join("dbt_packages/dbt_utils"),
    );
    write(
        dir.path(),
        &[
            ("dbt_project.yml", "name: shop\nprofile: p\n"),
            ("profiles.yml", PROFILE),
            (
                "packages.yml",
                "packages:\n  - package: dbt-labs/dbt_utils\n    version: 1.4.1\n",
            ),
            ("models/orders.sql", "select 1 as id, 2 as customer_id"),
            (
                "models/schema.yml",
                "version: 2\nmodels:\n  - name: orders\n    data_tests:\n      - dbt_utils.unique_combination_of_columns:\n          arguments:\n            combination_of_columns: [id, customer_id]\n    columns:\n      - name: id\n        data_tests:\n          - dbt_utils.accepted_range:\n              min_value: 0\n",
            ),
        ],
    );
    let project = load(dir.path());
    let package = &project.packages["dbt_utils"];
    assert!(!package.is_root);
    assert_eq!(project.packages.len(), 2);

    let star = &project.macros["macro.dbt_utils.star"];
    assert_eq!(star.original_file_path, "macros/sql/star.sql");
    assert_eq!(star.package_name, "dbt_utils");
    assert!(
        star.macro_sql.starts_with("{% macro star("),
        "{}",
        star.macro_sql
    );
    assert!(project.macros.contains_key("macro.dbt_utils.default__star"));
    assert!(
        project
            .macros
            .contains_key("macro.dbt_utils.generate_surrogate_key")
    );
    let generic: BTreeSet<&str> = project
        .generic_tests()
        .filter(|m| m.package_name == "dbt_utils")
        .map(|m| m.name.as_str())
        .collect();
    for name in [
        "test_unique_combination_of_columns",
        "test_expression_is_true",
        "test_accepted_range",
        "test_equal_rowcount",
        "test_not_constant",
    ] {
        assert!(generic.contains(name), "{name} not in {generic:?}");
    }
    let unique = &project.macros["macro.dbt_utils.test_unique_combination_of_columns"];
    assert_eq!(
        unique.original_file_path,
        "macros/generic_tests/unique_combination_of_columns.sql"
    );
    assert_eq!(
        unique.arguments,
        ["model", "combination_of_columns", "quote_columns"]
    );

    // The package's tests on the root model name their macro by namespace.
    let tests: Vec<_> = project.nodes_of(ResourceType::Test).collect();
    assert_eq!(tests.len(), 2);
    let combo = tests
        .iter()
        .find(|t| {
            t.name
                .starts_with("dbt_utils_unique_combination_of_columns_orders_")
        })
        .expect("combination test");
    assert_eq!(
        combo.name,
        "dbt_utils_unique_combination_of_columns_orders_id__customer_id"
    );
    assert_eq!(
        combo.raw_code,
        "{{ dbt_utils.test_unique_combination_of_columns(**_dbt_generic_test_kwargs) }}"
    );
    assert_eq!(
        combo.depends_on_macros,
        ["macro.dbt_utils.test_unique_combination_of_columns"]
    );
    let range = tests
        .iter()
        .find(|t| t.name.starts_with("dbt_utils_accepted_range"))
        .expect("range test");
    assert_eq!(range.name, "dbt_utils_accepted_range_orders_id__0");
    assert_eq!(
        range.test_metadata.as_ref().unwrap().namespace.as_deref(),
        Some("dbt_utils")
    );

    // dbt_utils' own integration project is not part of the package.
    assert!(
        project
            .nodes
            .keys()
            .all(|id| !id.contains(".dbt_utils_integration_tests."))
    );
}
