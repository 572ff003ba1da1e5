-- One row per settlement with the bank transfer that paid it out (Mollie's outgoing-transfer balance
-- transaction): the transfer must equal the settlement amount.
with settlements as (
    select * from {{ ref('stg_mollie__settlements') }}
),

transfers as (
    select * from {{ ref('stg_mollie__balance_transactions') }}
    where transaction_type = 'outgoing-transfer'
),

final as (
    select
        s.settlement_id,
        s.settlement_reference,
        s.settlement_status,
        s.settled_at,
        s.currency,
        cast(s.amount as numeric(18, 2)) as settlement_amount,
        t.balance_transaction_id as transfer_transaction_id,
        t.context->>'transferId' as transfer_id,
        t.created_at as transferred_at,
        cast(-t.result_amount as numeric(18, 2)) as transferred_amount,
        cast(s.amount + coalesce(t.result_amount, 0) as numeric(18, 2)) as untransferred_amount,
        t.balance_transaction_id is not null and s.amount + t.result_amount = 0 as is_paid_out
    from settlements as s
    left join transfers as t on t.settlement_id = s.settlement_id
)

select * from final
