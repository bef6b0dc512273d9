{{ config(materialized='table') }}
select c.*, count(o.order_id) as open_orders
from {{ ref('customers') }} as c
left join {{ ref('src_orders') }} as o on o.customer_id = c.customer_id and o.status <> 'completed'
group by all
