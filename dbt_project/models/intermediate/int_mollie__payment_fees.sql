-- Mollie's fee per payment: what its balance transactions deducted (the payment itself, and any refund
-- or chargeback of it). Fees are per transaction in cents, so they can differ by fractions of a cent
-- from the settlement cost lines, which Mollie rounds per line at 4 decimals.
with balance_transactions as (
    select * from {{ ref('stg_mollie__balance_transactions') }}
),

final as (
    select
        mollie_payment_id,
        -sum(deductions) as mollie_fee,
        min(created_at) as first_fee_at
    from balance_transactions
    where mollie_payment_id is not null
    group by mollie_payment_id
)

select * from final
