//! Small projects run more than once: a model that starts failing, incremental models over two
//! data phases, snapshots across a change.

use super::common::{Env, done_line};
use serde_json::json;
use weir_models::run::Command;

const PROJECT: &str = "name: shop\nprofile: shop\nconfig-version: 2\n";

fn shop() -> Env {
    let env = Env::new("shop", "shop");
    env.write(&[("dbt_project.yml", PROJECT)]);
    env
}

#[test]
fn a_failing_model_keeps_its_previous_table_and_skips_downstream() {
    let env = shop();
    env.write(&[
        (
            "models/base.sql",
            "{{ config(materialized='table') }}\nselect 1 as id, 'first' as label",
        ),
        (
            "models/child.sql",
            "{{ config(materialized='table') }}\nselect * from {{ ref('base') }}",
        ),
    ]);
    let (report, out) = env.run_with(Command::Run, false, &[]);
    assert!(report.success(), "{out}");
    assert_eq!(
        done_line(&out),
        "Done. PASS=2 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=2"
    );

    env.write(&[(
        "models/base.sql",
        "{{ config(materialized='table') }}\nselect id, label from no_such_table",
    )]);
    let (report, out) = env.run_with(Command::Run, false, &[]);
    assert!(!report.success());
    assert!(
        out.contains("ERROR creating sql table model main.base"),
        "{out}"
    );
    assert!(out.contains("SKIP relation main.child"), "{out}");
    assert_eq!(
        done_line(&out),
        "Done. PASS=0 WARN=0 ERROR=1 SKIP=1 NO-OP=0 TOTAL=2",
        "{out}"
    );
    // The error names the model, its file and the compiled code, and quotes DuckDB.
    assert!(
        out.contains("Database Error in model base (models/base.sql)"),
        "{out}"
    );
    assert!(out.contains("no_such_table"), "{out}");
    assert!(
        out.contains("compiled code at target/run/shop/models/base.sql"),
        "{out}"
    );
    assert!(
        env.project
            .join("target/run/shop/models/base.sql")
            .is_file()
    );
    // The previous build of base is still there.
    assert_eq!(
        env.rows("select id, label from base"),
        vec![vec![json!(1), json!("first")]]
    );
}

const EVENTS_1: &str =
    "id,kind,amount,updated\n1,a,10,2024-01-01\n2,b,20,2024-01-01\n3,c,30,2024-01-02\n";
const EVENTS_2: &str = "id,kind,amount,updated\n1,a,10,2024-01-01\n2,b,20,2024-01-01\n3,c,33,2024-01-03\n4,d,40,2024-01-03\n";

fn incremental_model(key: &str, strategy: &str) -> String {
    format!(
        "{{{{ config(materialized='incremental', unique_key={key}, incremental_strategy='{strategy}') }}}}\n\
         select id, kind, amount, updated from {{{{ ref('events') }}}}\n\
         {{% if is_incremental() %}}where updated > (select max(updated) from {{{{ this }}}}){{% endif %}}\n"
    )
}

#[test]
fn incremental_models_apply_a_second_data_phase() {
    let env = shop();
    env.write(&[
        ("seeds/events.csv", EVENTS_1),
        ("models/by_key.sql", &incremental_model("'id'", "delete+insert")),
        ("models/by_keys.sql", &incremental_model("['id', 'kind']", "merge")),
        (
            "models/appended.sql",
            "{{ config(materialized='incremental') }}\nselect id, amount from {{ ref('events') }}\n{% if is_incremental() %}where updated > (select max(updated) from {{ ref('by_key') }} where id < 3){% endif %}\n",
        ),
    ]);
    let (report, out) = env.build();
    assert!(report.success(), "{out}");
    assert_eq!(
        env.rows("select count(*) from by_key"),
        vec![vec![json!(3)]]
    );

    std::fs::write(env.project.join("seeds/events.csv"), EVENTS_2).unwrap();
    let (report, out) = env.build();
    assert!(report.success(), "{out}");
    for table in ["by_key", "by_keys"] {
        assert_eq!(
            env.rows(&format!("select id, amount from {table} order by id")),
            vec![
                vec![json!(1), json!(10)],
                vec![json!(2), json!(20)],
                vec![json!(3), json!(33)],
                vec![json!(4), json!(40)],
            ],
            "{table}"
        );
    }
    // append adds the rows newer than by_key's rows 1 and 2 (3 and 4), keeping the old row 3.
    assert_eq!(
        env.rows("select count(*) from appended"),
        vec![vec![json!(5)]]
    );

    // --full-refresh rebuilds from the current data.
    let (report, out) = env.run_with(Command::Run, true, &["appended"]);
    assert!(report.success(), "{out}");
    assert_eq!(
        env.rows("select count(*) from appended"),
        vec![vec![json!(4)]]
    );
}

#[test]
fn snapshots_record_a_change_with_both_strategies() {
    let env = shop();
    env.write(&[
        ("seeds/people.csv", "id,city,updated\n1,Oslo,2024-01-01\n2,Rome,2024-01-01\n"),
        (
            "snapshots/people_ts.sql",
            "{% snapshot people_ts %}\n{{ config(target_schema='snapshots', unique_key='id', strategy='timestamp', updated_at='updated') }}\nselect * from {{ ref('people') }}\n{% endsnapshot %}\n",
        ),
        (
            "snapshots/people_gone.sql",
            "{% snapshot people_gone %}\n{{ config(target_schema='snapshots', unique_key='id', strategy='timestamp', updated_at='updated', hard_deletes='invalidate') }}\nselect * from {{ ref('people') }}\n{% endsnapshot %}\n",
        ),
        (
            "snapshots/people_check.sql",
            "{% snapshot people_check %}\n{{ config(target_schema='snapshots', unique_key='id', strategy='check', check_cols=['city']) }}\nselect id, city from {{ ref('people') }}\n{% endsnapshot %}\n",
        ),
    ]);
    let (report, out) = env.build();
    assert!(report.success(), "{out}");
    assert!(
        out.contains("OK snapshotted snapshot snapshots.people_ts"),
        "{out}"
    );
    std::fs::write(
        env.project.join("seeds/people.csv"),
        "id,city,updated\n1,Oslo,2024-01-01\n2,Paris,2024-02-01\n3,Lima,2024-02-01\n",
    )
    .unwrap();
    let (report, out) = env.build();
    assert!(report.success(), "{out}");
    assert_eq!(
        env.rows(
            "select id, city, cast(dbt_valid_from as varchar), cast(dbt_valid_to as varchar), dbt_scd_id is not null \
             from snapshots.people_ts order by id, dbt_valid_from"
        ),
        vec![
            vec![json!(1), json!("Oslo"), json!("2024-01-01"), json!(null), json!(true)],
            vec![json!(2), json!("Rome"), json!("2024-01-01"), json!("2024-02-01"), json!(true)],
            vec![json!(2), json!("Paris"), json!("2024-02-01"), json!(null), json!(true)],
            vec![json!(3), json!("Lima"), json!("2024-02-01"), json!(null), json!(true)],
        ]
    );
    assert_eq!(
        env.rows(
            "select id, city, dbt_valid_to is null from snapshots.people_check order by id, dbt_valid_from"
        ),
        vec![
            vec![json!(1), json!("Oslo"), json!(true)],
            vec![json!(2), json!("Rome"), json!(false)],
            vec![json!(2), json!("Paris"), json!(true)],
            vec![json!(3), json!("Lima"), json!(true)],
        ]
    );
    // A key that leaves the source is closed where hard_deletes is 'invalidate', kept open
    // elsewhere.
    std::fs::write(
        env.project.join("seeds/people.csv"),
        "id,city,updated\n2,Paris,2024-02-01\n3,Lima,2024-02-01\n",
    )
    .unwrap();
    let (report, out) = env.build();
    assert!(report.success(), "{out}");
    assert_eq!(
        env.rows("select id, dbt_valid_to is null from snapshots.people_gone where id = 1"),
        vec![vec![json!(1), json!(false)]]
    );
    assert_eq!(
        env.rows("select id, dbt_valid_to is null from snapshots.people_ts where id = 1"),
        vec![vec![json!(1), json!(true)]]
    );
}

#[test]
fn hard_deletes_new_record_writes_a_deletion_row_and_a_returning_key_is_a_new_version() {
    let env = shop();
    let write_people =
        |csv: &str| std::fs::write(env.project.join("seeds/people.csv"), csv).unwrap();
    env.write(&[
        ("seeds/people.csv", "id,city\n1,Oslo\n2,Rome\n"),
        (
            "snapshots/people_rec.sql",
            "{% snapshot people_rec %}\n{{ config(target_schema='snapshots', unique_key='id', strategy='check', check_cols=['city'], hard_deletes='new_record') }}\nselect * from {{ ref('people') }}\n{% endsnapshot %}\n",
        ),
    ]);
    let (report, out) = env.build();
    assert!(report.success(), "{out}");
    // 1 leaves; a column appears (the seed is rebuilt: an existing seed table keeps its
    // columns, as in dbt).
    write_people("id,city,zip\n2,Rome,100\n");
    let (report, out) = env.run_with(Command::Build, true, &[]);
    assert!(report.success(), "{out}");
    let current = "select id, city, zip, dbt_is_deleted from snapshots.people_rec where dbt_valid_to is null order by id";
    assert_eq!(
        env.rows(current),
        vec![
            vec![json!(1), json!("Oslo"), json!(null), json!("True")],
            vec![json!(2), json!("Rome"), json!(null), json!("False")],
        ]
    );
    assert_eq!(
        env.rows("select count(*) from snapshots.people_rec where id = 1"),
        vec![vec![json!(2)]]
    );
    // A run with 1 still gone writes nothing more; 1 coming back is a new version.
    let (report, out) = env.build();
    assert!(report.success(), "{out}");
    assert_eq!(
        env.rows("select count(*) from snapshots.people_rec where id = 1"),
        vec![vec![json!(2)]]
    );
    write_people("id,city,zip\n1,Oslo,7\n2,Rome,100\n");
    let (report, out) = env.build();
    assert!(report.success(), "{out}");
    assert_eq!(
        env.rows(current),
        vec![
            vec![json!(1), json!("Oslo"), json!(7), json!("False")],
            vec![json!(2), json!("Rome"), json!(null), json!("False")],
        ]
    );
}

#[test]
fn a_project_generate_schema_name_and_vars_decide_where_and_what_is_built() {
    let env = shop();
    env.write(&[
        (
            "dbt_project.yml",
            "name: shop\nprofile: shop\nconfig-version: 2\nvars:\n  top: 2\n",
        ),
        (
            "macros/generate_schema_name.sql",
            "{% macro generate_schema_name(custom_schema_name, node) -%}\n{%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}\n{%- endmacro %}\n",
        ),
        (
            "models/numbers.sql",
            "{{ config(materialized='table', schema='reporting') }}\nselect * from range({{ var('top') }}) t(n)",
        ),
        ("models/plain.sql", "select count(*) as c from {{ ref('numbers') }}"),
    ]);
    let (report, out) = env.build();
    assert!(report.success(), "{out}");
    // The project's macro replaces dbt's `<target>_<custom>` naming.
    assert!(
        out.contains("OK created sql table model reporting.numbers"),
        "{out}"
    );
    assert!(
        out.contains("OK created sql view model main.plain"),
        "{out}"
    );
    assert_eq!(env.rows("select c from main.plain"), vec![vec![json!(2)]]);
}

#[test]
fn on_schema_change_appends_new_columns_or_fails() {
    let env = shop();
    let model = |cols: &str, mode: &str| {
        format!(
            "{{{{ config(materialized='incremental', on_schema_change='{mode}') }}}}\nselect {cols} from range(2) t(id)\n"
        )
    };
    env.write(&[
        ("models/grows.sql", &model("id", "append_new_columns")),
        ("models/strict.sql", &model("id", "fail")),
    ]);
    let (report, out) = env.run_with(Command::Run, false, &[]);
    assert!(report.success(), "{out}");
    env.write(&[
        (
            "models/grows.sql",
            &model("id, id * 10 as tens", "append_new_columns"),
        ),
        ("models/strict.sql", &model("id, id * 10 as tens", "fail")),
    ]);
    let (report, out) = env.run_with(Command::Run, false, &[]);
    assert!(!report.success());
    assert!(
        out.contains("OK created sql incremental model main.grows"),
        "{out}"
    );
    assert!(
        out.contains("ERROR creating sql incremental model main.strict"),
        "{out}"
    );
    assert!(
        out.contains("schemas of this incremental model are out of sync (new columns: [tens]"),
        "{out}"
    );
    assert_eq!(
        env.rows("select id, tens from grows order by id, tens nulls first"),
        vec![
            vec![json!(0), json!(null)],
            vec![json!(0), json!(0)],
            vec![json!(1), json!(null)],
            vec![json!(1), json!(10)],
        ]
    );
}
