{{ config(pre_hook="insert into {{ target.schema }}.run_audit values ('pre', '{{ this.name }}')") }}
with customers as (
    select * from {{ ref('stg_customers') }}
),
orders as (
    select * from {{ ref('stg_orders') }}
),
payments as (
    select * from {{ ref('int_payments_by_order') }}
),
per_customer as (
    select
        o.customer_id,
        count(*) as order_count,
        min(o.order_date) as first_order_date,
        max(o.order_date) as last_order_date,
        sum(coalesce(p.paid_amount, 0)) as lifetime_value
    from orders as o
    left join payments as p on p.order_id = o.order_id
    where o.status <> 'returned'
    group by o.customer_id
)
select
    c.customer_id,
    c.full_name,
    c.country,
    c.region,
    coalesce(pc.order_count, 0) as order_count,
    pc.first_order_date,
    pc.last_order_date,
    coalesce(pc.lifetime_value, 0) as lifetime_value,
    {{ tier_case('coalesce(pc.lifetime_value, 0)') }} as tier,
    coalesce(pc.lifetime_value, 0) >= {{ var('vip_threshold') }} as is_vip,
    '{{ var("currency") }}' as currency
from customers as c
left join per_customer as pc on pc.customer_id = c.customer_id
