-- One select and no CTE: PostgreSQL never flattens a view that has a WITH into the query reading it, so a
-- join or filter on a key could not reach raw's indexes (incremental models depend on it).
select
    id as settlement_id,
    payload->>'reference' as settlement_reference,
    payload->>'status' as settlement_status,
    {{ mollie_amount("payload->'amount'") }} as amount,
    payload->'amount'->>'currency' as currency,
    cast(payload->>'createdAt' as timestamptz) as created_at,
    cast(payload->>'settledAt' as timestamptz) as settled_at,
    payload->>'invoiceId' as invoice_id,
    payload->'periods' as periods,
    _loaded_at
from {{ source('mollie', 'settlements') }}
