//! `weir models ...` on jaffle_shop_duckdb (extracted from ../shared/fixtures at run time): the
//! build dbt runs, its console summary and exit code, and artifacts valid against dbt's schemas.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn fixtures() -> PathBuf {
    if let Ok(dir) = std::env::var("WEIR_FIXTURES") {
        return PathBuf::from(dir);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures");
    assert!(
        dir.is_dir(),
        "the test fixtures folder {} is missing: these tests need ../shared/fixtures beside the clone (or WEIR_FIXTURES)",
        dir.display()
    );
    dir
}

/// jaffle_shop in `<tmp>/jaffle_shop` and a profiles dir pointing at `<tmp>/jaffle.duckdb`.
fn jaffle(tmp: &Path) -> (PathBuf, PathBuf) {
    let project = tmp.join("jaffle_shop");
    std::fs::create_dir_all(&project).unwrap();
    let status = std::process::Command::new("tar")
        .arg("xzf")
        .arg(fixtures().join("jaffle_shop_duckdb-9b13827.tar.gz"))
        .arg("-C")
        .arg(&project)
        .status()
        .unwrap();
    assert!(status.success());
    let profiles = tmp.join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(
        profiles.join("profiles.yml"),
        format!(
            "jaffle_shop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: '{}'\n      threads: 4\n",
            tmp.join("jaffle.duckdb").display()
        ),
    )
    .unwrap();
    (project, profiles)
}

fn models(project: &Path, profiles: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("models")
        .args(args)
        .arg("--project-dir")
        .arg(project)
        .arg("--profiles-dir")
        .arg(profiles)
        .env("NO_COLOR", "1")
        .env_remove("WEIR_HOME")
        .env_remove("DBT_PROFILES_DIR")
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn validate(schema_file: &str, artifact: &Path) {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("dbt-schemas").join(schema_file)).unwrap(),
    )
    .unwrap();
    let instance: Value =
        serde_json::from_str(&std::fs::read_to_string(artifact).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("dbt's schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .take(20)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{} is not valid against {schema_file}:\n{}",
        artifact.display(),
        errors.join("\n")
    );
}

#[test]
fn models_build_runs_jaffle_shop_like_dbt() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, profiles) = jaffle(tmp.path());
    let (code, stdout, stderr) = models(&project, &profiles, &["build"]);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("Done. PASS=28 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=28"),
        "{stdout}"
    );
    assert!(
        stdout.contains("OK created sql table model main.orders"),
        "{stdout}"
    );
    let target = project.join("target");
    validate("run-results-v6.json", &target.join("run_results.json"));
    validate("manifest-v12.json", &target.join("manifest.json"));

    // `ls` lists the selection; `run -s` runs only the named model and its skips stay 0.
    let (code, stdout, _) = models(&project, &profiles, &["ls", "-s", "customers+"]);
    assert_eq!(code, 0);
    assert!(
        stdout.lines().any(|l| l == "jaffle_shop.customers"),
        "{stdout}"
    );
    let (code, stdout, stderr) = models(&project, &profiles, &["run", "-s", "stg_orders"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("Done. PASS=1 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=1"),
        "{stdout}"
    );
}

#[test]
fn models_run_exits_1_naming_the_model_and_its_compiled_code_on_a_sql_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, profiles) = jaffle(tmp.path());
    std::fs::write(
        project.join("models/staging/stg_orders.sql"),
        "select id as order_id, no_such_column from {{ ref('raw_orders') }}",
    )
    .unwrap();
    let (code, stdout, _) = models(&project, &profiles, &["build"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("ERROR creating sql view model main.stg_orders"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Database Error in model stg_orders (models/staging/stg_orders.sql)"),
        "{stdout}"
    );
    assert!(stdout.contains("no_such_column"), "{stdout}");
    assert!(
        stdout.contains("compiled code at target/run/jaffle_shop/models/staging/stg_orders.sql"),
        "{stdout}"
    );
    assert!(stdout.contains("SKIP relation main.customers"), "{stdout}");
    validate(
        "run-results-v6.json",
        &project.join("target/run_results.json"),
    );
}

#[test]
fn models_finds_the_dbt_project_in_the_weir_projects_models_folder() {
    let weir = crate::support::Project::new();
    let (project, _) = jaffle(weir.path());
    std::fs::rename(&project, weir.path().join("models")).unwrap();
    // profiles.yml in the dbt project dir is found before ~/.dbt, as dbt does.
    std::fs::write(
        weir.path().join("models/profiles.yml"),
        "jaffle_shop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: 'jaffle.duckdb'\n      threads: 2\n",
    )
    .unwrap();
    let stdout = weir.ok(&["models", "seed"]);
    assert!(
        stdout.contains("Done. PASS=3 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=3"),
        "{stdout}"
    );
    assert!(weir.path().join("models/jaffle.duckdb").is_file());
    let stdout = weir.ok(&["models", "ls", "--select", "resource_type:seed"]);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "jaffle_shop.raw_customers",
            "jaffle_shop.raw_orders",
            "jaffle_shop.raw_payments"
        ]
    );
}

/// jaffle_shop with its seeds loaded and models built.
fn built_jaffle(tmp: &Path) -> (PathBuf, PathBuf) {
    let (project, profiles) = jaffle(tmp);
    for command in ["seed", "run"] {
        let (code, stdout, stderr) = models(&project, &profiles, &[command]);
        assert_eq!(code, 0, "{command}:\n{stdout}{stderr}");
    }
    (project, profiles)
}

#[test]
fn models_show_previews_a_model_and_inline_sql_as_dbt_prints_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, profiles) = built_jaffle(tmp.path());

    // dbt-core 1.11's output for the same project: agate's table, 6 columns and an ellipsis.
    let (code, stdout, stderr) = models(&project, &profiles, &["show", "-s", "customers"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let preview: Vec<&str> = stdout
        .lines()
        .skip_while(|l| *l != "Previewing node 'customers':")
        .collect();
    assert_eq!(
        preview[..4],
        [
            "Previewing node 'customers':",
            "| customer_id | first_name | last_name | first_order | most_recent_order | number_of_orders | ... |",
            "| ----------- | ---------- | --------- | ----------- | ----------------- | ---------------- | --- |",
            "|           1 | Michael    | P.        |  2018-01-01 |        2018-02-10 |                2 | ... |",
        ],
        "{stdout}"
    );
    assert_eq!(
        preview.iter().filter(|l| l.starts_with("| ")).count(),
        2 + 5,
        "five rows by default:\n{stdout}"
    );

    let (code, stdout, stderr) = models(
        &project,
        &profiles,
        &[
            "show",
            "--inline",
            "select * from {{ ref('stg_orders') }}",
            "--limit",
            "3",
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let preview: Vec<&str> = stdout
        .lines()
        .skip_while(|l| *l != "Previewing inline node:")
        .collect();
    assert_eq!(
        preview,
        [
            "Previewing inline node:",
            "| order_id | customer_id | order_date | status    |",
            "| -------- | ----------- | ---------- | --------- |",
            "|        1 |           1 | 2018-01-01 | returned  |",
            "|        2 |           3 | 2018-01-02 | completed |",
            "|        3 |          94 | 2018-01-04 | completed |",
        ],
        "{stdout}"
    );

    let (code, stdout, stderr) = models(
        &project,
        &profiles,
        &[
            "show",
            "-s",
            "customers",
            "--limit",
            "2",
            "--output",
            "json",
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let json_text: String = stdout
        .lines()
        .skip_while(|l| *l != "{")
        .collect::<Vec<_>>()
        .join("\n");
    let shown: Value =
        serde_json::from_str(&json_text).unwrap_or_else(|e| panic!("{e}:\n{stdout}"));
    assert_eq!(shown["node"], "customers");
    let rows = shown["show"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["customer_id"], 1);
    assert_eq!(rows[0]["first_name"], "Michael");

    // A query that fails exits 1 naming the node; asking for nothing is a usage error (2).
    let (code, stdout, stderr) = models(
        &project,
        &profiles,
        &[
            "show",
            "--inline",
            "select no_such_column from {{ ref('stg_orders') }}",
        ],
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("Database Error in sql_operation inline_query")
            && stderr.contains("no_such_column"),
        "{stderr}"
    );
    let (code, _, stderr) = models(&project, &profiles, &["show", "-s", "no_such_model"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("error: --select no_such_model matches no model")
            && stderr.contains("hint: `weir models ls --select no_such_model`"),
        "{stderr}"
    );
    let (code, _, stderr) = models(&project, &profiles, &["show"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("error: either --select or --inline must be passed to show"),
        "{stderr}"
    );
}

/// `GET path` on 127.0.0.1:port: (status code, body).
fn http_get(port: u16, path: &str) -> (u16, String) {
    crate::support::http(&format!("http://127.0.0.1:{port}"), "GET", path, None, None)
}

#[test]
fn models_docs_generate_writes_a_valid_catalog_and_a_site_that_docs_serve_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, profiles) = built_jaffle(tmp.path());
    let (code, stdout, stderr) = models(&project, &profiles, &["docs", "generate"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("Building catalog"), "{stdout}");
    let target = project.join("target");
    assert!(
        stdout.contains(&format!(
            "Catalog written to {}",
            target.join("catalog.json").display()
        )),
        "{stdout}"
    );
    validate("catalog-v1.json", &target.join("catalog.json"));
    validate("manifest-v12.json", &target.join("manifest.json"));
    let catalog: Value =
        serde_json::from_str(&std::fs::read_to_string(target.join("catalog.json")).unwrap())
            .unwrap();
    let nodes = catalog["nodes"].as_object().unwrap();
    assert_eq!(nodes.len(), 8, "5 models and 3 seeds: {:?}", nodes.keys());
    let customers = &catalog["nodes"]["model.jaffle_shop.customers"];
    assert_eq!(customers["metadata"]["type"], "BASE TABLE");
    assert_eq!(
        catalog["nodes"]["model.jaffle_shop.stg_orders"]["metadata"]["type"],
        "VIEW"
    );
    assert_eq!(
        customers["columns"]["customer_id"],
        serde_json::json!({"type": "INTEGER", "index": 1, "name": "customer_id", "comment": null})
    );
    assert_eq!(customers["columns"]["customer_lifetime_value"]["index"], 7);

    // The site: every model with its columns, their descriptions and tests, and the lineage.
    let html = std::fs::read_to_string(target.join("index.html")).unwrap();
    for needle in [
        "<section class=\"node\" id=\"model.jaffle_shop.customers\">",
        "This is a unique identifier for a customer",
        "<td>INTEGER</td>",
        "<span class=\"test\" title=\"test.jaffle_shop.unique_customers_customer_id",
        "<svg class=\"lineage\"",
        "data-from=\"model.jaffle_shop.stg_orders\" data-to=\"model.jaffle_shop.orders\"",
        // `{{ doc('orders_status') }}` is replaced by its docs block.
        "Orders can be one of the following statuses",
    ] {
        assert!(html.contains(needle), "index.html lacks {needle:?}");
    }
    // dbt_project.yml's `+docs: {node_color: gold}` colours the model's box.
    let customers_box = html
        .split("<title>model.jaffle_shop.customers</title>")
        .nth(1)
        .and_then(|rest| rest.split("/>").next())
        .unwrap_or_default();
    assert!(customers_box.contains("fill:gold"), "{customers_box}");
    assert!(
        !html.contains("src=\"http") && !html.contains("<link"),
        "the site loads nothing from the network"
    );

    // `docs serve --port 0` says which port it took; poll until it accepts connections.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["models", "docs", "serve", "--port", "0", "--project-dir"])
        .arg(&project)
        .arg("--profiles-dir")
        .arg(&profiles)
        .env("NO_COLOR", "1")
        .env_remove("WEIR_HOME")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(std::time::Duration::from_secs(60));
    let port: u16 = match first {
        Ok(line) => line
            .strip_prefix("Serving docs at ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line: {line}")),
        Err(e) => {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "docs serve printed no port ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    let (status, body) = http_get(port, "/");
    let (catalog_status, catalog_body) = http_get(port, "/catalog.json");
    let (missing, _) = http_get(port, "/../manifest.json");
    let (nothing, _) = http_get(port, "/no-such-file.html");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
    assert!(body.contains("<svg class=\"lineage\""), "{body}");
    assert_eq!(catalog_status, 200);
    assert!(catalog_body.contains("model.jaffle_shop.customers"));
    assert_eq!(missing, 404, "no path out of target/");
    assert_eq!(nothing, 404);
}

#[test]
fn models_docs_serve_without_a_generated_site_says_what_to_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, profiles) = jaffle(tmp.path());
    let (code, _, stderr) = models(&project, &profiles, &["docs", "serve", "--port", "0"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("index.html is missing"), "{stderr}");
    assert!(
        stderr.contains("hint: run `weir models docs generate` first"),
        "{stderr}"
    );
}

#[test]
fn models_source_freshness_checks_loaded_at_against_warn_and_error_after() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, profiles) = jaffle(tmp.path());
    let events = project.join("models/events");
    std::fs::create_dir_all(&events).unwrap();
    for (name, age) in [
        ("fresh_events", "interval 1 minute"),
        ("late_events", "interval 2 hour"),
        ("stale_events", "interval 3 day"),
    ] {
        std::fs::write(
            events.join(format!("{name}.sql")),
            format!("select 1 as id, current_timestamp - {age} as loaded_at"),
        )
        .unwrap();
    }
    std::fs::write(
        events.join("sources.yml"),
        "version: 2\nsources:\n  - name: raw\n    schema: main\n    loaded_at_field: loaded_at\n    freshness:\n      warn_after: {count: 1, period: hour}\n      error_after: {count: 1, period: day}\n    tables:\n      - name: fresh_events\n      - name: late_events\n      - name: stale_events\n        freshness:\n          warn_after: {count: 1, period: hour}\n          error_after: {count: 2, period: day}\n          filter: id > 0\n      - name: unchecked\n        identifier: stale_events\n        freshness: null\n",
    )
    .unwrap();
    let (code, stdout, stderr) = models(&project, &profiles, &["run", "-s", "path:models/events"]);
    assert_eq!(code, 0, "{stdout}{stderr}");

    let (code, stdout, stderr) = models(&project, &profiles, &["source", "freshness"]);
    assert_eq!(
        code, 1,
        "a source past error_after fails the command:\n{stdout}{stderr}"
    );
    for line in [
        "1 of 3 START freshness of raw.fresh_events",
        "1 of 3 PASS freshness of raw.fresh_events",
        "2 of 3 WARN freshness of raw.late_events",
        "3 of 3 ERROR STALE freshness of raw.stale_events",
        "Finished running 3 sources in",
        "Failure in source stale_events (models/events/sources.yml)",
        "Done.",
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("unchecked"), "{stdout}");
    assert!(stdout.contains("[PASS in "), "{stdout}");
    assert!(stdout.contains("[ERROR STALE in "), "{stdout}");
    let sources = project.join("target/sources.json");
    validate("sources-v3.json", &sources);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&sources).unwrap()).unwrap();
    let results = doc["results"].as_array().unwrap();
    let status: Vec<(&str, &str)> = results
        .iter()
        .map(|r| {
            (
                r["unique_id"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        status,
        [
            ("source.jaffle_shop.raw.fresh_events", "pass"),
            ("source.jaffle_shop.raw.late_events", "warn"),
            ("source.jaffle_shop.raw.stale_events", "error"),
        ]
    );
    let stale = &results[2];
    assert_eq!(stale["criteria"]["filter"], "id > 0");
    assert_eq!(stale["criteria"]["error_after"]["count"], 2);
    let age = stale["max_loaded_at_time_ago_in_s"].as_f64().unwrap();
    assert!(
        (3.0 * 86400.0..3.0 * 86400.0 + 600.0).contains(&age),
        "{age}"
    );

    // Selecting only fresh sources passes; a warning alone does not fail.
    let (code, stdout, _) = models(
        &project,
        &profiles,
        &[
            "source",
            "freshness",
            "-s",
            "source:raw.fresh_events",
            "source:raw.late_events",
        ],
    );
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("Finished running 2 sources"), "{stdout}");
}

#[test]
fn models_retry_runs_again_what_errored_or_was_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, profiles) = jaffle(tmp.path());
    let (code, _, stderr) = models(&project, &profiles, &["retry"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("error: Could not find previous run in 'target' target directory"),
        "{stderr}"
    );

    let good = std::fs::read_to_string(project.join("models/staging/stg_orders.sql")).unwrap();
    std::fs::write(
        project.join("models/staging/stg_orders.sql"),
        "select id as order_id, no_such_column from {{ ref('raw_orders') }}",
    )
    .unwrap();
    let (code, stdout, _) = models(&project, &profiles, &["build"]);
    assert_eq!(code, 1, "{stdout}");
    let done = |stdout: &str| {
        stdout
            .lines()
            .find_map(|l| l.split_once("Done. ").map(|(_, d)| d.to_string()))
            .unwrap_or_default()
    };
    let failed = done(&stdout);
    assert!(
        failed.starts_with("PASS=") && !failed.contains("ERROR=0"),
        "{stdout}"
    );

    // Fixed, `retry` runs `build` again over stg_orders and what was skipped after it only.
    std::fs::write(project.join("models/staging/stg_orders.sql"), good).unwrap();
    let (code, stdout, stderr) = models(&project, &profiles, &["retry"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("OK created sql view model main.stg_orders"),
        "{stdout}"
    );
    assert!(
        stdout.contains("OK created sql table model main.customers"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("raw_orders"),
        "seeds that passed are not retried:\n{stdout}"
    );
    assert!(!stdout.contains("stg_customers "), "{stdout}");
    assert!(done(&stdout).contains("ERROR=0 SKIP=0"), "{stdout}");
    validate(
        "run-results-v6.json",
        &project.join("target/run_results.json"),
    );

    // Nothing failed last time: nothing to do.
    let (code, stdout, _) = models(&project, &profiles, &["retry"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("Nothing to do"), "{stdout}");

    // --state: `state:modified` against that run's manifest.
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::copy(
        project.join("target/manifest.json"),
        state.join("manifest.json"),
    )
    .unwrap();
    std::fs::write(
        project.join("models/customers.sql"),
        std::fs::read_to_string(project.join("models/customers.sql")).unwrap() + "\n-- changed\n",
    )
    .unwrap();
    let state_arg = state.display().to_string();
    let (code, stdout, stderr) = models(
        &project,
        &profiles,
        &["ls", "-s", "state:modified", "--state", &state_arg],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    // The changed model and, by eager indirect selection, its tests.
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "jaffle_shop.customers",
            "jaffle_shop.not_null_customers_customer_id",
            "jaffle_shop.relationships_orders_customer_id__customer_id__ref_customers_",
            "jaffle_shop.unique_customers_customer_id"
        ]
    );
}

#[test]
fn models_run_defer_resolves_refs_to_unbuilt_nodes_to_the_state_relations() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, profiles) = built_jaffle(tmp.path());
    let state = tmp.path().join("prod-target");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::copy(
        project.join("target/manifest.json"),
        state.join("manifest.json"),
    )
    .unwrap();
    // A `ci` target: the same warehouse, an empty schema.
    std::fs::write(
        profiles.join("profiles.yml"),
        format!(
            "jaffle_shop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: '{db}'\n      threads: 4\n    ci:\n      type: duckdb\n      path: '{db}'\n      schema: ci\n      threads: 4\n",
            db = tmp.path().join("jaffle.duckdb").display()
        ),
    )
    .unwrap();
    let (code, stdout, _) = models(&project, &profiles, &["run", "-s", "customers", "-t", "ci"]);
    assert_eq!(
        code, 1,
        "without --defer the staging views are missing in ci:\n{stdout}"
    );

    let state_arg = state.display().to_string();
    let (code, stdout, stderr) = models(
        &project,
        &profiles,
        &[
            "run",
            "-s",
            "customers",
            "-t",
            "ci",
            "--defer",
            "--state",
            &state_arg,
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("OK created sql table model ci.customers"),
        "{stdout}"
    );
    let compiled =
        std::fs::read_to_string(project.join("target/compiled/jaffle_shop/models/customers.sql"))
            .unwrap();
    assert!(
        compiled.contains("\"main\".\"stg_customers\""),
        "refs resolve to the state's relations:\n{compiled}"
    );

    // --defer without --state is a usage error.
    let (code, _, stderr) = models(&project, &profiles, &["run", "--defer"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--state"), "{stderr}");
}

#[test]
fn models_build_empty_reads_no_rows_from_refs_and_sources() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, profiles) = jaffle(tmp.path());
    let (code, stdout, stderr) = models(
        &project,
        &profiles,
        &["build", "--empty", "-s", "+stg_orders"],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    // As dbt: seeds load their rows, models select from `limit 0` subqueries, tests pass.
    assert!(
        stdout.contains("Done. PASS=5 WARN=0 ERROR=0 SKIP=0"),
        "{stdout}"
    );
    assert!(stdout.contains("INSERT 99"), "{stdout}");
    let run_sql = std::fs::read_to_string(
        project.join("target/run/jaffle_shop/models/staging/stg_orders.sql"),
    )
    .unwrap();
    assert!(
        run_sql.contains(
            "select * from (select * from \"jaffle\".\"main\".\"raw_orders\" where false limit 0)"
        ),
        "{run_sql}"
    );
    let (code, stdout, stderr) = models(
        &project,
        &profiles,
        &[
            "show",
            "--inline",
            "select count(*) as n from {{ ref('stg_orders') }}",
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.ends_with("| n |\n| - |\n| 0 |\n"), "{stdout}");
}
