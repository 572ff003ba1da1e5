-- One select and no CTE: PostgreSQL never flattens a view that has a WITH into the query reading it, so a
-- join or filter on a key could not reach raw's indexes (incremental models depend on it).
select
    id as organization_id,
    name as organization_name,
    status as organization_status,
    created_at,
    updated_at,
    _loaded_at
from {{ source('platform', 'organizations') }}
