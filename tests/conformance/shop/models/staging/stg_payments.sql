{{ config(materialized='ephemeral') }}
select
    id as payment_id,
    order_id,
    method,
    amount_cents,
    {{ cents_to_amount('amount_cents') }} as amount
from {{ source('raw', 'raw_payments') }}
