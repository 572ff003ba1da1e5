-- One select and no CTE: PostgreSQL never flattens a view that has a WITH into the query reading it, so a
-- join or filter on a key could not reach raw's indexes (incremental models depend on it).
select
    id as mollie_refund_id,
    payload->>'paymentId' as mollie_payment_id,
    payload->>'status' as refund_status,
    {{ mollie_amount("payload->'amount'") }} as amount,
    payload->'amount'->>'currency' as currency,
    payload->>'settlementId' as settlement_id,
    payload->>'description' as description,
    cast(payload->>'createdAt' as timestamptz) as created_at,
    payload,
    _loaded_at
from {{ source('mollie', 'refunds') }}
