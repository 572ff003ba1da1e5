-- One select and no CTE: PostgreSQL never flattens a view that has a WITH into the query reading it, so a
-- join or filter on a key could not reach raw's indexes (incremental models depend on it).
select
    id as order_id,
    order_number,
    organization_id,
    event_id,
    customer_id,
    lower(buyer_email) as buyer_email,
    buyer_ip,
    status as order_status,
    upper(currency) as currency,
    {{ cents_to_major('tickets_amount_cents') }} as tickets_amount,
    {{ cents_to_major('service_fee_cents') }} as service_fee_amount,
    {{ cents_to_major('platform_fee_cents') }} as platform_fee_amount,
    {{ cents_to_major('total_cents') }} as total_amount,
    ticket_count,
    paid_at is not null as is_paid,
    created_at,
    paid_at,
    updated_at,
    _loaded_at
from {{ source('platform', 'orders') }}
