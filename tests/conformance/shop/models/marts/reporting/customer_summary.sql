{{ config(materialized='view') }}
select country, tier, count(*) as customers, sum(lifetime_value) as value
from {{ ref('customer_orders') }}
group by country, tier
