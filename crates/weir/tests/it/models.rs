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
        stdout.contains("Done. PASS=28 WARN=0 ERROR=0 SKIP=0 TOTAL=28"),
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
        stdout.contains("Done. PASS=1 WARN=0 ERROR=0 SKIP=0 TOTAL=1"),
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
        stdout.contains("Done. PASS=3 WARN=0 ERROR=0 SKIP=0 TOTAL=3"),
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
