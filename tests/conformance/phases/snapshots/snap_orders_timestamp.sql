{% snapshot snap_orders_timestamp %}
{{ config(
    unique_key='order_id',
    strategy='timestamp',
    updated_at='updated_at',
    hard_deletes='invalidate',
) }}
select order_id, customer_id, status, amount, updated_at from {{ ref('src_orders') }}
{% endsnapshot %}
