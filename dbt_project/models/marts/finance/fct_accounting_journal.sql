-- The double-entry journal finance books each month from, one row per line, on the accounts of the
-- account_mapping seed. Two entries per Mollie settlement, built from the marts that reconcile it:
--
-- settlement entry (on the settlement date): what the settlement holds. The buyers' money that came in is
--   credited to what is owed to organizers and to the platform's service and platform fees; refunds,
--   chargebacks and Mollie's costs are debited; what Mollie reports it pays out is debited to Mollie
--   clearing. Where Mollie's figures and the platform's disagree, the difference is put on suspense: one
--   line per listed discrepancy, and a line for any difference no discrepancy explains. It is never
--   balanced away silently.
-- payout entry (on the day of the transfer): the bank is debited and Mollie clearing credited with what
--   was transferred, so clearing holds what Mollie still owes.
--
-- A settlement still open (Mollie is still adding to it) is not booked yet.
with settlements as (
    select * from {{ ref('fct_settlement_reconciliation') }}
    where status <> 'open'
),

-- two reads of the items, each filtered: one shared CTE would be materialized whole (a million rows at 1M orders)
settled_payments as (
    select * from {{ ref('fct_settlement_items') }}
    where item_type in ('payment', 'capture') and platform_amount is not null
      and settlement_id in (select settlement_id from settlements)
),

discrepancies as (
    select * from {{ ref('fct_settlement_items') }}
    where discrepancy_reason is not null
      and settlement_id in (select settlement_id from settlements)
),

orders as (
    select * from {{ ref('int_orders') }}
),

payouts as (
    select * from {{ ref('fct_payouts') }}
    where transfer_transaction_id is not null
),

accounts as (
    select * from {{ ref('account_mapping') }}
),

-- the platform's fees on the payments each settlement holds: the rest of the money is the organizers'
settled_fees as (
    select
        i.settlement_id,
        sum(o.service_fee_amount) as service_fees,
        sum(o.platform_fee_amount) as platform_fees
    from settled_payments as i
    inner join orders as o on o.order_number = i.order_number
    group by i.settlement_id
),

settlement_money as (
    select
        s.settlement_id,
        s.settlement_reference,
        s.settlement_date,
        s.currency,
        s.reported_amount,
        s.platform_payments_amount,
        s.platform_refunds_amount,
        s.chargebacks_amount,
        -- Mollie's cost lines carry 4 decimals and Mollie rounds the settlement's total, not each line (the
        -- settlement identity): the costs booked are what that rounding leaves, in cents
        s.platform_payments_amount - s.platform_refunds_amount - s.chargebacks_amount - s.expected_amount
            as costs_amount,
        coalesce(f.service_fees, 0) as service_fees,
        coalesce(f.platform_fees, 0) as platform_fees,
        -- what Mollie reports minus what the platform's records make of the settlement
        s.difference as suspense_amount
    from settlements as s
    left join settled_fees as f on f.settlement_id = s.settlement_id
),

-- the discrepancies that explain a difference, each on its own suspense line
explained as (
    select
        i.settlement_id,
        i.mollie_item_id,
        i.discrepancy_reason,
        sum(i.mollie_amount - coalesce(i.platform_amount, 0)) as amount
    from discrepancies as i
    group by i.settlement_id, i.mollie_item_id, i.discrepancy_reason
    having sum(i.mollie_amount - coalesce(i.platform_amount, 0)) <> 0
),

-- signed amounts: positive is a debit, negative a credit
settlement_lines as (
    select settlement_id, 1 as line_order, 'mollie_clearing' as account_key, reported_amount as amount,
           'Payout reported by Mollie' as description, cast(null as text) as mollie_item_id
    from settlement_money
    union all
    select settlement_id, 2, 'payment_costs', costs_amount, 'Mollie costs', null
    from settlement_money
    union all
    select settlement_id, 3, 'refunds', platform_refunds_amount, 'Refunds to buyers', null
    from settlement_money
    union all
    select settlement_id, 4, 'chargebacks', chargebacks_amount, 'Chargebacks', null
    from settlement_money
    union all
    select settlement_id, 5, 'organizer_payables', -(platform_payments_amount - service_fees - platform_fees),
           'Ticket money owed to organizers', null
    from settlement_money
    union all
    select settlement_id, 6, 'service_fee_revenue', -service_fees, 'Service fees', null
    from settlement_money
    union all
    select settlement_id, 7, 'platform_fee_revenue', -platform_fees, 'Platform fees', null
    from settlement_money
    union all
    select settlement_id, 8, 'suspense', -amount, 'Discrepancy: ' || discrepancy_reason, mollie_item_id
    from explained
    union all
    select m.settlement_id, 9, 'suspense', -(m.suspense_amount - coalesce(e.amount, 0)),
           'Difference no listed discrepancy explains', null
    from settlement_money as m
    left join (select settlement_id, sum(amount) as amount from explained group by settlement_id) as e
        on e.settlement_id = m.settlement_id
),

settlement_entries as (
    select
        l.settlement_id || ':settlement' as entry_id,
        'settlement' as entry_type,
        m.settlement_date as entry_date,
        l.line_order,
        l.account_key,
        l.amount,
        m.currency,
        l.description,
        m.settlement_reference,
        l.settlement_id,
        l.mollie_item_id
    from settlement_lines as l
    inner join settlement_money as m on m.settlement_id = l.settlement_id
),

payout_entries as (
    select
        p.settlement_id || ':payout' as entry_id,
        'payout' as entry_type,
        {{ reporting_date('p.transferred_at') }} as entry_date,
        l.line_order,
        l.account_key,
        l.sign * p.transferred_amount as amount,
        p.currency,
        'Payout of settlement ' || p.settlement_reference as description,
        p.settlement_reference,
        p.settlement_id,
        p.transfer_id as mollie_item_id
    from payouts as p
    cross join (values (1, 'bank', 1), (2, 'mollie_clearing', -1)) as l (line_order, account_key, sign)
),

lines as (
    select * from settlement_entries
    union all
    select * from payout_entries
),

final as (
    select
        l.entry_id || ':' || row_number() over (
            partition by l.entry_id order by l.line_order, l.mollie_item_id
        ) as journal_line_id,
        l.entry_id,
        l.entry_type,
        l.entry_date,
        cast(date_trunc('month', l.entry_date) as date) as entry_month,
        l.account_key,
        a.account_code,
        a.account_name,
        cast(greatest(l.amount, 0) as numeric(18, 2)) as debit,
        cast(greatest(-l.amount, 0) as numeric(18, 2)) as credit,
        l.currency,
        l.description,
        l.settlement_reference,
        l.settlement_id,
        l.mollie_item_id
    from lines as l
    left join accounts as a on a.account_key = l.account_key
    where l.amount <> 0
)

select * from final
