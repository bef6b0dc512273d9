{{ config(materialized='ephemeral') }}
-- ephemeral on top of an ephemeral: both become CTEs of the models that use this one
select
    order_id,
    count(*) as payment_count,
    sum(amount) as paid_amount
from {{ ref('stg_payments') }}
group by order_id
