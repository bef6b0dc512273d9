{#- Runs the body of the call block against the warehouse and keeps the result under `name`
    for load_result(). Nothing is sent when not executing (parsing). -#}
{% macro statement(name=None, fetch_result=False, auto_begin=True, language='sql') -%}
  {%- if execute -%}
    {%- set sql_text = caller() -%}
    {%- set response, table = adapter.execute(sql_text, auto_begin=auto_begin, fetch=fetch_result) -%}
    {%- if name is not none -%}
      {{- store_result(name, response=response, agate_table=table) -}}
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}

{% macro run_query(sql) -%}
  {%- call statement("run_query_statement", fetch_result=true, auto_begin=false) -%}
    {{ sql }}
  {%- endcall -%}
  {{ return(load_result("run_query_statement").table) }}
{%- endmacro %}
