-- One select and no CTE: PostgreSQL never flattens a view that has a WITH into the query reading it, so a
-- join or filter on a key could not reach raw's indexes (incremental models depend on it).
select
    id as mollie_payment_id,
    payload->>'status' as payment_status,
    payload->>'method' as payment_method,
    {{ mollie_amount("payload->'amount'") }} as amount,
    payload->'amount'->>'currency' as currency,
    coalesce({{ mollie_amount("payload->'amountRefunded'") }}, 0) as amount_refunded,
    coalesce({{ mollie_amount("payload->'amountChargedBack'") }}, 0) as amount_charged_back,
    payload->>'settlementId' as settlement_id,
    payload->'metadata'->>'order_number' as order_number,
    payload->>'description' as description,
    payload->'details'->>'failureReason' as failure_reason,
    cast(payload->>'createdAt' as timestamptz) as created_at,
    cast(payload->>'paidAt' as timestamptz) as paid_at,
    payload,
    _loaded_at
from {{ source('mollie', 'payments') }}
