//! The macro runtime: return(), namespaces, dispatch, caller(), statements and the context.

use std::sync::Arc;

use minijinja::Value;
use weir_models::jinja::{Engine, JinjaError, MacroPackage, Table};

use super::{FakeWarehouse, context, engine_with, render_err, render_with, squash};

fn duckdb(root_macros: &[(&str, &str)]) -> Engine {
    engine_with(FakeWarehouse::new("duckdb"), root_macros)
}

#[test]
fn return_gives_the_caller_a_value_of_any_type() {
    let engine = duckdb(&[(
        "macros/util.sql",
        "{% macro cols() %}ignored text{{ return(['a', 'b']) }}{% endmacro %}\n\
         {% macro num() %}{% do return(41 + 1) %}{% endmacro %}\n\
         {% macro early(x) %}{% for i in x %}{% if i > 1 %}{{ return(i) }}{% endif %}{% endfor %}{{ return(none) }}{% endmacro %}\n\
         {% macro text() %} plain {% endmacro %}\n\
         {% macro outer() %}{% set inner = cols() %}{% do inner.append('c') %}{{ return(inner|join('-')) }}{% endmacro %}",
    )]);
    assert_eq!(
        render_with(
            &engine,
            "{% set c = cols() %}{% do c.append('z') %}{{ c }} {{ num() + 1 }} {{ early([1, 5, 9]) }} {{ early([]) }} [{{ text() }}] {{ outer() }}"
        ),
        "['a', 'b', 'z'] 43 5 None [ plain ] a-b-c"
    );
}

#[test]
fn return_outside_a_macro_is_an_error_with_location() {
    let err = render_err(&duckdb(&[]), "select 1\n{{ return(1) }}");
    assert_eq!(
        err,
        "return() called outside of a macro (in models/m.sql:2)"
    );
}

#[test]
fn macros_in_the_same_file_call_each_other_through_the_runtime() {
    // b() returns; if a() called minijinja's local macro the return would end a() too.
    let engine = duckdb(&[(
        "macros/ab.sql",
        "{% macro a() %}[{{ b() }}]{% endmacro %}{% macro b() %}{{ return('b') }}{% endmacro %}\n\
         {% macro fact(n) %}{% if n <= 1 %}{{ return(1) }}{% endif %}{{ return(n * fact(n - 1)) }}{% endmacro %}",
    )]);
    assert_eq!(render_with(&engine, "{{ a() }} {{ fact(5) }}"), "[b] 120");
}

#[test]
fn keyword_positional_and_default_args() {
    let engine = duckdb(&[(
        "macros/args.sql",
        "{% macro f(a, b='B', c=[]) %}{% do c.append(a) %}{{ a }}{{ b }}{{ c }}{% endmacro %}",
    )]);
    assert_eq!(
        render_with(
            &engine,
            "{{ f(1) }} {{ f(1, 2) }} {{ f(b=3, a=4) }} {{ f(5, c=['x']) }}"
        ),
        "1B[1] 12[1] 43[4] 5B['x', 5]"
    );
}

#[test]
fn namespaces_and_bare_names_resolve_like_dbt() {
    let utils = MacroPackage::new("dbt_utils")
        .with_file(
            "dbt_packages/dbt_utils/macros/a.sql",
            "{% macro helper() %}utils-helper{% endmacro %}{% macro uses_helper() %}{{ helper() }}{% endmacro %}",
        );
    let root = MacroPackage::new("my_project").with_file(
        "macros/a.sql",
        "{% macro helper() %}root-helper{% endmacro %}{% macro type_string() %}my-string{% endmacro %}",
    );
    let engine = Engine::builder("my_project", Arc::new(FakeWarehouse::new("duckdb")))
        .package(utils)
        .package(root)
        .build()
        .unwrap();
    assert_eq!(
        render_with(
            &engine,
            "{{ helper() }} {{ dbt_utils.helper() }} {{ dbt_utils.uses_helper() }} {{ type_string() }} {{ dbt.type_string() }} {{ my_project.helper() }}"
        ),
        "root-helper utils-helper utils-helper my-string TEXT root-helper"
    );
}

#[test]
fn dispatch_follows_adapter_prefixes_and_the_search_order() {
    let pkg = MacroPackage::new("pkg").with_file(
        "dbt_packages/pkg/macros/m.sql",
        "{% macro m(x) %}{{ return(adapter.dispatch('m', 'pkg')(x)) }}{% endmacro %}\n\
         {% macro default__m(x) %}pkg-default {{ x }}{% endmacro %}\n\
         {% macro postgres__m(x) %}pkg-postgres {{ x }}{% endmacro %}",
    );
    let build = |dialect: &str, with_override: bool| {
        let mut b = Engine::builder("my_project", Arc::new(FakeWarehouse::new(dialect)))
            .package(pkg.clone())
            .package(MacroPackage::new("my_project").with_file(
                "macros/over.sql",
                "{% macro duckdb__m(x) %}root-duckdb {{ x }}{% endmacro %}",
            ));
        if with_override {
            b = b.dispatch("pkg", &["my_project", "pkg"]);
        }
        b.build().unwrap()
    };
    assert_eq!(
        render_with(&build("duckdb", false), "{{ pkg.m(1) }}"),
        "pkg-default 1"
    );
    assert_eq!(
        render_with(&build("postgres", false), "{{ pkg.m(x=2) }}"),
        "pkg-postgres 2"
    );
    assert_eq!(
        render_with(&build("duckdb", true), "{{ pkg.m(3) }}"),
        "root-duckdb 3"
    );
    let err = render_err(
        &build("duckdb", false),
        "{{ adapter.dispatch('nope', 'pkg')() }}",
    );
    assert_eq!(
        err,
        "in dispatch: no macro named 'nope' found within namespace 'pkg' (searched for 'duckdb__nope', 'default__nope' in packages 'pkg') (in models/m.sql:1)"
    );
}

#[test]
fn call_blocks_set_blocks_and_caller() {
    let engine = duckdb(&[(
        "macros/wrap.sql",
        "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}\n\
         {% macro twice() %}{{ caller() }}{{ caller() }}{% endmacro %}",
    )]);
    assert_eq!(
        render_with(
            &engine,
            "{% set x = 2 %}{% call wrap('b') %}x={{ x }}{% endcall %} {% call twice() %}ab{% endcall %} {% set body %}select {{ x }}{% endset %}{{ body|trim }}"
        ),
        "<b>x=2</b> abab select 2"
    );
}

#[test]
fn statements_and_run_query_return_agate_like_tables() {
    let table = Table::new(
        &["size", "n"],
        vec![
            vec![Value::from("S"), Value::from(2)],
            vec![Value::from("M"), Value::from(1)],
        ],
    );
    let engine = engine_with(
        FakeWarehouse::new("duckdb").answering("from sizes", table),
        &[],
    );
    let src = "{% call statement('q', fetch_result=True) %}select size, n from sizes{% endcall %}\
        {% set r = load_result('q') %}{{ r['data'] }} {{ r.table.column_names }}\n\
        {% set t = run_query('select * from sizes') %}{{ t.columns[0].values() }} {{ t.columns['n'].values() }} \
        {{ t.rows[1][0] }}{{ t.rows[1]['n'] }} {{ t[0]['size'] }} {% for row in t %}{{ row[0] }}{% endfor %} {{ t.rows|length }}";
    assert_eq!(
        render_with(&engine, src),
        "[['S', 2], ['M', 1]] ['size', 'n']\n['S', 'M'] [2, 1] M1 S SM 2"
    );
    let err = render_err(&engine, "{% set t = run_query('select 42') %}");
    assert!(
        err.contains("fake warehouse has no answer for: select 42"),
        "{err}"
    );
}

#[test]
fn relations_columns_and_adapter_methods() {
    let warehouse = FakeWarehouse::new("duckdb")
        .with_columns("orders", &[("id", "INTEGER"), ("name", "VARCHAR")]);
    let engine = engine_with(warehouse, &[]);
    let src = "{% set r = ref('orders') %}{{ r }} {{ r.schema }}.{{ r.identifier }} {{ r.name }} {{ r.include(schema=False) }} {{ r.render() }}\n\
        {% for c in adapter.get_columns_in_relation(r) %}{{ c.name }}:{{ c.data_type }}:{{ c.quoted }}:{{ c.is_string() }}:{{ c.is_number() }} {% endfor %}\n\
        {{ adapter.quote('we\"ird') }} {{ load_relation(r) is not none }} {{ load_relation(ref('nothing')) is none }} {{ adapter.get_relation(database=none, schema='main', identifier='orders') }}\n\
        {{ this }} {{ source('shop', 'items') }} {{ target.schema }} {{ api.Relation.create(schema='s', identifier='t') }}";
    assert_eq!(
        render_with(&engine, src),
        "\"main\".\"orders\" main.orders orders \"orders\" \"main\".\"orders\"\n\
         id:INTEGER:\"id\":False:True name:VARCHAR:\"name\":True:False \n\
         \"we\"\"ird\" True True \"main\".\"orders\"\n\
         \"db\".\"analytics\".\"this_model\" \"raw\".\"shop_items\" analytics \"s\".\"t\""
    );
    let err = render_err(&engine, "select 1\n\n{{ ref('missing') }}");
    assert_eq!(err, "model 'missing' was not found (in models/m.sql:3)");
}

#[test]
fn config_var_env_var_and_logs() {
    let engine = duckdb(&[]);
    let mut ctx = context();
    ctx.vars.insert("days".into(), serde_json::json!([1, 2]));
    ctx.env_vars = Some([("HOME_DIR".to_string(), "/h".to_string())].into());
    let config = ctx.config.clone();
    let out = engine
        .compile(
            "models/m.sql",
            "{{ config(materialized='table', tags=['a']) }}{{ config.get('materialized') }} {{ config.get('nope', 'dflt') }} \
             {% set d = var('days') %}{% do d.append(3) %}{{ d }} {{ var('missing', 'x') }} {{ env_var('HOME_DIR') }} {{ env_var('NOPE', 'd') }}\
             {{ log('hello ' ~ execute) }} {{ is_incremental() }}",
            ctx,
        )
        .unwrap();
    assert_eq!(out.sql, "table dflt [1, 2, 3] x /h d False");
    assert_eq!(out.logs, vec!["hello True".to_string()]);
    let warned = engine
        .compile(
            "models/m.sql",
            "{% do exceptions.warn('careful') %}{{ print('p') }}",
            context(),
        )
        .unwrap();
    assert_eq!(
        warned.logs,
        vec!["warning: careful".to_string(), "p".to_string()]
    );
    assert_eq!(
        serde_json::Value::Object(config.lock().unwrap().clone()),
        serde_json::json!({"materialized": "table", "tags": ["a"]})
    );
    let err = render_err(&engine, "{{ var('nope') }}");
    assert!(err.starts_with("required var 'nope' not found"), "{err}");
    let err = render_err(
        &engine,
        "\n{{ exceptions.raise_compiler_error('bad thing: ' ~ 42) }}",
    );
    assert_eq!(err, "bad thing: 42 (in models/m.sql:2)");
}

#[test]
fn errors_inside_macros_point_at_the_macro_file_line() {
    let engine = duckdb(&[(
        "macros/broken.sql",
        "{% macro ok() %}fine{% endmacro %}\n\n{% macro bad() %}\n  {{ exceptions.raise_compiler_error('nope in bad') }}\n{% endmacro %}",
    )]);
    assert_eq!(
        render_err(&engine, "{{ ok() }}{{ bad() }}"),
        "nope in bad (in macros/broken.sql:4)"
    );
}

#[test]
fn broken_macro_files_and_duplicates_are_all_reported() {
    let root = MacroPackage::new("my_project")
        .with_file("macros/a.sql", "{% macro a() %}{% if %}{% endmacro %}")
        .with_file("macros/b.sql", "{% macro b() %}1{% endmacro %}")
        .with_file("macros/c.sql", "\n{% macro b() %}2{% endmacro %}");
    let err = Engine::builder("my_project", Arc::new(FakeWarehouse::new("duckdb")))
        .package(root)
        .build()
        .err()
        .expect("build fails");
    let JinjaError::Many(errors) = &err else {
        panic!("expected several errors, got {err}");
    };
    assert_eq!(errors.len(), 2, "{err}");
    assert!(
        errors[0].to_string().contains("(in macros/a.sql:1)"),
        "{err}"
    );
    assert_eq!(
        errors[1].to_string(),
        "macro 'b' of package 'my_project' is defined twice: in macros/b.sql:1 and in macros/c.sql:2"
    );
}

#[test]
fn builtin_naming_macros_and_root_overrides() {
    let engine = duckdb(&[]);
    let call = |engine: &Engine, name: &str, args: &[Value]| {
        engine
            .call_macro(name, args, context())
            .unwrap()
            .to_string()
            .trim()
            .to_string()
    };
    let node = Value::from(minijinja::value::Serde(
        serde_json::json!({"name": "orders", "version": null}),
    ));
    assert_eq!(
        call(&engine, "generate_schema_name", &[Value::from(())]),
        "analytics"
    );
    assert_eq!(
        call(&engine, "generate_schema_name", &[Value::from(" staging ")]),
        "analytics_staging"
    );
    assert_eq!(
        call(
            &engine,
            "generate_alias_name",
            &[Value::from(()), node.clone()]
        ),
        "orders"
    );
    assert_eq!(
        call(&engine, "generate_database_name", &[Value::from(())]),
        "db"
    );
    let custom = duckdb(&[(
        "macros/gsn.sql",
        "{% macro generate_schema_name(custom_schema_name, node) %}{{ custom_schema_name or 'fixed' }}{% endmacro %}",
    )]);
    assert_eq!(
        call(&custom, "generate_schema_name", &[Value::from(())]),
        "fixed"
    );
}

#[test]
fn cross_database_macros_per_dialect() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "duckdb",
            "{{ dbt.type_string() }} {{ dbt.type_int() }} {{ dbt.type_timestamp() }} {{ dbt.type_numeric() }}",
            "TEXT INT TIMESTAMP numeric(28,6)",
        ),
        (
            "duckdb",
            "{{ dbt.dateadd('day', 1, 'd') }}",
            "date_add(d, interval (1) day)",
        ),
        (
            "postgres",
            "{{ dbt.dateadd('day', 1, 'd') }}",
            "d + ((interval '1 day') * (1))",
        ),
        (
            "duckdb",
            "{{ dbt.datediff('a', 'b', 'day') }}",
            "date_diff('day', (a)::timestamp, (b)::timestamp)",
        ),
        (
            "postgres",
            "{{ dbt.datediff('a', 'b', 'day') }}",
            "(((b))::date - ((a))::date)",
        ),
        (
            "duckdb",
            "{{ dbt.safe_cast('x', 'int') }}",
            "try_cast(x as int)",
        ),
        (
            "postgres",
            "{{ dbt.safe_cast('x', 'int') }}",
            "cast(x as int)",
        ),
        (
            "duckdb",
            "{{ dbt.concat(['a', \"'-'\", 'b']) }}",
            "a || '-' || b",
        ),
        ("duckdb", "{{ dbt.hash('x') }}", "md5(cast(x as TEXT))"),
        (
            "postgres",
            "{{ dbt.current_timestamp() }} {{ dbt.any_value('x') }}",
            "now() min(x)",
        ),
        (
            "duckdb",
            "{{ dbt.current_timestamp() }} {{ dbt.any_value('x') }}",
            "current_timestamp any_value(x)",
        ),
        (
            "duckdb",
            "{{ dbt.escape_single_quotes(\"it's\") }} {{ dbt.string_literal(\"it's\") }}",
            "it''s 'it''s'",
        ),
        (
            "duckdb",
            "{{ dbt.split_part('s', \"','\", 2) }} {{ dbt.replace('f', \"'a'\", \"'b'\") }} {{ dbt.length('s') }} {{ dbt.position(\"'a'\", 's') }} {{ dbt.right('s', 2) }}",
            "split_part(s, ',', 2) replace(f, 'a', 'b') length(s) position('a' in s) right(s, 2)",
        ),
        (
            "duckdb",
            "{{ dbt.date_trunc('month', 'd') }} {{ dbt.except() }} {{ dbt.intersect() }} {{ dbt.bool_or('b') }}",
            "date_trunc('month', d) except intersect bool_or(b)",
        ),
        (
            "duckdb",
            "{{ dbt.listagg('x', \"', '\", 'order by x') }} {{ dbt.array_construct(['1', '2']) }} {{ dbt.cast_bool_to_text('b') }}",
            "string_agg(x, ', ' order by x) array[1, 2] cast(b as TEXT)",
        ),
        (
            "duckdb",
            "{{ dbt.last_day('d', 'month') }}",
            "cast(date_add(date_add(date_trunc('month', d), interval (1) month), interval (-1) day) as date)",
        ),
    ];
    for (dialect, src, want) in cases {
        let engine = engine_with(FakeWarehouse::new(dialect), &[]);
        assert_eq!(
            squash(&render_with(&engine, src)),
            *want,
            "{dialect}: {src}"
        );
    }
}

#[test]
fn runaway_recursion_is_an_error_not_a_crash() {
    let engine = duckdb(&[(
        "macros/loop.sql",
        "{% macro forever(n) %}{{ forever(n + 1) }}{% endmacro %}",
    )]);
    // A 2 MiB stack, the size of a test thread or a default spawned thread.
    let err = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || render_err(&engine, "{{ forever(0) }}"))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(
        err,
        "macro 'forever' nested deeper than 64 calls (runaway recursion?) (in macros/loop.sql:1)"
    );
}

#[test]
fn unknown_macros_in_a_namespace_are_named() {
    let engine = duckdb(&[]);
    assert_eq!(
        render_err(&engine, "\n{{ dbt.no_such_macro() }}"),
        "no macro named 'no_such_macro' in package 'dbt' (in models/m.sql:2)"
    );
}

#[test]
fn materialization_blocks_become_macros() {
    let root = MacroPackage::new("my_project").with_file(
        "macros/mat.sql",
        "{% materialization my_view, adapter='duckdb' %}{{ return({'relations': [this]}) }}{% endmaterialization %}\n\
         {% materialization my_table, default %}built {{ this }}{% endmaterialization %}",
    );
    let engine = Engine::builder("my_project", Arc::new(FakeWarehouse::new("duckdb")))
        .package(root)
        .build()
        .unwrap();
    assert!(engine.has_macro("my_project", "materialization_my_view_duckdb"));
    let value = engine
        .call_macro("materialization_my_view_duckdb", &[], context())
        .unwrap();
    assert_eq!(
        value.to_string(),
        "{'relations': [\"db\".\"analytics\".\"this_model\"]}"
    );
    let value = engine
        .call_macro("materialization_my_table_default", &[], context())
        .unwrap();
    assert_eq!(
        value.to_string(),
        "built \"db\".\"analytics\".\"this_model\""
    );
}

#[test]
fn one_engine_compiles_on_many_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine>();
    let engine = Arc::new(duckdb(&[(
        "macros/m.sql",
        "{% macro cols(n) %}{% set c = [] %}{% for i in range(n) %}{% do c.append('c' ~ i) %}{% endfor %}{{ return(c) }}{% endmacro %}",
    )]));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                render_with(&engine, &format!("{{{{ cols({t})|join(',') }}}}"))
            })
        })
        .collect();
    let got: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(got, vec!["", "c0", "c0,c1", "c0,c1,c2"]);
}

#[test]
fn builtin_date_spine_without_dbt_utils() {
    let table = Table::new(&["n"], vec![vec![Value::from(5)]]);
    let engine = engine_with(
        FakeWarehouse::new("duckdb").answering("date_diff", table),
        &[],
    );
    assert_eq!(
        squash(&render_with(
            &engine,
            "{{ dbt.date_spine('day', \"date '2024-01-01'\", \"date '2024-01-06'\") }}"
        )),
        "select * from ( select date_add(date '2024-01-01', interval (generated_number - 1) day) as date_day \
         from (with bit as (select 0 as b union all select 1), numbers as ( \
         select 1 + b0.b * 1 + b1.b * 2 + b2.b * 4 as generated_number \
         from bit as b0 cross join bit as b1 cross join bit as b2 ) \
         select generated_number from numbers where generated_number <= 5) as series ) as spine \
         where date_day < date '2024-01-06'"
    );
    assert_eq!(
        render_with(
            &engine,
            "{{ dbt.get_powers_of_two(1) }} {{ dbt.get_powers_of_two(4) }} {{ dbt.get_powers_of_two(5) }}"
        ),
        "1 2 3"
    );
}

#[test]
fn builtins_reach_context_functions_a_root_macro_overrides() {
    let engine = duckdb(&[(
        "macros/ref.sql",
        "{% macro ref(name) %}{% do return(builtins.ref(name).include(schema=False)) %}{% endmacro %}",
    )]);
    assert_eq!(
        render_with(&engine, "select * from {{ ref('orders') }}"),
        "select * from \"orders\""
    );
    let err = render_err(&engine, "{{ no_such_macro() }}");
    assert!(
        err.contains("no_such_macro") && err.contains("models/m.sql:1"),
        "{err}"
    );
}

#[test]
fn packages_with_files_of_the_same_path_keep_both() {
    let a = MacroPackage::new("a").with_file("macros/m.sql", "{% macro m() %}from a{% endmacro %}");
    let b = MacroPackage::new("b").with_file("macros/m.sql", "{% macro m() %}from b{% endmacro %}");
    let engine = Engine::builder("my_project", Arc::new(FakeWarehouse::new("duckdb")))
        .package(a)
        .package(b)
        .build()
        .unwrap();
    assert_eq!(
        render_with(&engine, "{{ a.m() }}, {{ b.m() }}"),
        "from a, from b"
    );
}

#[test]
fn implicit_kwargs_and_varargs_like_jinja2() {
    let engine = duckdb(&[(
        "macros/k.sql",
        "{% macro k(a) %}{{ a }} {{ kwargs }} {{ varargs }}{% endmacro %}\n\
         {% macro fwd(a) %}{{ return(k(a, *varargs, **kwargs)) }}{% endmacro %}\n\
         {% macro strict(a) %}{{ kwargs.get('x', 'none') }}{% endmacro %}",
    )]);
    assert_eq!(
        render_with(
            &engine,
            "{{ k(1, 2, 3, b=4) }} | {{ k(a=1) }} | {{ fwd(1, 2, z=3) }}"
        ),
        "1 {'b': 4} [2, 3] | 1 {} [] | 1 {'z': 3} [2]"
    );
    assert_eq!(
        render_err(&engine, "{{ strict(1, 2) }}"),
        "macro 'strict' takes 1 positional argument(s), 2 given (in models/m.sql:1)"
    );
}

#[test]
fn run_started_at_and_extra_context_names() {
    let engine = duckdb(&[]);
    let mut ctx = context();
    ctx.run_started_at = Some(1_700_000_000);
    ctx.extra
        .insert("invocation_id".into(), serde_json::json!("abc-123"));
    ctx.extra.insert(
        "selected_resources".into(),
        serde_json::json!(["model.p.a"]),
    );
    let out = engine
        .compile(
            "models/m.sql",
            "{{ run_started_at.strftime('%Y-%m-%d %H:%M:%S') }} {{ run_started_at.year }} {{ invocation_id }} {{ selected_resources }}",
            ctx,
        )
        .unwrap();
    assert_eq!(out.sql, "2023-11-14 22:13:20 2023 abc-123 ['model.p.a']");
}

#[test]
fn api_column_type_helpers() {
    assert_eq!(
        render_with(
            &duckdb(&[]),
            "{{ api.Column.translate_type('string') }} {{ api.Column.translate_type('integer') }} {{ api.Column.translate_type('varchar(3)') }} \
             {{ api.Column.numeric_type('numeric', 10, 2) }} {{ api.Column.numeric_type('numeric', none, none) }} {{ api.Column.string_type(5) }} \
             {{ api.Column.create('x', 'INTEGER').is_number() }}"
        ),
        "TEXT INT varchar(3) numeric(10,2) numeric character varying(5) True"
    );
}
