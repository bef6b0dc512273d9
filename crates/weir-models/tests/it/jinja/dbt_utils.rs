//! Proof on the real, unmodified dbt_utils 1.4.1 (extracted from the shared fixture at run time).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::Value;
use weir_models::jinja::{Engine, MacroPackage, Table};

use super::{FakeWarehouse, context, squash};

const FIXTURE: &str = "dbt_utils-1.4.1-49b932c.tar.gz";

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures")
        .join(FIXTURE)
}

/// Extracts dbt_utils into a temp dir and returns (dir guard, macros dir).
fn extract_dbt_utils() -> (tempfile::TempDir, PathBuf) {
    let tarball = fixture_path();
    assert!(
        tarball.exists(),
        "missing test fixture {}: the shared fixtures folder (../shared/fixtures beside the clone) must hold {FIXTURE}",
        tarball.display()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let status = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(dir.path())
        .status()
        .expect("run tar");
    assert!(
        status.success(),
        "tar failed to extract {}",
        tarball.display()
    );
    let macros = dir.path().join("macros");
    assert!(macros.is_dir(), "{FIXTURE} has no macros/ folder");
    (dir, macros)
}

fn warehouse(dialect: &str) -> FakeWarehouse {
    FakeWarehouse::new(dialect)
        .with_columns("x", &[("a", "INTEGER"), ("b", "VARCHAR"), ("c", "DATE")])
        .with_columns("a", &[("id", "INTEGER"), ("name", "VARCHAR")])
        .with_columns("b", &[("id", "INTEGER"), ("amount", "DOUBLE")])
        .with_columns("t", &[("size", "VARCHAR"), ("color", "VARCHAR")])
        .answering(
            "group by size",
            Table::new(
                &["value"],
                vec![vec![Value::from("S")], vec![Value::from("M")]],
            ),
        )
        .answering(
            "date_diff('day'",
            Table::new(&["n"], vec![vec![Value::from(4)]]),
        )
        .answering(
            "from sizes_summary",
            Table::new(
                &["size", "n"],
                vec![
                    vec![Value::from("S"), Value::from(3)],
                    vec![Value::from("M"), Value::from(5)],
                ],
            ),
        )
        .answering("select max(n) from empty", Table::new(&["max"], vec![]))
        .answering(
            "::date - ((cast('2024-01-01' as date)))::date",
            Table::new(&["n"], vec![vec![Value::from(4)]]),
        )
}

fn engine(dialect: &str) -> (tempfile::TempDir, Arc<FakeWarehouse>, Engine) {
    let (dir, macros) = extract_dbt_utils();
    let utils = MacroPackage::from_dir("dbt_utils", &macros, "dbt_packages/dbt_utils/macros")
        .expect("read dbt_utils macros");
    let warehouse = Arc::new(warehouse(dialect));
    let engine = Engine::builder("my_project", warehouse.clone())
        .package(utils)
        .package(MacroPackage::new("my_project"))
        .build()
        .unwrap_or_else(|e| panic!("dbt_utils macros load: {e}"));
    (dir, warehouse, engine)
}

fn compile(engine: &Engine, sql: &str) -> String {
    match engine.compile("models/m.sql", sql, context()) {
        Ok(c) => squash(&c.sql),
        Err(e) => panic!("compile failed: {e}\nsource: {sql}"),
    }
}

fn executed(warehouse: &FakeWarehouse) -> Vec<String> {
    warehouse
        .executed
        .lock()
        .unwrap()
        .iter()
        .map(|s| squash(s))
        .collect()
}

#[test]
fn dbt_utils_star_excludes_columns() {
    let (_dir, _wh, engine) = engine("duckdb");
    assert_eq!(
        compile(
            &engine,
            "select {{ dbt_utils.star(from=ref('x'), except=['a']) }} from {{ ref('x') }}"
        ),
        "select \"b\", \"c\" from \"main\".\"x\""
    );
    assert_eq!(
        compile(
            &engine,
            "select {{ dbt_utils.star(ref('x'), relation_alias='t', prefix='p_') }}"
        ),
        "select t.\"a\" as \"p_a\", t.\"b\" as \"p_b\", t.\"c\" as \"p_c\""
    );
    assert_eq!(
        compile(
            &engine,
            "select {{ dbt_utils.star(ref('x'), except=['A', 'c'], rename={'B': 'bee'}) }}"
        ),
        "select \"b\" as bee"
    );
}

#[test]
fn dbt_utils_union_relations() {
    let (_dir, _wh, engine) = engine("duckdb");
    let comment = "/* No columns from any of the relations. This star is only output during dbt compile, and exists to keep SQLFluff happy. */";
    assert_eq!(
        compile(
            &engine,
            "{{ dbt_utils.union_relations(relations=[ref('a'), ref('b')]) }}"
        ),
        format!(
            "( select cast('\"main\".\"a\"' as TEXT) as _dbt_source_relation, {comment} \
             cast(\"id\" as INTEGER) as \"id\" , cast(\"name\" as VARCHAR) as \"name\" , cast(null as DOUBLE) as \"amount\" \
             from \"main\".\"a\" ) union all \
             ( select cast('\"main\".\"b\"' as TEXT) as _dbt_source_relation, {comment} \
             cast(\"id\" as INTEGER) as \"id\" , cast(null as VARCHAR) as \"name\" , cast(\"amount\" as DOUBLE) as \"amount\" \
             from \"main\".\"b\" )"
        )
    );
    assert_eq!(
        compile(
            &engine,
            "{{ dbt_utils.union_relations([ref('a'), ref('b')], exclude=['NAME'], source_column_name=none, where='id > 0') }}"
        ),
        format!(
            "( select {comment} cast(\"id\" as INTEGER) as \"id\" , cast(null as DOUBLE) as \"amount\" from \"main\".\"a\" where id > 0 ) union all \
             ( select {comment} cast(\"id\" as INTEGER) as \"id\" , cast(\"amount\" as DOUBLE) as \"amount\" from \"main\".\"b\" where id > 0 )"
        )
    );
}

#[test]
fn dbt_utils_pivot_over_get_column_values() {
    let (_dir, warehouse, engine) = engine("duckdb");
    assert_eq!(
        compile(
            &engine,
            "select color, {{ dbt_utils.pivot('size', dbt_utils.get_column_values(ref('t'), 'size')) }} from {{ ref('t') }} group by color",
        ),
        "select color, sum( case when size = 'S' then 1 else 0 end ) as \"S\" , \
         sum( case when size = 'M' then 1 else 0 end ) as \"M\" from \"main\".\"t\" group by color"
    );
    assert_eq!(
        executed(&warehouse),
        vec!["select size as value from \"main\".\"t\" group by size order by count(*) desc"]
    );
    assert_eq!(
        compile(
            &engine,
            "{{ dbt_utils.pivot('size', [\"it's\"], agg='max', prefix='n_', then_value='x', else_value='null') }}"
        ),
        "max( case when size = 'it''s' then x else null end ) as \"n_it's\""
    );
}

#[test]
fn dbt_utils_get_column_values_of_a_missing_relation() {
    let (_dir, _wh, engine) = engine("duckdb");
    assert_eq!(
        compile(
            &engine,
            "{{ dbt_utils.get_column_values(ref('nowhere'), 'size', default=['z']) }}"
        ),
        "['z']"
    );
    let err = engine
        .compile(
            "models/m.sql",
            "{{ dbt_utils.get_column_values(ref('nowhere'), 'size') }}",
            context(),
        )
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "In get_column_values(): relation \"main\".\"nowhere\" does not exist and no default value was provided. (in dbt_packages/dbt_utils/macros/sql/get_column_values.sql:25)"
    );
}

#[test]
fn dbt_utils_surrogate_key_date_spine_deduplicate_safe_divide_group_by() {
    let (_dir, warehouse, engine) = engine("duckdb");
    assert_eq!(
        compile(
            &engine,
            "{{ dbt_utils.generate_surrogate_key(['a', 'b']) }}"
        ),
        "md5(cast(coalesce(cast(a as TEXT), '_dbt_utils_surrogate_key_null_') || '-' || coalesce(cast(b as TEXT), '_dbt_utils_surrogate_key_null_') as TEXT))"
    );
    assert_eq!(
        compile(
            &engine,
            "{{ dbt_utils.date_spine('day', \"cast('2024-01-01' as date)\", \"cast('2024-01-05' as date)\") }}"
        ),
        "with rawdata as ( with p as ( select 0 as generated_number union all select 1 ), unioned as ( select \
         p0.generated_number * power(2, 0) + p1.generated_number * power(2, 1) + 1 as generated_number \
         from p as p0 cross join p as p1 ) select * from unioned where generated_number <= 4 order by generated_number ), \
         all_periods as ( select ( date_add(cast('2024-01-01' as date), interval (row_number() over (order by generated_number) - 1) day) ) as date_day from rawdata ), \
         filtered as ( select * from all_periods where date_day <= cast('2024-01-05' as date) ) select * from filtered"
    );
    assert_eq!(
        executed(&warehouse),
        vec![
            "select date_diff('day', (cast('2024-01-01' as date))::timestamp, (cast('2024-01-05' as date))::timestamp)"
        ]
    );
    assert_eq!(
        compile(
            &engine,
            "{{ dbt_utils.deduplicate(ref('x'), 'a', 'c desc') }}"
        ),
        "with row_numbered as ( select _inner.*, row_number() over ( partition by a order by c desc ) as rn from \"main\".\"x\" as _inner ) \
         select distinct data.* from \"main\".\"x\" as data natural join row_numbered where row_numbered.rn = 1"
    );
    assert_eq!(
        compile(&engine, "{{ dbt_utils.safe_divide('a', 'b') }}"),
        "( a ) / nullif( ( b ), 0)"
    );
    assert_eq!(
        compile(&engine, "{{ dbt_utils.group_by(3) }}"),
        "group by 1,2,3"
    );
}

#[test]
fn dbt_utils_on_postgres_dispatches_to_postgres_macros() {
    let (_dir, warehouse, engine) = engine("postgres");
    assert_eq!(
        compile(
            &engine,
            "{{ dbt_utils.deduplicate(ref('x'), 'a', 'c desc') }}"
        ),
        "select distinct on (a) * from \"main\".\"x\" order by a,c desc"
    );
    let spine = compile(
        &engine,
        "{{ dbt_utils.date_spine('day', \"cast('2024-01-01' as date)\", \"cast('2024-01-05' as date)\") }}",
    );
    assert!(
        spine.contains("cast('2024-01-01' as date) + ((interval '1 day') * (row_number() over (order by generated_number) - 1))"),
        "{spine}"
    );
    assert_eq!(
        executed(&warehouse),
        vec![
            "select (((cast('2024-01-05' as date)))::date - ((cast('2024-01-01' as date)))::date)"
        ]
    );
}

#[test]
fn dbt_utils_query_helpers_read_agate_tables() {
    let (_dir, _wh, engine) = engine("duckdb");
    assert_eq!(
        compile(
            &engine,
            "{% set d = dbt_utils.get_query_results_as_dict('select * from sizes_summary') %}{{ d['size'] }} {{ d.n|sum }} {{ d.keys()|list }}"
        ),
        "['S', 'M'] 8 ['size', 'n']"
    );
    assert_eq!(
        compile(
            &engine,
            "{{ dbt_utils.get_single_value('select size from sizes_summary') }} {{ dbt_utils.get_single_value('select max(n) from empty', default=0) }}"
        ),
        "S 0"
    );
}

#[test]
fn dbt_utils_unpivot_and_a_generic_test() {
    let (_dir, _wh, engine) = engine("duckdb");
    assert_eq!(
        compile(
            &engine,
            "{{ dbt_utils.unpivot(ref('x'), cast_to='varchar', exclude=['a'], remove=['C']) }}"
        ),
        "select a, cast('b' as TEXT) as field_name, cast( b as varchar) as value from \"main\".\"x\""
    );
    assert_eq!(
        compile(
            &engine,
            "{{ dbt_utils.test_expression_is_true(ref('x'), 'a > 0') }}"
        ),
        "select 1 from \"main\".\"x\" where not(a > 0)"
    );
}

#[test]
fn dbt_utils_jinja_helpers_slugify_and_log_info() {
    let (_dir, _wh, engine) = engine("duckdb");
    assert_eq!(
        compile(
            &engine,
            "{{ dbt_utils.slugify('1st Big-Size!') }} {{ dbt_utils.pivot('s', ['Extra Large'], quote_identifiers=False) }}"
        ),
        "_1st_big_size sum( case when s = 'Extra Large' then 1 else 0 end ) as extra_large"
    );
    let out = engine
        .compile(
            "models/m.sql",
            "{{ dbt_utils.log_info('built') }}",
            context(),
        )
        .unwrap();
    assert_eq!(out.logs.len(), 1, "{:?}", out.logs);
    let line = &out.logs[0];
    let shape = regex::Regex::new(r"^\d\d:\d\d:\d\d \+ built$").unwrap();
    assert!(shape.is_match(line), "{line}");
}

#[test]
fn dbt_utils_generic_tests_and_sql_helpers_compile() {
    let (_dir, _wh, engine) = engine("duckdb");
    for src in [
        "{{ dbt_utils.nullcheck_table(ref('x')) }}",
        "{{ dbt_utils.haversine_distance(1, 2, 3, 4, unit='km') }}",
        "{{ dbt_utils.width_bucket('x', 0, 10, 5) }}",
        "{{ dbt_utils.get_url_host('u') }}",
        "{{ dbt_utils.get_url_path('u') }}",
        "{{ dbt_utils.get_url_parameter('u', 'utm') }}",
        "{{ dbt_utils.safe_add(['a', 'b']) }}",
        "{{ dbt_utils.safe_subtract(['a', 'b']) }}",
        "{{ dbt_utils.test_equal_rowcount(ref('a'), ref('b')) }}",
        "{{ dbt_utils.test_accepted_range(ref('a'), 'id', min_value=0) }}",
        "{{ dbt_utils.test_unique_combination_of_columns(ref('a'), ['id', 'name']) }}",
        "{{ dbt_utils.test_recency(ref('a'), 'day', 'created_at', 1) }}",
        "{{ dbt_utils.test_mutually_exclusive_ranges(ref('a'), 'lo', 'hi') }}",
        "{{ dbt_utils.test_sequential_values(ref('a'), 'id') }}",
        "{{ dbt_utils.test_cardinality_equality(ref('a'), 'id', ref('b'), 'id') }}",
        "{{ dbt_utils.test_relationships_where(ref('a'), 'id', ref('b'), 'id') }}",
        "{{ dbt_utils.test_not_accepted_values(ref('a'), 'id', [1, 2]) }}",
        "{{ dbt_utils.test_at_least_one(ref('a'), 'id') }}",
        "{{ dbt_utils.test_not_constant(ref('a'), 'id') }}",
        "{{ dbt_utils.test_not_empty_string(ref('a'), 'name') }}",
        "{{ dbt_utils.test_fewer_rows_than(ref('a'), ref('b')) }}",
        "{{ dbt_utils.get_tables_by_pattern_sql('main', 'a%') }}",
    ] {
        let sql = compile(&engine, src);
        assert!(
            sql.contains("select")
                || sql.contains("coalesce")
                || sql.contains("split_part")
                || sql.contains("asin")
                || sql.contains("least("),
            "{src} => {sql}"
        );
    }
    // not_null_proportion reads Jinja's implicit `kwargs`.
    assert_eq!(
        compile(
            &engine,
            "{{ dbt_utils.test_not_null_proportion(ref('a'), at_least=0.9, column_name='id') }}"
        ),
        "with validation as ( select sum(case when id is null then 0 else 1 end) / cast(count(*) as numeric(28,6)) as not_null_proportion \
         from \"main\".\"a\" ), validation_errors as ( select not_null_proportion from validation \
         where not_null_proportion < 0.9 or not_null_proportion > 1 ) select * from validation_errors"
    );
    assert_eq!(
        compile(
            &engine,
            "{{ dbt_utils.test_not_accepted_values(ref('a'), 'id', [1, 2]) }}"
        ),
        "with all_values as ( select distinct id as value_field from \"main\".\"a\" ), validation_errors as ( \
         select value_field from all_values where value_field in ( '1','2' ) ) select * from validation_errors"
    );
    // surrogate_key passes `*varargs` on and then raises its deprecation error, as in dbt.
    let err = engine
        .compile(
            "models/m.sql",
            "{{ dbt_utils.surrogate_key(['a']) }}",
            context(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`dbt_utils.surrogate_key` has been replaced by `dbt_utils.generate_surrogate_key`. The new macro")
            && err.ends_with("(in dbt_packages/dbt_utils/macros/sql/surrogate_key.sql:18)"),
        "{err}"
    );
}
