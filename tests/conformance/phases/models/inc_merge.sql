{{ config(incremental_strategy='merge', unique_key='order_id') }}
-- no incremental filter: every current row is merged (order 3 changes without a new updated_at)
select order_id, customer_id, status, amount, updated_at, {{ var('phase') }} as loaded_in_phase
from {{ ref('src_orders') }}
