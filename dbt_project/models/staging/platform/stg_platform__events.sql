-- One select and no CTE: PostgreSQL never flattens a view that has a WITH into the query reading it, so a
-- join or filter on a key could not reach raw's indexes (incremental models depend on it).
select
    id as event_id,
    organization_id,
    name as event_name,
    status as event_status,
    starts_at,
    ends_at,
    created_at,
    updated_at,
    _loaded_at
from {{ source('platform', 'events') }}
