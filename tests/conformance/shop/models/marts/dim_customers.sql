{{ config(contract={'enforced': true}) }}
select
    customer_id,
    full_name,
    email,
    signup_date,
    cast(order_count as integer) as order_count,
    tier
from {{ ref('customer_orders') }}
join {{ ref('stg_customers') }} using (customer_id, full_name)
