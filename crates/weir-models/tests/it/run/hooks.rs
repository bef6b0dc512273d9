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
