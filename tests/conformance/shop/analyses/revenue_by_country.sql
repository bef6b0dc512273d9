select country, sum(lifetime_value) as revenue
from {{ ref('customer_orders') }}
group by country
