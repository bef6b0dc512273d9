{{ config(incremental_strategy='append') }}
select order_id, status, amount, updated_at, {{ var('phase') }} as loaded_in_phase
from {{ ref('src_orders') }}
{% if is_incremental() %}
where updated_at > (select max(updated_at) from {{ this }})
{% endif %}
