-- One select and no CTE: PostgreSQL never flattens a view that has a WITH into the query reading it, so a
-- join or filter on a key could not reach raw's indexes (incremental models depend on it).
select
    id as ticket_id,
    order_id,
    event_id,
    ticket_type,
    {{ cents_to_major('price_cents') }} as price_amount,
    qr_code,
    status as ticket_status,
    created_at,
    updated_at,
    _loaded_at
from {{ source('platform', 'tickets') }}
