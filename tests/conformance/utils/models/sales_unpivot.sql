{{ dbt_utils.unpivot(relation=ref('util_sales'), cast_to=dbt.type_string(), exclude=['id'], remove=['sale_date', 'discount'], field_name='attribute', value_name='value') }}
