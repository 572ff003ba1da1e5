-- One select and no CTE: PostgreSQL never flattens a view that has a WITH into the query reading it, so a
-- join or filter on a key could not reach raw's indexes (incremental models depend on it).
select
    id as balance_id,
    payload->>'currency' as currency,
    payload->>'status' as balance_status,
    payload->>'transferFrequency' as transfer_frequency,
    {{ mollie_amount("payload->'availableAmount'") }} as available_amount,
    {{ mollie_amount("payload->'pendingAmount'") }} as pending_amount,
    cast(payload->>'createdAt' as timestamptz) as created_at,
    _loaded_at
from {{ source('mollie', 'balances') }}
