-- One select and no CTE: PostgreSQL never flattens a view that has a WITH into the query reading it, so a
-- join or filter on a key could not reach raw's indexes (incremental models depend on it).
select
    id as payment_id,
    order_id,
    mollie_payment_id,
    status as payment_status,
    method as payment_method,
    {{ cents_to_major('amount_cents') }} as amount,
    upper(currency) as currency,
    failure_reason,
    created_at,
    paid_at,
    updated_at,
    _loaded_at
from {{ source('platform', 'payments') }}
