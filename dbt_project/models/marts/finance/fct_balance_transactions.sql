-- Mollie's balance ledger (the hub of every money movement, like dbt_stripe's balance transactions):
-- one row per transaction with what it is about (payment, refund, chargeback, settlement/transfer),
-- the platform order and organization behind it, and the running balance.
{{ config(materialized='incremental', unique_key='balance_transaction_id', incremental_strategy='delete+insert',
          on_schema_change='fail') }}
with transactions as (
    select * from {{ ref('stg_mollie__balance_transactions') }}
),

platform_payments as (
    select * from {{ ref('stg_platform__payments') }}
),

orders as (
    select * from {{ ref('int_orders') }}
),

final as (
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
        cast(sum(t.result_amount) over (
            partition by t.balance_id order by t.created_at, t.balance_transaction_id
        ) as numeric(18, 2)) as running_balance,
        t.mollie_payment_id,
        t.mollie_refund_id,
        t.mollie_chargeback_id,
        t.settlement_id,
        o.order_number,
        o.organization_id
    from transactions as t
    left join platform_payments as pp on pp.mollie_payment_id = t.mollie_payment_id
    left join orders as o on o.order_id = pp.order_id
)

select * from final
-- the running balance needs the whole ledger: the model rebuilds rows only when new ones arrive
{% if is_incremental() %}
where balance_id in (
    select balance_id from final
    where balance_transaction_id not in (select balance_transaction_id from {{ this }})
)
{% endif %}
