{{ config(incremental_strategy='merge', unique_key=['customer_id', 'order_day']) }}
select customer_id, order_day, count(*) as orders, sum(amount) as amount, {{ var('phase') }} as loaded_in_phase
from {{ ref('src_orders') }}
{% if is_incremental() %}
where order_day >= cast('2024-05-03' as date)
{% endif %}
group by customer_id, order_day
