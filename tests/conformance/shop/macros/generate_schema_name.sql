{#- Custom schema naming: seeds keep their +schema as the whole name, other nodes get
    <target schema>_<custom schema>, nodes without one the target schema. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
  {%- if custom_schema_name is none -%}
    {{ target.schema }}
  {%- elif node.resource_type == 'seed' -%}
    {{ custom_schema_name | trim | lower }}
  {%- else -%}
    {{ target.schema }}_{{ custom_schema_name | trim | lower }}
  {%- endif -%}
{%- endmacro %}
