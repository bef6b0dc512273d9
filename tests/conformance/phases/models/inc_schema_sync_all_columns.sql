{{ config(unique_key='order_id', on_schema_change='sync_all_columns') }}
-- phase 2 adds the column channel and drops amount
select
    order_id,
    status,
    {%- if var('phase') >= 2 %}
    channel,
    {%- else %}
    amount,
    {%- endif %}
    updated_at
from {{ ref('src_orders') }}
{% if is_incremental() %}
where updated_at > (select max(updated_at) from {{ this }})
{% endif %}
