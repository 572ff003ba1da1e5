-- One select and no CTE: PostgreSQL never flattens a view that has a WITH into the query reading it, so a
-- join or filter on a key could not reach raw's indexes (incremental models depend on it).
select
    id as customer_id,
    lower(email) as email,
    signup_ip,
    created_at,
    updated_at,
    _loaded_at
from {{ source('platform', 'customers') }}
