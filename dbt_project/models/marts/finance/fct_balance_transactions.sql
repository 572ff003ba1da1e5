-- Mollie's balance ledger (the hub of every money movement, like dbt_stripe's balance transactions):
-- one row per transaction with what it is about (payment, refund, chargeback, settlement/transfer),
-- the platform order and organization behind it, and the running balance.
--
-- Incremental in fact. The watermark is the newest _loaded_at behind the rows built so far. Mollie lines
-- loaded since are added, and each balance's running balance is carried forward from the last stored row
-- before the earliest of them (a line that arrives late, dated before lines already built, moves the
-- balance of every line after it). Lines whose platform side (payment or order) was loaded since get their
-- order and organization again, keeping their running balance.
{{ config(
    materialized='incremental',
    unique_key='balance_transaction_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[
        {'columns': ['balance_transaction_id'], 'unique': True},
        {'columns': ['balance_id', 'created_at', 'balance_transaction_id']},
        {'columns': ['mollie_payment_id']},
        {'columns': ['order_number']},
    ],
) }}
with transactions as (
    select * from {{ ref('stg_mollie__balance_transactions') }}
),

platform_payments as (
    select * from {{ ref('stg_platform__payments') }}
),

orders as (
    select * from {{ ref('stg_platform__orders') }}
),

enriched as (
    select
        t.balance_transaction_id,
        t.balance_id,
        t.transaction_type,
        t.created_at,
        {{ reporting_date('t.created_at') }} as created_date,
        t.currency,
        cast(t.initial_amount as numeric(18, 2)) as initial_amount,
        cast(t.deductions as numeric(18, 2)) as deductions,
        cast(t.result_amount as numeric(18, 2)) as result_amount,
        t.mollie_payment_id,
        t.mollie_refund_id,
        t.mollie_chargeback_id,
        t.settlement_id,
        o.order_number,
        o.organization_id,
        greatest(t._loaded_at, pp._loaded_at, o._loaded_at) as _loaded_at
    from transactions as t
    left join platform_payments as pp on pp.mollie_payment_id = t.mollie_payment_id
    left join orders as o on o.order_id = pp.order_id
),

{% if not is_incremental() %}

final as (
    select
        *,
        cast(sum(result_amount) over (
            partition by balance_id order by created_at, balance_transaction_id
        ) as numeric(18, 2)) as running_balance
    from enriched
)

{% else %}

watermark as (
    select coalesce(max(_loaded_at), '-infinity') as loaded_at from {{ this }}
),

-- per balance, the earliest Mollie line loaded since: the running balance is recomputed from there on
restarts as (
    select distinct on (t.balance_id) t.balance_id, t.created_at, t.balance_transaction_id
    from transactions as t
    where t._loaded_at > (select loaded_at from watermark)
    order by t.balance_id, t.created_at, t.balance_transaction_id
),

openings as (
    select
        r.*,
        coalesce((
            select b.running_balance
            from {{ this }} as b
            where b.balance_id = r.balance_id
              and (b.created_at, b.balance_transaction_id) < (r.created_at, r.balance_transaction_id)
            order by b.created_at desc, b.balance_transaction_id desc
            limit 1
        ), 0) as opening_balance
    from restarts as r
),

rebalanced as (
    select
        e.*,
        cast(o.opening_balance + sum(e.result_amount) over (
            partition by e.balance_id order by e.created_at, e.balance_transaction_id
        ) as numeric(18, 2)) as running_balance
    from enriched as e
    inner join openings as o on o.balance_id = e.balance_id
    where (e.created_at, e.balance_transaction_id) >= (o.created_at, o.balance_transaction_id)
),

-- platform payments and orders loaded since, and the payments of those orders
changed_orders as (
    select order_id, order_number from orders where _loaded_at > (select loaded_at from watermark)
    union
    select o.order_id, o.order_number
    from platform_payments as p
    inner join orders as o on o.order_id = p.order_id
    where p._loaded_at > (select loaded_at from watermark)
),

changed_payment_ids as (
    select p.mollie_payment_id
    from platform_payments as p
    where p._loaded_at > (select loaded_at from watermark)
       or p.order_id in (select order_id from changed_orders)
),

-- lines now linked to a changed payment or order, or linked to one before: their platform side again
reenriched as (
    select e.*, b.running_balance
    from {{ this }} as b
    inner join enriched as e on e.balance_transaction_id = b.balance_transaction_id
    where (
        b.mollie_payment_id in (select mollie_payment_id from changed_payment_ids)
        or b.order_number in (select order_number from changed_orders)
    )
    and not exists (select 1 from rebalanced as r where r.balance_transaction_id = b.balance_transaction_id)
),

final as (
    select * from rebalanced
    union all
    select * from reenriched
)

{% endif %}

select
    balance_transaction_id,
    balance_id,
    transaction_type,
    created_at,
    created_date,
    currency,
    initial_amount,
    deductions,
    result_amount,
    running_balance,
    mollie_payment_id,
    mollie_refund_id,
    mollie_chargeback_id,
    settlement_id,
    order_number,
    organization_id,
    _loaded_at
from final
