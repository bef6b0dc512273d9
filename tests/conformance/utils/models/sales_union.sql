{{ dbt_utils.union_relations(relations=[ref('util_sales'), ref('util_sales_2023')], exclude=['sale_date']) }}
