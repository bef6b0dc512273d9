select region, product, sum(quantity) as quantity, count(*) as sales
from {{ ref('util_sales') }}
{{ dbt_utils.group_by(2) }}
