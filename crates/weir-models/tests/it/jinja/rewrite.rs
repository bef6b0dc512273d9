//! The literal pass: literals become mutable objects, everything else is left as written.

use weir_models::jinja::rewrite::rewrite;

use super::render;

#[test]
fn literals_become_constructors_and_subscripts_stay() {
    let cases: &[(&str, &str)] = &[
        ("{{ [a, b] }}", "{{ __weir_list(a, b) }}"),
        ("{{ [] }}", "{{ __weir_list() }}"),
        (
            "{% set d = {'k': v, 'n': [1]} %}",
            "{% set d = __weir_dict('k', v, 'n', __weir_list(1)) %}",
        ),
        (
            "{{ x[0] }}{{ x['k'] }}{{ f()[0] }}{{ x[1:2] }}",
            "{{ x[0] }}{{ x['k'] }}{{ f()[0] }}{{ x[1:2] }}",
        ),
        ("{{ [1, 2][0] }}", "{{ __weir_list(1, 2)[0] }}"),
        (
            "{{ {'a': x[1:]}['a'] }}",
            "{{ __weir_dict('a', x[1:])['a'] }}",
        ),
        (
            "{% if x in ['a', 'b'] %}",
            "{% if x in __weir_list('a', 'b') %}",
        ),
        ("{{ a if c else [] }}", "{{ a if c else __weir_list() }}"),
        (
            "{{ '[not] {a: list}' ~ \"]\" }}",
            "{{ '[not] {a: list}' ~ \"]\" }}",
        ),
        (
            "[plain text] {# {{ [x] }} #} {x: 1}",
            "[plain text] {# {{ [x] }} #} {x: 1}",
        ),
        (
            "{% raw %}{{ [1] }}{% endraw %}",
            "{% raw %}{{ [1] }}{% endraw %}",
        ),
        (
            "{%- set x = [1] -%}\n{{- [2] -}}",
            "{%- set x = __weir_list(1) -%}\n{{- __weir_list(2) -}}",
        ),
        (
            "{{ f(x=[1], y={}) }}",
            "{{ f(x=__weir_list(1), y=__weir_dict()) }}",
        ),
        (
            "{{ [[1], [2]] }}",
            "{{ __weir_list(__weir_list(1), __weir_list(2)) }}",
        ),
        ("{{ x|default([]) }}", "{{ x|default(__weir_list()) }}"),
        ("{{ d.k[0] }}", "{{ d.k[0] }}"),
    ];
    for (src, want) in cases {
        assert_eq!(rewrite(src, false).source, *want, "source: {src}");
    }
}

#[test]
fn macro_files_rename_macros_and_list_them_with_lines() {
    let src = "{% macro a(x=[]) %}{{ b() }}{% endmacro %}\n{%- macro b() -%}1{%- endmacro %}\n{% test not_null(model) %}x{% endtest %}";
    let out = rewrite(src, true);
    assert_eq!(
        out.source,
        "{% macro __weir_macro__a(x=__weir_list()) %}{{ b() }}{% endmacro %}\n{%- macro __weir_macro__b() -%}1{%- endmacro %}\n{% macro __weir_macro__test_not_null(model) %}x{% endmacro %}"
    );
    let names: Vec<(String, usize)> = out.macros.into_iter().map(|m| (m.name, m.line)).collect();
    assert_eq!(
        names,
        vec![
            ("a".into(), 1),
            ("b".into(), 2),
            ("test_not_null".into(), 3)
        ]
    );
}

#[test]
fn rewritten_tricky_templates_render_as_python_jinja_would() {
    let cases: &[(&str, &str)] = &[
        ("{{ 'a[0]' }} {{ \"{'k': 1}\" }}", "a[0] {'k': 1}"),
        (
            "{% set x = {'a': [1, {'b': 2}]} %}{{ x['a'][1]['b'] }} {{ x }}",
            "2 {'a': [1, {'b': 2}]}",
        ),
        ("{% raw %}{{ [1] }}{% endraw %}", "{{ [1] }}"),
        ("{#- [1] -#} {%- set l = [1] -%} {{- l -}}", "[1]"),
        ("{{ ['a', 'b'][1:] }} {{ 'abc'[1:] }}", "['b'] bc"),
    ];
    for (src, want) in cases {
        assert_eq!(render(src), *want, "source: {src}");
    }
}

#[test]
fn macros_reading_kwargs_or_varargs_declare_them() {
    let src = "{% macro a(x) %}{{ kwargs.get('k') }}{{ varargs }}{% endmacro %}{% macro b() %}{{ kwargs }}{% endmacro %}{% macro c(y) %}{{ y }}{% endmacro %}";
    assert_eq!(
        rewrite(src, true).source,
        "{% macro __weir_macro__a(x, varargs=none, kwargs=none) %}{{ kwargs.get('k') }}{{ varargs }}{% endmacro %}\
         {% macro __weir_macro__b(kwargs=none) %}{{ kwargs }}{% endmacro %}\
         {% macro __weir_macro__c(y) %}{{ y }}{% endmacro %}"
    );
}

#[test]
fn backslash_newline_in_strings_joins_lines_and_keeps_line_numbers() {
    let src = "{% set m = 'a \\\nb \\\\n' %}\n{{ m }}";
    assert_eq!(
        rewrite(src, false).source,
        "{% set m = 'a b \\\\n'\n %}\n{{ m }}"
    );
    assert_eq!(render("{% set m = 'one \\\ntwo' %}{{ m }}"), "one two");
}
