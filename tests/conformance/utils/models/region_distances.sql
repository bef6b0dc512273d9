select
    a.region as from_region,
    b.region as to_region,
    round({{ dbt_utils.haversine_distance('a.lat', 'a.lon', 'b.lat', 'b.lon', unit='km') }}, 1) as km
from {{ ref('util_regions') }} as a
cross join {{ ref('util_regions') }} as b
where a.region < b.region
