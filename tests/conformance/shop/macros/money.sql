{% macro cents_to_amount(column_name, scale=2) -%}
  cast(({{ column_name }} / 100.0) as decimal(12, {{ scale }}))
{%- endmacro %}

{% macro tier_case(amount_expr) -%}
  case
    {%- for name, floor in [('gold', var('vip_threshold')), ('silver', 50), ('bronze', 0)] %}
    when {{ amount_expr }} >= {{ floor }} then '{{ name }}'
    {%- endfor %}
    else 'none'
  end
{%- endmacro %}

{% macro order_statuses() %}
  {% set query %}
    select distinct status from {{ ref('stg_orders') }} order by status
  {% endset %}
  {% if execute %}
    {% set results = run_query(query) %}
    {{ return(results.columns[0].values()) }}
  {% else %}
    {{ return([]) }}
  {% endif %}
{% endmacro %}
