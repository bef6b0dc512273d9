select
    {{ dbt_utils.generate_surrogate_key(['id', 'region']) }} as sale_key,
    {{ dbt_utils.star(from=ref('util_sales'), except=['discount'], relation_alias='s') }},
    {{ dbt_utils.safe_divide('s.discount', 's.quantity') }} as discount_per_unit,
    {{ dbt_utils.safe_add(['s.quantity', 's.discount']) }} as quantity_plus_discount,
    {{ dbt_utils.safe_subtract(['s.quantity', 's.discount']) }} as quantity_minus_discount
from {{ ref('util_sales') }} as s
