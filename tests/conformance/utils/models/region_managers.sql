{%- set d = dbt_utils.get_query_results_as_dict("select region, manager from " ~ ref('util_regions') ~ " order by region") -%}
{%- for i in range(d['region'] | length) %}
select '{{ d['region'][i] }}' as region, '{{ d['manager'][i] }}' as manager, {{ i }} as position
{% if not loop.last %}union all{% endif %}
{%- endfor %}
