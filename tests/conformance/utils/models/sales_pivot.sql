select
    region,
    {{ dbt_utils.pivot('product', dbt_utils.get_column_values(ref('util_sales'), 'product', order_by='product'), agg='sum', then_value='quantity', else_value=0) }}
from {{ ref('util_sales') }}
group by region
