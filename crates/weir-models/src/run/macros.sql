{#- weir's generic tests and the test helpers dbt's schema tests call (the `dbt` namespace). -#}

{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        (select * from {{ relation }} where {{ where }}) dbt_subquery
    {%- else -%}
        {{ relation }}
    {%- endif -%}
{%- endmacro %}

{% macro test_unique(model, column_name) -%}
    {{ return(adapter.dispatch('test_unique', 'dbt')(model, column_name)) }}
{%- endmacro %}

{% macro default__test_unique(model, column_name) -%}
select
    {{ column_name }} as unique_field,
    count(*) as n_records

from {{ model }}
where {{ column_name }} is not null
group by {{ column_name }}
having count(*) > 1
{%- endmacro %}

{% macro test_not_null(model, column_name) -%}
    {{ return(adapter.dispatch('test_not_null', 'dbt')(model, column_name)) }}
{%- endmacro %}

{% macro default__test_not_null(model, column_name) -%}
{%- set column_list = '*' if should_store_failures() else column_name -%}
select {{ column_list }}
from {{ model }}
where {{ column_name }} is null
{%- endmacro %}

{% macro test_accepted_values(model, column_name, values, quote=True) -%}
    {{ return(adapter.dispatch('test_accepted_values', 'dbt')(model, column_name, values, quote)) }}
{%- endmacro %}

{% macro default__test_accepted_values(model, column_name, values, quote=True) -%}
with all_values as (

    select
        {{ column_name }} as value_field,
        count(*) as n_records

    from {{ model }}
    group by {{ column_name }}

)

select *
from all_values
where value_field not in (
    {% for value in values -%}
        {% if quote -%}
        '{{ value }}'
        {%- else -%}
        {{ value }}
        {%- endif -%}
        {%- if not loop.last -%},{%- endif %}
    {%- endfor %}
)
{%- endmacro %}

{% macro test_relationships(model, column_name, to, field) -%}
    {{ return(adapter.dispatch('test_relationships', 'dbt')(model, column_name, to, field)) }}
{%- endmacro %}

{% macro default__test_relationships(model, column_name, to, field) -%}
with child as (
    select {{ column_name }} as from_field
    from {{ model }}
    where {{ column_name }} is not null
),

parent as (
    select {{ field }} as to_field
    from {{ to }}
)

select
    from_field

from child
left join parent
    on child.from_field = parent.to_field

where parent.to_field is null
{%- endmacro %}
