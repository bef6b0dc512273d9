-- Singular test with its own severity: warns (two orders lack a full payment).
{{ config(severity='warn') }}
select o.order_id
from {{ ref('stg_orders') }} as o
left join {{ ref('payments') }} as p on p.order_id = o.order_id
group by o.order_id, o.amount
having coalesce(sum(p.amount), 0) <> o.amount
