{{ dbt_utils.deduplicate(relation=ref('util_events'), partition_by='event_id', order_by='loaded_at desc') }}
