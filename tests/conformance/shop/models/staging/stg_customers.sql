select
    id as customer_id,
    first_name,
    last_name,
    first_name || ' ' || last_name as full_name,
    email,
    signup_date,
    country,
    '{{ env_var("SHOP_REGION", "eu") }}' as region
from {{ source('raw', 'raw_customers') }}
