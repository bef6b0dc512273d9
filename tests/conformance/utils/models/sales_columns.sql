{%- set cols = dbt_utils.get_filtered_columns_in_relation(from=ref('util_sales'), except=['id', 'discount']) -%}
select
    {{ cols | join(', ') }},
    '{{ cols | join("|") }}' as column_list,
    {{ dbt_utils.get_single_value("select max(quantity) from " ~ ref('util_sales')) }} as max_quantity
from {{ ref('util_sales') }}
