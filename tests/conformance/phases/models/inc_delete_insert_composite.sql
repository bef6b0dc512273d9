{{ config(incremental_strategy='delete+insert', unique_key=['customer_id', 'order_day']) }}
select customer_id, order_day, count(*) as orders, sum(amount) as amount, {{ var('phase') }} as loaded_in_phase
from {{ ref('src_orders') }}
{% if is_incremental() %}
where order_day >= (select max(order_day) from {{ this }})
{% endif %}
group by customer_id, order_day
