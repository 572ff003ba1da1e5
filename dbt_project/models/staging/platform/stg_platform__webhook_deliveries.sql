-- One select and no CTE: PostgreSQL never flattens a view that has a WITH into the query reading it, so a
-- join or filter on a key could not reach raw's indexes (incremental models depend on it).
select
    id as webhook_delivery_id,
    webhook_id,
    event_type,
    organization_id,
    payload,
    attempt,
    max_attempts,
    status as delivery_status,
    response_status,
    last_error,
    next_retry_at,
    created_at,
    updated_at,
    _loaded_at
from {{ source('platform', 'webhook_deliveries') }}
