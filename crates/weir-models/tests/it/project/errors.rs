//! Errors a user sees: each message asserted as the CLI prints it (`error: ...` / `hint: ...`).

use weir_models::project::{Project, ProjectErrorKind, render_errors};

use super::common::{PROFILE, load_err, options, project};

fn base<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut files = vec![
        ("dbt_project.yml", "name: shop\nprofile: p\n"),
        ("profiles.yml", PROFILE),
    ];
    files.extend_from_slice(extra);
    files
}

#[test]
fn missing_ref_suggests_the_closest_name() {
    let dir = project(&base(&[
        ("models/stg_orders.sql", "select 1 as id"),
        ("models/orders.sql", "select * from {{ ref('stg_order') }}"),
    ]));
    assert_eq!(
        render_errors(&load_err(dir.path())),
        "error: models/orders.sql: model.shop.orders depends on a node named 'stg_order' which was not found\nhint: did you mean 'stg_orders'?"
    );
}

#[test]
fn missing_source_and_unknown_generic_test_suggest_names() {
    let dir = project(&base(&[
        (
            "models/orders.sql",
            "select * from {{ source('raw', 'order') }}",
        ),
        (
            "models/schema.yml",
            "sources:\n  - name: raw\n    tables:\n      - name: orders\nmodels:\n  - name: orders\n    columns:\n      - name: id\n        tests: [uniqe]\n",
        ),
    ]));
    let rendered = render_errors(&load_err(dir.path()));
    assert_eq!(
        rendered,
        "error: models/schema.yml:9: unknown generic test 'uniqe' on 'model.shop.orders'\nhint: did you mean 'unique'?\n\
         error: models/orders.sql: model.shop.orders depends on a source named 'raw.order' which was not found\nhint: did you mean 'raw.orders'?"
    );
}

#[test]
fn cycle_names_every_node_in_it() {
    let dir = project(&base(&[
        ("models/a.sql", "select * from {{ ref('c') }}"),
        ("models/b.sql", "select * from {{ ref('a') }}"),
        ("models/c.sql", "select * from {{ ref('b') }}"),
    ]));
    assert_eq!(
        render_errors(&load_err(dir.path())),
        "error: found a cycle: model.shop.a --> model.shop.b --> model.shop.c --> model.shop.a\nhint: remove one of the ref() calls that close the loop"
    );
}

#[test]
fn duplicate_model_names_in_one_package() {
    let dir = project(&base(&[
        ("models/marts/customers.sql", "select 1"),
        ("models/staging/customers.sql", "select 2"),
        ("seeds/orders.csv", "id\n1\n"),
        ("models/orders.sql", "select 3"),
    ]));
    assert_eq!(
        render_errors(&load_err(dir.path())),
        "error: models/staging/customers.sql: dbt found two models with the name 'customers': model.shop.customers (models/marts/customers.sql) and model.shop.customers (models/staging/customers.sql)\nhint: rename one of them: ref() could not tell them apart\n\
         error: seeds/orders.csv: dbt found two resources with the name 'orders': model.shop.orders (models/orders.sql) and seed.shop.orders (seeds/orders.csv)\nhint: rename one of them: ref() could not tell them apart"
    );
}

#[test]
fn same_model_name_in_two_packages_is_allowed_and_the_root_wins() {
    let dir = project(&base(&[
        ("models/customers.sql", "select 1"),
        (
            "models/report.sql",
            "select * from {{ ref('customers') }}, {{ ref('helpers', 'customers') }}",
        ),
        ("dbt_packages/helpers/dbt_project.yml", "name: helpers\n"),
        ("dbt_packages/helpers/models/customers.sql", "select 2"),
    ]));
    let project = Project::load(dir.path(), &options())
        .map_err(|e| render_errors(&e))
        .unwrap();
    assert_eq!(
        project.nodes["model.shop.report"].depends_on,
        ["model.shop.customers", "model.helpers.customers"]
    );
}

#[test]
fn profile_without_the_target() {
    let dir = project(&[
        ("dbt_project.yml", "name: shop\nprofile: p\n"),
        (
            "profiles.yml",
            "p:\n  target: prod\n  outputs:\n    dev:\n      type: duckdb\n",
        ),
    ]);
    let errors = load_err(dir.path());
    assert_eq!(errors.len(), 1);
    let message = errors[0].to_string();
    let file = dir.path().join("profiles.yml");
    assert_eq!(
        message,
        format!(
            "{}:2: the profile 'p' does not have a target named 'prod'\nhint: known targets: dev",
            file.display()
        )
    );
}

#[test]
fn profile_with_a_yaml_syntax_error_names_the_line() {
    let dir = project(&[
        ("dbt_project.yml", "name: shop\nprofile: p\n"),
        (
            "profiles.yml",
            "p:\n  target: dev\n  outputs: [dev\n    dev:\n",
        ),
    ]);
    let errors = load_err(dir.path());
    assert_eq!(errors.len(), 1);
    assert!(
        matches!(errors[0].kind, ProjectErrorKind::Yaml(_)),
        "{:?}",
        errors[0]
    );
    let location = errors[0].location.as_ref().expect("location");
    assert_eq!(location.file, dir.path().join("profiles.yml"));
    assert_eq!(location.line, Some(4));
    assert!(errors[0].to_string().starts_with(&format!(
        "{}:4: invalid yaml: ",
        dir.path().join("profiles.yml").display()
    )));
}

#[test]
fn unknown_profile_and_missing_env_var() {
    let dir = project(&[
        ("dbt_project.yml", "name: shop\nprofile: shopp\n"),
        (
            "profiles.yml",
            "shop:\n  outputs:\n    default:\n      type: duckdb\n",
        ),
    ]);
    let errors = load_err(dir.path());
    assert_eq!(
        errors[0].to_string(),
        format!(
            "{}: could not find profile named 'shopp'\nhint: did you mean 'shop'?",
            dir.path().join("profiles.yml").display()
        )
    );

    let dir = project(&[
        ("dbt_project.yml", "name: shop\nprofile: p\n"),
        (
            "profiles.yml",
            "p:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      password: \"{{ env_var('PG_PASSWORD') }}\"\n",
        ),
    ]);
    let errors = load_err(dir.path());
    assert_eq!(
        errors[0].to_string(),
        format!(
            "{}:6: env var required but not provided: 'PG_PASSWORD'\nhint: set the variable, or give env_var a default: env_var('NAME', 'default')",
            dir.path().join("profiles.yml").display()
        )
    );
}

#[test]
fn declared_package_not_installed() {
    let dir = project(&base(&[(
        "packages.yml",
        "packages:\n  - package: dbt-labs/dbt_utils\n    version: [\">=1.0.0\", \"<2.0.0\"]\n",
    )]));
    assert_eq!(
        render_errors(&load_err(dir.path())),
        "error: packages.yml:2: package 'dbt_utils' is not installed\nhint: run `weir models deps` to install the project's packages"
    );
}

#[test]
fn python_model_is_refused_with_its_path_and_every_problem_comes_at_once() {
    let dir = project(&base(&[
        (
            "models/forecast.py",
            "def model(dbt, session):\n    return None\n",
        ),
        ("models/orders.sql", "select * from {{ ref('nope') }}"),
        (
            "models/schema.yml",
            "models:\n  - name: orders\n    columns: [\n",
        ),
    ]));
    let errors = load_err(dir.path());
    let rendered = render_errors(&errors);
    assert_eq!(errors.len(), 3, "{rendered}");
    assert!(
        rendered.contains("error: models/forecast.py: python models are not supported\nhint: rewrite it as a .sql model; weir runs SQL models only"),
        "{rendered}"
    );
    assert!(
        rendered.contains("error: models/schema.yml:4: invalid yaml: "),
        "{rendered}"
    );
    assert!(rendered.contains("error: models/orders.sql: model.shop.orders depends on a node named 'nope' which was not found"), "{rendered}");
}

#[test]
fn missing_dbt_project_yml() {
    let dir = tempfile::tempdir().unwrap();
    let errors = Project::load(dir.path(), &options()).unwrap_err();
    let message = errors[0].to_string();
    assert!(
        message.starts_with(&format!(
            "cannot read '{}'",
            dir.path().join("dbt_project.yml").display()
        )),
        "{message}"
    );
    assert!(
        message
            .ends_with("hint: run weir models from a dbt project directory, or pass --project-dir"),
        "{message}"
    );
}
