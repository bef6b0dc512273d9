{# Found before dbt_utils' own default__safe_divide through the project's dispatch config. #}
{% macro default__safe_divide(numerator, denominator) -%}
    round(( {{ numerator }} ) / nullif( ( {{ denominator }} ), 0), 4)
{%- endmacro %}
