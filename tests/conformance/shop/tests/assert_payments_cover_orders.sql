-- Singular test: every completed order is paid in full (passes).
select o.order_id, o.amount, coalesce(p.paid, 0) as paid
from {{ ref('stg_orders') }} as o
left join (
    select order_id, sum(amount) as paid from {{ ref('payments') }} group by order_id
) as p on p.order_id = o.order_id
where o.status = 'completed' and coalesce(p.paid, 0) <> o.amount
