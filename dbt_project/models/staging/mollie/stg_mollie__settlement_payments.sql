-- One select and no CTE: PostgreSQL never flattens a view that has a WITH into the query reading it, so a
-- join or filter on a key could not reach raw's indexes (incremental models depend on it).
select
    settlement_id,
    id as mollie_payment_id,
    payload->>'status' as status,
    {{ mollie_amount("payload->'amount'") }} as amount,
    payload->'amount'->>'currency' as currency,
    cast(payload->>'createdAt' as timestamptz) as created_at,
    _loaded_at
from {{ source('mollie', 'settlement_payments') }}
