{{ config(alias='order_status_counts') }}
-- one column per status, the list read from the warehouse with run_query
select
    customer_id
    {%- for status in order_statuses() %},
    sum(case when status = '{{ status }}' then 1 else 0 end) as {{ status }}_orders
    {%- endfor %}
from {{ ref('stg_orders') }}
group by customer_id
