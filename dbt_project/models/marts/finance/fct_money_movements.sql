-- Every money movement on the Mollie balance (Mollie's ledger: payments, refunds, chargebacks, fees booked
-- on their own, payouts), with the platform's order, organization, event and method behind it, the
-- settlement it was paid out in and how it reconciles: what `boxoffice export transactions` writes.
-- Gross is the movement's amount, fees what Mollie took off it, net what reached the balance.
-- A view: an export reads the slice it asks for, and the rows are never stored twice.
{{ config(materialized='view') }}
with ledger as (
    select * from {{ ref('fct_balance_transactions') }}
),

orders as (
    select * from {{ ref('int_orders') }}
),

organizations as (
    select * from {{ ref('stg_platform__organizations') }}
),

events as (
    select * from {{ ref('stg_platform__events') }}
),

payments as (
    select * from {{ ref('fct_payment_reconciliation') }}
),

settlements as (
    select * from {{ ref('fct_settlement_reconciliation') }}
),

settled_items as (
    select * from {{ ref('fct_settlement_items') }}
    where item_type in ('refund', 'chargeback')
),

final as (
    select
        l.balance_transaction_id as movement_id,
        {{ money_movement_type('l.transaction_type') }} as movement_type,
        l.transaction_type as mollie_type,
        l.created_at as booked_at,
        {{ reporting_ts('l.created_at') }} as booked_at_local,
        l.created_date as booked_date,
        l.order_number,
        l.organization_id,
        g.organization_name,
        o.event_id,
        e.event_name,
        o.payment_method,
        o.buyer_key,
        l.mollie_payment_id,
        coalesce(l.mollie_refund_id, l.mollie_chargeback_id) as mollie_object_id,
        l.initial_amount as gross_amount,
        -l.deductions as fees,
        l.result_amount as net_amount,
        l.currency,
        s.settlement_reference,
        case
            when l.settlement_id is not null then
                case when s.is_reconciled then 'matched' else 'settlement_difference' end
            else p.match_status
        end as reconciliation_status
    from ledger as l
    left join orders as o on o.order_number = l.order_number
    left join organizations as g on g.organization_id = l.organization_id
    left join events as e on e.event_id = o.event_id
    left join payments as p on p.mollie_payment_id = l.mollie_payment_id
    left join settled_items as i
        on i.mollie_item_id = coalesce(l.mollie_refund_id, l.mollie_chargeback_id)
    left join settlements as s on s.settlement_id = coalesce(l.settlement_id, i.settlement_id, p.settlement_id)
)

select * from final
