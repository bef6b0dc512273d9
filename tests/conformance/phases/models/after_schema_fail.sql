{{ config(materialized='table') }}
-- below inc_schema_fail, which errors in phase 2: skipped then
select count(*) as orders from {{ ref('inc_schema_fail') }}
