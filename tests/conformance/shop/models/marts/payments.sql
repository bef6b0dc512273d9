select payment_id, order_id, method, amount
from {{ ref('stg_payments') }}
