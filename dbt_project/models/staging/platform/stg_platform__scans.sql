-- One select and no CTE: PostgreSQL never flattens a view that has a WITH into the query reading it, so a
-- join or filter on a key could not reach raw's indexes (incremental models depend on it).
select
    id as scan_id,
    ticket_id,
    event_id,
    qr_code,
    device_id,
    result as scan_result,
    scanned_at,
    created_at,
    _loaded_at
from {{ source('platform', 'scans') }}
