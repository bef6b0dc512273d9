//! Project hooks as dbt 1.11 runs them: each statement is a result; a failing on-run-start
//! statement skips the rest of the on-run-start hooks, and the nodes still run.

use super::common::{Env, done_line};
use serde_json::json;
use weir_models::run::Command;

const PROJECT: &str = r#"name: hooks
profile: hooks
config-version: 2
on-run-start:
  - "create table if not exists {{ target.schema }}.log (event varchar)"
  - "select * from no_such_table"
  - "insert into {{ target.schema }}.log values ('never')"
on-run-end:
  - "insert into {{ target.schema }}.log values ('end')"
"#;

#[test]
fn a_failing_on_run_start_hook_is_an_error_and_the_nodes_still_run() {
    let env = Env::new("hooks", "hooks");
    env.write(&[
        ("dbt_project.yml", PROJECT),
        ("models/a.sql", "select 1 as id"),
    ]);
    let (report, out) = env.run_with(Command::Run, false, &[]);
    assert!(!report.success(), "{out}");
    assert!(
        out.contains("2 of 3 ERROR hook: hooks.on-run-start.1 "),
        "{out}"
    );
    assert!(
        out.contains("3 of 3 SKIP hook: hooks.on-run-start.2 "),
        "{out}"
    );
    assert!(out.contains("OK created sql view model main.a"), "{out}");
    assert!(
        out.contains("Failure in operation hooks-on-run-start-1 (./dbt_project.yml)"),
        "{out}"
    );
    assert!(out.contains("hooks.on-run-start.1 failed, error:"), "{out}");
    assert!(
        out.contains(
            "compiled code at target/compiled/hooks/./dbt_project.yml/hooks/hooks-on-run-start-1.sql"
        ),
        "{out}"
    );
    assert_eq!(
        done_line(&out),
        "Done. PASS=3 WARN=0 ERROR=1 SKIP=1 NO-OP=0 TOTAL=5",
        "{out}"
    );
    assert_eq!(
        env.rows("select event from main.log"),
        vec![vec![json!("end")]]
    );
}

#[test]
fn a_relation_a_hook_creates_is_seen_by_the_materialization_that_follows() {
    // `a` lists the schema's relations; `b`'s pre-hook then leaves a stale `b__dbt_tmp`
    // table, which building `b` beside itself must find and drop, not trust the listing.
    let env = Env::new("hooks", "hooks");
    env.write(&[
        ("dbt_project.yml", "name: hooks\nprofile: hooks\nconfig-version: 2\n"),
        ("models/a.sql", "select 1 as id"),
        (
            "models/b.sql",
            "{{ config(pre_hook=\"create table {{ target.schema }}.b__dbt_tmp as select 1 as stale\") }}\nselect id from {{ ref('a') }}",
        ),
    ]);
    for _ in 0..2 {
        let (report, out) = env.run_with(Command::Run, false, &[]);
        assert!(report.success(), "{out}");
        assert!(out.contains("OK created sql view model main.b"), "{out}");
    }
    assert_eq!(env.rows("select id from main.b"), vec![vec![json!(1)]]);
}

#[test]
fn a_model_finds_the_relations_other_threads_built_earlier_in_the_same_run() {
    // Eight tables built side by side on 4 threads from an empty database, then a model that
    // asks for each through `adapter.get_relation`, as dbt_utils' union_relations does.
    let env = Env::new("hooks", "hooks");
    let mut files = vec![(
        "dbt_project.yml".to_string(),
        "name: hooks\nprofile: hooks\nconfig-version: 2\nmodels:\n  +materialized: table\n"
            .to_string(),
    )];
    let mut probes = Vec::new();
    for i in 0..8 {
        files.push((format!("models/u{i}.sql"), format!("select {i} as id")));
        probes.push(format!(
            "-- depends_on: {{{{ ref('u{i}') }}}}\nselect '{{{{ adapter.get_relation(database=this.database, schema=this.schema, identifier=\"u{i}\") is not none }}}}' as found"
        ));
    }
    files.push(("models/found.sql".into(), probes.join("\nunion all\n")));
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    env.write(&files);
    let (report, out) = env.run_with(Command::Run, false, &[]);
    assert!(report.success(), "{out}");
    assert_eq!(
        env.rows("select found, count(*) from main.found group by found"),
        vec![vec![json!("True"), json!(8)]],
        "{out}"
    );
}
