//! Unit tests and seeds' inferred types, as dbt runs them.

use super::common::{Env, done_line};
use serde_json::json;
use weir_models::run::Command;

const PROJECT: &str = "name: units\nprofile: units\nconfig-version: 2\n";

const PEOPLE_CSV: &str = "id,name,age,score,joined,active,note\n\
1,Ada,36,1.5,2024-01-01,true,\n\
2,Bo,17,2.0,2024-02-10,false,null\n\
3,Cy,,3,2024-03-15,,x\n";

const ADULTS_SQL: &str = "{{ config(materialized='table') }}\n\
with people as (select * from {{ ref('people') }}),\n\
scored as (select * from {{ ref('scored') }})\n\
select people.id, people.name, scored.bonus\n\
from people join scored on scored.id = people.id\n\
where people.age >= 18\n";

const SCORED_SQL: &str = "{{ config(materialized='ephemeral') }}\n\
select id, score * 10 as bonus from {{ ref('people') }}\n";

fn project(expect_bonus: i64) -> Env {
    let env = Env::new("units", "units");
    let schema = format!(
        r#"version: 2
unit_tests:
  - name: only_adults
    model: adults
    given:
      - input: ref('people')
        rows:
          - {{id: 1, name: Ann, age: 40}}
          - {{id: 2, name: Ben, age: 12}}
      - input: ref('scored')
        format: sql
        rows: |
          select 1 as id, 7 as bonus union all select 2 as id, 9 as bonus
    expect:
      rows:
        - {{id: 1, name: Ann, bonus: {expect_bonus}}}
  - name: csv_input
    model: adults
    given:
      - input: ref('people')
        format: csv
        rows: |
          id,name,age
          5,Eve,30
      - input: ref('scored')
        format: sql
        rows: "select 5 as id, 1 as bonus"
    expect:
      format: csv
      rows: |
        id,name,bonus
        5,Eve,1
"#
    );
    env.write(&[
        ("dbt_project.yml", PROJECT),
        ("seeds/people.csv", PEOPLE_CSV),
        ("models/scored.sql", SCORED_SQL),
        ("models/adults.sql", ADULTS_SQL),
        ("models/schema.yml", &schema),
    ]);
    env
}

#[test]
fn seeds_get_the_column_types_dbt_infers() {
    let env = project(7);
    let (report, out) = env.run_with(Command::Seed, false, &[]);
    assert!(report.success(), "{out}");
    assert_eq!(
        env.rows("select column_name, data_type from information_schema.columns where table_name = 'people' order by ordinal_position"),
        vec![
            vec![json!("id"), json!("INTEGER")],
            vec![json!("name"), json!("VARCHAR")],
            // An empty cell is NULL and does not change the type.
            vec![json!("age"), json!("INTEGER")],
            // 2.0 has no significant decimals, 1.5 has: a double.
            vec![json!("score"), json!("DOUBLE")],
            vec![json!("joined"), json!("DATE")],
            vec![json!("active"), json!("BOOLEAN")],
            vec![json!("note"), json!("VARCHAR")],
        ]
    );
    // DuckDB's COPY reads the file: an empty cell is NULL, `null` text stays text.
    assert_eq!(
        env.rows("select id, age, active, note from main.people order by id"),
        vec![
            vec![json!(1), json!(36), json!(true), json!(null)],
            vec![json!(2), json!(17), json!(false), json!("null")],
            vec![json!(3), json!(null), json!(null), json!("x")],
        ]
    );
}

#[test]
fn unit_tests_pass_in_build_before_their_model_is_built() {
    let env = project(7);
    let (report, out) = env.build();
    assert!(report.success(), "{out}");
    assert!(out.contains("PASS adults::only_adults "), "{out}");
    assert!(out.contains("PASS adults::csv_input "), "{out}");
    let unit = out.find("PASS adults::only_adults").unwrap();
    let model = out
        .find("OK created sql table model main.adults")
        .expect(&out);
    assert!(unit < model, "a unit test runs before its model:\n{out}");
    // A seed, a model, two unit tests.
    assert_eq!(
        done_line(&out),
        "Done. PASS=4 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=4",
        "{out}"
    );
    let run_results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.project.join("target/run_results.json")).unwrap(),
    )
    .unwrap();
    assert!(
        run_results["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(
                |r| r["unique_id"] == "unit_test.units.adults.only_adults" && r["status"] == "pass"
            ),
        "{run_results}"
    );
}

#[test]
fn a_failing_unit_test_shows_the_difference_and_skips_its_model() {
    let env = project(8);
    let (report, out) = env.build();
    assert!(!report.success(), "{out}");
    assert!(out.contains("FAIL 1 adults::only_adults "), "{out}");
    assert!(out.contains("SKIP relation main.adults"), "{out}");
    assert!(
        out.contains("Failure in unit_test only_adults (models/schema.yml)"),
        "{out}"
    );
    assert!(out.contains("actual differs from expected:"), "{out}");
    assert!(out.contains("@@,id,name,bonus"), "{out}");
    assert!(out.contains("→ ,1 ,Ann ,8→7"), "{out}");
    assert_eq!(
        done_line(&out),
        "Done. PASS=2 WARN=0 ERROR=1 SKIP=1 NO-OP=0 TOTAL=4",
        "{out}"
    );
}

const CONTRACT_YML: &str = r#"version: 2
models:
  - name: dim
    config:
      contract:
        enforced: true
    columns:
      - name: id
        data_type: integer
        constraints:
          - type: not_null
      - name: label
        data_type: varchar
"#;

#[test]
fn an_enforced_contract_fails_with_dbts_table_and_types_the_table() {
    let env = Env::new("units", "units");
    env.write(&[
        ("dbt_project.yml", PROJECT),
        ("models/schema.yml", CONTRACT_YML),
        (
            "models/dim.sql",
            "{{ config(materialized='table') }}\nselect cast(1 as bigint) as id, 'a' as label, 2 as extra",
        ),
    ]);
    let (report, out) = env.run_with(Command::Run, false, &[]);
    assert!(!report.success(), "{out}");
    assert!(
        out.contains("Compilation Error in model dim (models/dim.sql)"),
        "{out}"
    );
    assert!(
        out.contains("This model has an enforced contract that failed."),
        "{out}"
    );
    assert!(
        out.contains("| column_name | definition_type | contract_type | mismatch_reason     |"),
        "{out}"
    );
    assert!(
        out.contains("| id          | BIGINT          | INTEGER       | data type mismatch  |"),
        "{out}"
    );
    assert!(
        out.contains("| extra       | INTEGER         |               | missing in contract |"),
        "{out}"
    );

    env.write(&[(
        "models/dim.sql",
        "{{ config(materialized='table') }}\nselect 1 as id, cast('a' as varchar(3)) as label",
    )]);
    let (report, out) = env.run_with(Command::Run, false, &[]);
    assert!(report.success(), "{out}");
    assert_eq!(
        env.rows("select column_name, data_type, is_nullable from information_schema.columns where table_name = 'dim' order by ordinal_position"),
        vec![
            vec![json!("id"), json!("INTEGER"), json!("NO")],
            vec![json!("label"), json!("VARCHAR"), json!("YES")],
        ]
    );
}

const EVENTS_SQL: &str = "{{ config(materialized='incremental', unique_key='id') }}\n\
select id, amount * {{ var('factor', 1) }} as amount from {{ ref('raw_events') }}\n\
{% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}\n";

const EVENTS_YML: &str = r#"version: 2
unit_tests:
  - name: only_new_rows
    model: events
    overrides:
      macros:
        is_incremental: true
      vars:
        factor: 10
    given:
      - input: ref('raw_events')
        rows:
          - {id: 1, amount: 1}
          - {id: 2, amount: 2}
          - {id: 3, amount: 3}
      - input: this
        rows:
          - {id: 1, amount: 10}
    expect:
      rows:
        - {id: 2, amount: 20}
        - {id: 3, amount: 30}
"#;

#[test]
fn a_unit_test_can_give_this_and_override_is_incremental_and_vars() {
    let env = Env::new("units", "units");
    env.write(&[
        ("dbt_project.yml", PROJECT),
        ("seeds/raw_events.csv", "id,amount\n1,1\n"),
        ("models/events.sql", EVENTS_SQL),
        ("models/schema.yml", EVENTS_YML),
    ]);
    let (report, out) = env.build();
    assert!(report.success(), "{out}");
    assert!(out.contains("PASS events::only_new_rows "), "{out}");
}

#[test]
fn seed_types_follow_agates_inference() {
    use weir_models::run::seed::infer;
    let cases: &[(&[&str], &str)] = &[
        (&["1", "2", ""], "integer"),
        (&["1", "2.0", "-3"], "integer"),
        (&["1", "2.50"], "float8"),
        (&["1,000", "$5", "7%"], "integer"),
        (&["1e3", "2"], "integer"),
        (&["", "null", "NULL"], "integer"),
        (&["2024-01-01", "2024-1-5"], "date"),
        (&["2024-01-01", "2024-02-30"], "text"),
        (
            &["2024-01-01 10:00:00", "2024-01-02 11:30:00"],
            "timestamp without time zone",
        ),
        (
            &["2024-01-01T10:00:00", "2024-01-02T11:30:00.5Z"],
            "timestamp without time zone",
        ),
        (&["2024-01-01", "2024-01-01 10:00:00"], "text"),
        (&["true", "False", ""], "boolean"),
        (&["true", "yes"], "text"),
        (&["1", "true"], "text"),
        (&["abc", "1"], "text"),
    ];
    for (values, expected) in cases {
        let got = infer(values.iter().map(|v| Some(*v)));
        assert_eq!(got.sql_type(), *expected, "{values:?}");
    }
}
