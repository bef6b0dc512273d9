//! Project reading beyond the fixtures: config precedence and merge rules, profiles, vars,
//! packages, versions, sources, snapshots, unit tests, exposures, macros.

use std::collections::BTreeMap;

use serde_json::json;
use weir_models::project::{
    LoadOptions, Project, ResourceType, install_local_packages, render_errors,
};

use super::common::{PROFILE, load, options, project, write};

#[test]
fn config_precedence_and_merge_rules() {
    let dir = project(&[
        (
            "dbt_project.yml",
            r#"name: shop
profile: p
require-dbt-version: ">=1.5.0"
on-run-start: "create schema if not exists audit"
on-run-end: ["grant usage on schema audit to reporter"]
quoting: {identifier: false}
dispatch:
  - macro_namespace: dbt_utils
    search_order: [shop, dbt_utils]
vars:
  start_date: "2020-01-01"
  helpers:
    currency: EUR
models:
  +tags: [all]
  +meta: {owner: data}
  shop:
    +post-hook: "grant select on {{ this }} to reporter"
    marts:
      +materialized: table
      +tags: marts
      +grants: {select: [analyst]}
      customers:
        +materialized: incremental
    legacy:
      +enabled: false
seeds:
  shop:
    +column_types: {id: bigint}
    +quote_columns: true
"#,
        ),
        ("profiles.yml", PROFILE),
        ("models/marts/customers.sql", "select 1 as id"),
        (
            "models/marts/orders.sql",
            "select * from {{ ref('customers') }}",
        ),
        ("models/legacy/old.sql", "select 1"),
        ("seeds/countries.csv", "id,name\n1,a\n"),
        (
            "models/marts/schema.yml",
            r#"models:
  - name: orders
    description: one row per order
    config:
      materialized: view
      tags: [finance]
      meta: {tier: 1}
      grants: {+select: [finance]}
      schema: reporting
    columns:
      - name: id
        data_type: integer
        constraints: [{type: not_null}]
        data_tests:
          - unique:
              config:
                severity: warn
                where: "id > 0"
                limit: 10
                store_failures: true
          - not_null:
              name: orders_id_present
              config: {error_if: ">10", warn_if: ">0"}
  - name: old
    data_tests: [unique]
"#,
        ),
    ]);
    let project = load(dir.path());
    let orders = &project.nodes["model.shop.orders"];
    // Property config beats folder config; tags append (no duplicates), meta and grants merge.
    assert_eq!(orders.materialized(), Some("view"));
    assert_eq!(orders.tags(), ["all", "marts", "finance"]);
    assert_eq!(orders.config["meta"], json!({"owner": "data", "tier": 1}));
    assert_eq!(
        orders.config["grants"],
        json!({"select": ["analyst", "finance"]})
    );
    assert_eq!(
        orders.config["post-hook"],
        json!([{"sql": "grant select on {{ this }} to reporter", "transaction": true, "index": null}])
    );
    assert_eq!(orders.schema.as_deref(), Some("main_reporting"));
    assert_eq!(orders.description, "one row per order");
    assert_eq!(orders.columns["id"].data_type.as_deref(), Some("integer"));
    assert_eq!(
        orders.columns["id"].constraints,
        [json!({"type": "not_null"})]
    );
    // The most specific folder (a file name) wins.
    assert_eq!(
        project.nodes["model.shop.customers"].materialized(),
        Some("incremental")
    );
    assert_eq!(
        project.nodes["model.shop.customers"].config["grants"],
        json!({"select": ["analyst"]})
    );
    // `enabled: false` removes the node and the tests on it.
    assert!(!project.nodes.contains_key("model.shop.old"));
    assert!(project.disabled.contains_key("model.shop.old"));
    assert!(project.nodes.keys().all(|id| !id.contains("unique_old")));
    // Seeds' column_types.
    let seed = &project.nodes["seed.shop.countries"];
    assert_eq!(seed.config["column_types"], json!({"id": "bigint"}));
    assert_eq!(seed.config["quote_columns"], json!(true));
    assert_eq!(seed.materialized(), Some("seed"));
    // Test configs and custom names.
    let unique = project
        .nodes
        .values()
        .find(|n| n.name == "unique_orders_id")
        .expect("unique test");
    assert_eq!(unique.config["severity"], "warn");
    assert_eq!(unique.config["where"], "id > 0");
    assert_eq!(unique.config["limit"], 10);
    assert_eq!(unique.config["store_failures"], true);
    assert_eq!(unique.config["materialized"], "test");
    let named = project
        .nodes
        .values()
        .find(|n| n.name == "orders_id_present")
        .expect("named test");
    assert!(
        named.unique_id.starts_with("test.shop.orders_id_present."),
        "{}",
        named.unique_id
    );
    assert_eq!(
        (
            named.config["error_if"].as_str(),
            named.config["warn_if"].as_str()
        ),
        (Some(">10"), Some(">0"))
    );
    assert_eq!(named.alias.as_deref(), Some("orders_id_present"));

    // Settings.
    let settings = &project.settings;
    assert_eq!(settings.require_dbt_version, [">=1.5.0"]);
    assert_eq!(settings.on_run_start, ["create schema if not exists audit"]);
    assert_eq!(
        settings.on_run_end,
        ["grant usage on schema audit to reporter"]
    );
    assert_eq!(settings.quoting["identifier"], false);
    assert_eq!(project.dispatch_order("dbt_utils"), ["shop", "dbt_utils"]);
    assert_eq!(project.dispatch_order("other"), ["shop", "other"]);
    assert_eq!(project.vars_for("shop")["start_date"], "2020-01-01");
    assert_eq!(project.vars_for("helpers")["currency"], "EUR");
    assert!(!project.vars_for("shop").contains_key("currency"));
}

#[test]
fn in_file_config_is_the_last_layer() {
    let dir = project(&[
        (
            "dbt_project.yml",
            "name: shop\nprofile: p\nmodels:\n  shop:\n    +tags: [a]\n",
        ),
        ("profiles.yml", PROFILE),
        ("models/orders.sql", "select 1 as id"),
        ("models/report.sql", "select * from {{ ref('orders') }}"),
        (
            "models/schema.yml",
            "models:\n  - name: orders\n    config: {materialized: view}\n    columns:\n      - name: id\n        tests: [unique]\n",
        ),
    ]);
    let mut project = load(dir.path());
    let layer = json!({"materialized": "table", "tags": ["b"], "alias": "orders_v2"});
    project
        .apply_file_config("model.shop.orders", layer.as_object().unwrap())
        .unwrap();
    let orders = &project.nodes["model.shop.orders"];
    assert_eq!(
        (orders.materialized(), orders.tags()),
        (Some("table"), vec!["a".to_string(), "b".to_string()])
    );
    assert_eq!(orders.alias.as_deref(), Some("orders_v2"));

    project
        .apply_file_config(
            "model.shop.orders",
            json!({"enabled": false}).as_object().unwrap(),
        )
        .unwrap();
    assert!(project.disabled.contains_key("model.shop.orders"));
    assert!(
        project
            .nodes
            .values()
            .all(|n| n.resource_type != ResourceType::Test),
        "its test is disabled with it"
    );
    assert!(!project.graph.contains("model.shop.orders"));

    // The compiler's rendered dependencies replace the static scan; a cycle is refused.
    project
        .set_dependencies("model.shop.report", vec![])
        .unwrap();
    assert!(project.graph.parents["model.shop.report"].is_empty());
}

#[test]
fn profiles_env_vars_and_where_profiles_yml_is_found() {
    let profiles = "p:\n  target: \"{{ env_var('DBT_TARGET', 'dev') }}\"\n  outputs:\n    dev:\n      type: duckdb\n      path: \"{{ env_var('WH_PATH', 'dev.duckdb') }}\"\n      threads: \"{{ env_var('THREADS', '4') | as_number }}\"\n    prod:\n      type: postgres\n      host: db\n      user: \"{{ env_var('PG_USER') }}\"\n      dbname: analytics\n      schema: marts\n      threads: 8\n";
    let dir = project(&[
        ("dbt_project.yml", "name: shop\nprofile: p\n"),
        ("profiles.yml", profiles),
    ]);
    let project_env = |vars: &[(&str, &str)]| LoadOptions {
        env: Some(
            vars.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Default::default()
    };
    let profile = Project::load(dir.path(), &project_env(&[]))
        .unwrap()
        .profile
        .unwrap();
    assert_eq!((profile.target_name.as_str(), profile.threads), ("dev", 4));
    assert_eq!(profile.output["path"], "dev.duckdb");
    assert_eq!(profile.database().as_deref(), Some("dev"));

    let env = project_env(&[("DBT_TARGET", "prod"), ("PG_USER", "etl")]);
    let profile = Project::load(dir.path(), &env).unwrap().profile.unwrap();
    assert_eq!(
        (
            profile.target_name.as_str(),
            profile.adapter_type.as_str(),
            profile.threads
        ),
        ("prod", "postgres", 8)
    );
    assert_eq!(profile.output["user"], "etl");
    assert_eq!(
        (profile.database().as_deref(), profile.schema().as_str()),
        (Some("analytics"), "marts")
    );

    // --target beats the profile's default.
    let target = LoadOptions {
        target: Some("prod".into()),
        ..project_env(&[("PG_USER", "x")])
    };
    assert_eq!(
        Project::load(dir.path(), &target)
            .unwrap()
            .profile
            .unwrap()
            .target_name,
        "prod"
    );

    // Search order: --profiles-dir, DBT_PROFILES_DIR, the project, ~/.dbt.
    let elsewhere = tempfile::tempdir().unwrap();
    write(
        elsewhere.path(),
        &[(
            "profiles.yml",
            "p:\n  target: other\n  outputs:\n    other:\n      type: sqlite\n",
        )],
    );
    let home = tempfile::tempdir().unwrap();
    write(
        home.path(),
        &[(
            ".dbt/profiles.yml",
            "p:\n  target: home\n  outputs:\n    home:\n      type: duckdb\n",
        )],
    );
    let explicit = LoadOptions {
        profiles_dir: Some(elsewhere.path().to_path_buf()),
        ..project_env(&[])
    };
    assert_eq!(
        Project::load(dir.path(), &explicit)
            .unwrap()
            .profile
            .unwrap()
            .target_name,
        "other"
    );
    let by_env = project_env(&[("DBT_PROFILES_DIR", &elsewhere.path().display().to_string())]);
    assert_eq!(
        Project::load(dir.path(), &by_env)
            .unwrap()
            .profile
            .unwrap()
            .target_name,
        "other"
    );
    std::fs::remove_file(dir.path().join("profiles.yml")).unwrap();
    let by_home = project_env(&[("HOME", &home.path().display().to_string())]);
    assert_eq!(
        Project::load(dir.path(), &by_home)
            .unwrap()
            .profile
            .unwrap()
            .target_name,
        "home"
    );
}

#[test]
fn local_packages_install_with_deps_and_then_load() {
    let workspace = tempfile::tempdir().unwrap();
    write(
        workspace.path(),
        &[
            (
                "shop/dbt_project.yml",
                "name: shop\nprofile: p\npackages-install-path: vendor\nvars:\n  helpers:\n    rate: 2\n",
            ),
            ("shop/profiles.yml", PROFILE),
            (
                "shop/packages.yml",
                "packages:\n  - local: ../helpers_src\n",
            ),
            (
                "shop/models/orders.sql",
                "select {{ helpers.cents('amount') }} from {{ ref('helpers', 'rates') }}",
            ),
            (
                "helpers_src/dbt_project.yml",
                "name: helpers\nvars:\n  rate: 1\n  unit: cents\n",
            ),
            ("helpers_src/models/rates.sql", "select 1 as rate"),
            (
                "helpers_src/macros/cents.sql",
                "{% macro cents(col) -%}\n  {{ col }} * 100\n{%- endmacro %}\n\n{% materialization table_plus, adapter='duckdb' %}{% endmaterialization %}\n",
            ),
            (
                "helpers_src/tests/generic/positive.sql",
                "{% test positive(model, column_name) %}select * from {{ model }} where {{ column_name }} < 0{% endtest %}\n",
            ),
        ],
    );
    let shop = workspace.path().join("shop");
    let errors = Project::load(&shop, &options()).unwrap_err();
    assert_eq!(
        render_errors(&errors),
        "error: packages.yml:2: package 'helpers' is not installed\nhint: run `weir models deps` to install the project's packages"
    );

    assert_eq!(install_local_packages(&shop).unwrap(), ["helpers"]);
    assert!(shop.join("vendor/helpers/dbt_project.yml").is_file());
    // Installing twice replaces the link.
    assert_eq!(install_local_packages(&shop).unwrap(), ["helpers"]);

    let project = load(&shop);
    assert_eq!(
        project.nodes["model.shop.orders"].depends_on,
        ["model.helpers.rates"]
    );
    let cents = &project.macros["macro.helpers.cents"];
    assert_eq!(
        (cents.line, cents.arguments.as_slice()),
        (1, ["col".to_string()].as_slice())
    );
    assert!(
        project
            .macros
            .contains_key("macro.helpers.materialization_table_plus_duckdb")
    );
    assert_eq!(
        project.macros["macro.helpers.test_positive"].original_file_path,
        "tests/generic/positive.sql"
    );
    // The root project's vars for a package beat the package's own.
    let vars = project.vars_for("helpers");
    assert_eq!(
        (vars["rate"].clone(), vars["unit"].clone()),
        (json!(2), json!("cents"))
    );
}

#[test]
fn sources_snapshots_unit_tests_exposures_analyses_and_versions() {
    let dir = project(&[
        (
            "dbt_project.yml",
            "name: shop\nprofile: p\nsources:\n  shop:\n    +meta: {team: ingest}\n",
        ),
        ("profiles.yml", PROFILE),
        (
            "models/staging/stg_events.sql",
            "select * from {{ source('raw', 'events') }} -- {{ ref('dim_customers', v=1) }}",
        ),
        ("models/marts/dim_customers_v1.sql", "select 1 as id"),
        (
            "models/marts/dim_customers_v2.sql",
            "select 1 as id, 2 as tier",
        ),
        (
            "models/marts/report.sql",
            "select * from {{ ref('dim_customers') }} join {{ ref('dim_customers', version=1) }} using (id)",
        ),
        (
            "snapshots/customers_snapshot.sql",
            "{% snapshot customers_snapshot %}\n  select * from {{ ref('dim_customers') }}\n{% endsnapshot %}\n",
        ),
        ("analyses/explore.sql", "select * from {{ ref('report') }}"),
        (
            "tests/no_negative.sql",
            "select * from {{ ref('report') }} where id < 0",
        ),
        (
            "models/staging/sources.yml",
            r#"sources:
  - name: raw
    database: lake
    schema: landing
    loader: fivetran
    loaded_at_field: _synced
    freshness:
      warn_after: {count: 1, period: day}
    quoting: {identifier: true}
    tables:
      - name: events
        identifier: raw_events
        description: every click
        freshness:
          error_after: {count: 2, period: day}
        columns:
          - name: id
            tests:
              - unique
              - accepted_values:
                  values: [1, 2]
                  quote: false
"#,
        ),
        (
            "models/marts/schema.yml",
            r#"models:
  - name: dim_customers
    latest_version: 2
    versions:
      - v: 1
      - v: 2
    columns:
      - name: id
        tests: [not_null]
snapshots:
  - name: orders_history
    relation: source('raw', 'events')
    config:
      unique_key: id
      strategy: timestamp
      updated_at: _synced
unit_tests:
  - name: report_keeps_ids
    model: report
    given:
      - input: ref('dim_customers')
        rows: [{id: 1}]
    expect:
      rows: [{id: 1}]
exposures:
  - name: weekly
    type: dashboard
    maturity: high
    owner: {name: ops, email: ops@example.com}
    depends_on:
      - ref('report')
      - source('raw', 'events')
"#,
        ),
    ]);
    let project = load(dir.path());
    let source = &project.nodes["source.shop.raw.events"];
    let details = source.source.as_ref().unwrap();
    assert_eq!(
        (source.database.as_deref(), source.schema.as_deref()),
        (Some("lake"), Some("landing"))
    );
    assert_eq!(
        (details.identifier.as_str(), details.loader.as_str()),
        ("raw_events", "fivetran")
    );
    assert_eq!(details.loaded_at_field.as_deref(), Some("_synced"));
    assert_eq!(
        details.freshness,
        json!({"error_after": {"count": 2, "period": "day"}})
    );
    assert_eq!(details.quoting, json!({"identifier": true}));
    assert_eq!(source.fqn, ["shop", "staging", "raw", "events"]);
    assert_eq!(source.config["meta"], json!({"team": "ingest"}));
    assert_eq!(source.description, "every click");
    let source_tests: Vec<&str> = project
        .nodes
        .values()
        .filter(|n| n.attached_node.as_deref() == Some("source.shop.raw.events"))
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(
        source_tests,
        [
            "source_accepted_values_raw_events_id__False__1__2",
            "source_unique_raw_events_id"
        ]
    );

    // Versions: ref without a version is the latest.
    assert!(project.nodes.contains_key("model.shop.dim_customers.v1"));
    let v2 = &project.nodes["model.shop.dim_customers.v2"];
    assert_eq!(
        (v2.version.as_deref(), v2.latest_version.as_deref()),
        (Some("2"), Some("2"))
    );
    assert_eq!(v2.fqn, ["shop", "marts", "dim_customers", "v2"]);
    assert_eq!(v2.alias.as_deref(), Some("dim_customers_v2"));
    assert_eq!(
        project.nodes["model.shop.report"].depends_on,
        ["model.shop.dim_customers.v2", "model.shop.dim_customers.v1"]
    );
    assert_eq!(
        project.nodes["model.shop.stg_events"].depends_on,
        ["model.shop.dim_customers.v1", "source.shop.raw.events"]
    );
    assert!(
        project
            .nodes
            .keys()
            .any(|id| id.starts_with("test.shop.not_null_dim_customers_v1_id."))
    );
    assert!(
        project
            .nodes
            .keys()
            .any(|id| id.starts_with("test.shop.not_null_dim_customers_v2_id."))
    );

    // Snapshots, SQL and YAML.
    let snapshot = &project.nodes["snapshot.shop.customers_snapshot"];
    assert_eq!(
        snapshot.fqn,
        ["shop", "customers_snapshot", "customers_snapshot"]
    );
    assert_eq!(
        snapshot.raw_code.trim(),
        "select * from {{ ref('dim_customers') }}"
    );
    assert_eq!(snapshot.materialized(), Some("snapshot"));
    let history = &project.nodes["snapshot.shop.orders_history"];
    assert_eq!(history.depends_on, ["source.shop.raw.events"]);
    assert_eq!(history.config["strategy"], "timestamp");

    let unit = &project.nodes["unit_test.shop.report.report_keeps_ids"];
    assert_eq!(unit.depends_on, ["model.shop.report"]);
    assert_eq!(unit.fqn, ["shop", "marts", "report", "report_keeps_ids"]);
    assert_eq!(
        unit.unit_test.as_ref().unwrap().given[0]["rows"],
        json!([{"id": 1}])
    );

    let exposure = &project.nodes["exposure.shop.weekly"];
    assert_eq!(
        exposure.depends_on,
        ["model.shop.report", "source.shop.raw.events"]
    );
    assert_eq!(
        exposure.exposure.as_ref().unwrap().maturity.as_deref(),
        Some("high")
    );

    let analysis = &project.nodes["analysis.shop.explore"];
    assert_eq!(
        (analysis.path.as_str(), analysis.fqn.as_slice()),
        (
            "analysis/explore.sql",
            [
                "shop".to_string(),
                "analysis".to_string(),
                "explore".to_string()
            ]
            .as_slice()
        )
    );
    let singular = &project.nodes["test.shop.no_negative"];
    assert_eq!(
        (singular.path.as_str(), singular.depends_on.as_slice()),
        (
            "no_negative.sql",
            ["model.shop.report".to_string()].as_slice()
        )
    );
}

#[test]
fn dbt_project_and_property_configs_render_env_var_var_and_target() {
    let dir = project(&[
        (
            "dbt_project.yml",
            r#"name: shop
profile: p
vars:
  enable_legacy: false
models:
  shop:
    +materialized: "{{ 'table' if target.name == 'prod' else 'view' }}"
    +schema: "{{ env_var('SCHEMA', 'analytics') }}"
    +post-hook: "insert into audit select '{{ this }}'"
    legacy:
      +enabled: "{{ var('enable_legacy') }}"
"#,
        ),
        (
            "profiles.yml",
            "p:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n    prod:\n      type: duckdb\n",
        ),
        ("models/orders.sql", "select 1"),
        ("models/legacy/old.sql", "select 1"),
        (
            "models/schema.yml",
            "models:\n  - name: orders\n    config:\n      alias: \"{{ var('orders_alias', 'orders') }}\"\n",
        ),
    ]);
    let project = load(dir.path());
    let orders = &project.nodes["model.shop.orders"];
    assert_eq!(orders.materialized(), Some("view"));
    assert_eq!(orders.schema.as_deref(), Some("main_analytics"));
    assert_eq!(orders.alias.as_deref(), Some("orders"));
    // Hooks stay Jinja until they run.
    assert_eq!(
        orders.config["post-hook"][0]["sql"],
        "insert into audit select '{{ this }}'"
    );
    assert!(project.disabled.contains_key("model.shop.old"));

    let options = LoadOptions {
        target: Some("prod".into()),
        vars: json!({"enable_legacy": true, "orders_alias": "all_orders"})
            .as_object()
            .unwrap()
            .clone(),
        env: Some([("SCHEMA".to_string(), "mart".to_string())].into()),
        ..Default::default()
    };
    let project = Project::load(dir.path(), &options)
        .map_err(|e| render_errors(&e))
        .unwrap();
    let orders = &project.nodes["model.shop.orders"];
    assert_eq!(
        (orders.materialized(), orders.schema.as_deref()),
        (Some("table"), Some("main_mart"))
    );
    assert_eq!(orders.alias.as_deref(), Some("all_orders"));
    assert!(project.nodes.contains_key("model.shop.old"));
}

#[test]
fn unknown_property_keys_warn_with_a_suggestion_and_ls_names() {
    let dir = project(&[
        ("dbt_project.yml", "name: shop\nprofile: p\n"),
        ("profiles.yml", PROFILE),
        (
            "models/staging/orders.sql",
            "select * from {{ source('raw', 'events') }}",
        ),
        (
            "models/staging/schema.yml",
            "models:\n  - name: orders\n    descripton: typo\n    columns:\n      - name: id\n        data_tset: [unique]\nsources:\n  - name: raw\n    tables:\n      - name: events\n        identifer: ev\n",
        ),
    ]);
    let project = load(dir.path());
    assert_eq!(
        project.warnings,
        [
            "models/staging/schema.yml:3: unknown key 'descripton' in model 'orders' (did you mean 'description'?)",
            "models/staging/schema.yml:6: unknown key 'data_tset' in column 'id' of model 'orders' (did you mean 'data_tests'?)",
            "models/staging/schema.yml:11: unknown key 'identifer' in table 'events' of source 'raw' (did you mean 'identifier'?)",
        ]
    );
    assert_eq!(
        project.nodes["model.shop.orders"].ls_name(),
        "shop.staging.orders"
    );
    assert_eq!(
        project.nodes["source.shop.raw.events"].ls_name(),
        "source:shop.raw.events"
    );
}

#[test]
fn literal_in_file_config_applies_at_parse_time() {
    let dir = project(&[
        (
            "dbt_project.yml",
            "name: shop\nprofile: p\nmodels:\n  +tags: [base]\n",
        ),
        ("profiles.yml", PROFILE),
        (
            "models/orders.sql",
            "{{\n  config(\n    materialized='incremental',\n    tags=['hourly'],\n    meta={'owner': 'ops', 'tier': 1},\n    unique_key=var('key'),\n    on_schema_change=\"append_new_columns\",\n  )\n}}\nselect 1 as id",
        ),
        (
            "models/scratch.sql",
            "{{ config(enabled=false) }}\nselect 1",
        ),
        ("models/report.sql", "select * from {{ ref('orders') }}"),
    ]);
    let mut project = load(dir.path());
    let orders = &project.nodes["model.shop.orders"];
    assert_eq!(orders.materialized(), Some("incremental"));
    assert_eq!(orders.tags(), ["base", "hourly"]);
    assert_eq!(orders.config["meta"], json!({"owner": "ops", "tier": 1}));
    assert_eq!(orders.config["on_schema_change"], "append_new_columns");
    assert_eq!(
        orders.config["unique_key"],
        json!(null),
        "var() is left to the compiler"
    );
    assert!(!orders.static_config_complete);
    assert!(project.disabled.contains_key("model.shop.scratch"));
    assert!(project.nodes["model.shop.report"].static_config_complete);

    // The compiler's rendered layer replaces the static one (tags do not double).
    let rendered = json!({"materialized": "incremental", "tags": ["hourly"], "unique_key": "id"});
    project
        .apply_file_config("model.shop.orders", rendered.as_object().unwrap())
        .unwrap();
    let orders = &project.nodes["model.shop.orders"];
    assert_eq!(orders.tags(), ["base", "hourly"]);
    assert_eq!(orders.config["unique_key"], "id");
    assert_eq!(orders.config["meta"], json!({}));
}
