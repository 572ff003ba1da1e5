-- One select and no CTE: PostgreSQL never flattens a view that has a WITH into the query reading it, so a
-- join or filter on a key could not reach raw's indexes (incremental models depend on it).
select
    id as balance_transaction_id,
    balance_id,
    payload->>'type' as transaction_type,
    {{ mollie_amount("payload->'resultAmount'") }} as result_amount,
    {{ mollie_amount("payload->'initialAmount'") }} as initial_amount,
    {{ mollie_amount("payload->'deductions'") }} as deductions,
    payload->'resultAmount'->>'currency' as currency,
    payload->'context'->>'paymentId' as mollie_payment_id,
    payload->'context'->>'refundId' as mollie_refund_id,
    payload->'context'->>'chargebackId' as mollie_chargeback_id,
    payload->'context'->>'settlementId' as settlement_id,
    payload->'context' as context,
    cast(payload->>'createdAt' as timestamptz) as created_at,
    _loaded_at
from {{ source('mollie', 'balance_transactions') }}
