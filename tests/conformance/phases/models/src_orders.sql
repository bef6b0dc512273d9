{{ config(materialized='view') }}
with versions as (
    select * from {{ ref('orders_raw') }}
    where phase <= {{ var('phase') }}
),
latest as (
    select *, row_number() over (partition by order_id order by phase desc) as version_rank
    from versions
)
select
    order_id,
    customer_id,
    order_day,
    status,
    amount,
    {%- if var('phase') >= 2 %}
    channel,
    {%- endif %}
    updated_at
from latest
where version_rank = 1 and not deleted
