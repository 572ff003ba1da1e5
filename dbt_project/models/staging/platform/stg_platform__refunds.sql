-- One select and no CTE: PostgreSQL never flattens a view that has a WITH into the query reading it, so a
-- join or filter on a key could not reach raw's indexes (incremental models depend on it).
select
    id as refund_id,
    payment_id,
    mollie_refund_id,
    {{ cents_to_major('amount_cents') }} as amount,
    reason as refund_reason,
    status as refund_status,
    initiated_by,
    created_at,
    updated_at,
    _loaded_at
from {{ source('platform', 'refunds') }}
