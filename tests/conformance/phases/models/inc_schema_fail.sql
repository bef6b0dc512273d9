{{ config(unique_key='order_id', on_schema_change='fail') }}
-- phase 2 adds the column channel
select
    order_id,
    status,
    {%- if var('phase') >= 2 %}
    amount,
    channel,
    {%- else %}
    amount,
    {%- endif %}
    updated_at
from {{ ref('src_orders') }}
{% if is_incremental() %}
where updated_at > (select max(updated_at) from {{ this }})
{% endif %}
