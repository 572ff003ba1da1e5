-- One row per Mollie settlement: what Mollie paid out next to what the platform's own records say
-- it should have paid out (its amounts for the settlement's payments, minus its refunds, minus the
-- chargebacks, minus Mollie's costs from the settlement periods).
with settlements as (
    select * from {{ ref('stg_mollie__settlements') }}
),

lines as (
    select * from {{ ref('int_mollie__settlement_lines') }}
),

items as (
    select * from {{ ref('int_settlement_items') }}
),

costs as (
    select
        settlement_id,
        sum(amount_gross) as costs_amount
    from lines
    where line_type = 'costs'
    group by settlement_id
),

item_totals as (
    select
        settlement_id,
        count(*) filter (where item_type in ('payment', 'capture')) as payment_count,
        count(*) filter (where item_type = 'refund') as refund_count,
        count(*) filter (where item_type = 'chargeback') as chargeback_count,
        coalesce(sum(platform_amount) filter (where item_type in ('payment', 'capture')), 0) as platform_payments_amount,
        coalesce(-sum(platform_amount) filter (where item_type = 'refund'), 0) as platform_refunds_amount,
        coalesce(-sum(mollie_amount) filter (where item_type = 'chargeback'), 0) as chargebacks_amount,
        count(*) filter (where discrepancy_reason is not null) as discrepancy_count,
        coalesce(sum(item_difference) filter (where discrepancy_reason is not null), 0) as explained_difference
    from items
    group by settlement_id
),

joined as (
    select
        s.settlement_id,
        s.settlement_reference,
        s.settlement_status as status,
        s.created_at,
        s.settled_at,
        s.currency,
        s.amount as reported_amount,
        coalesce(t.payment_count, 0) as payment_count,
        coalesce(t.refund_count, 0) as refund_count,
        coalesce(t.chargeback_count, 0) as chargeback_count,
        coalesce(t.platform_payments_amount, 0) as platform_payments_amount,
        coalesce(t.platform_refunds_amount, 0) as platform_refunds_amount,
        coalesce(t.chargebacks_amount, 0) as chargebacks_amount,
        coalesce(c.costs_amount, 0) as costs_amount,
        coalesce(t.discrepancy_count, 0) as discrepancy_count,
        coalesce(t.explained_difference, 0) as explained_difference
    from settlements as s
    left join item_totals as t on t.settlement_id = s.settlement_id
    left join costs as c on c.settlement_id = s.settlement_id
),

final as (
    select
        settlement_id,
        settlement_reference,
        status,
        created_at,
        settled_at,
        {{ reporting_date('coalesce(settled_at, created_at)') }} as settlement_date,
        currency,
        reported_amount,
        cast(round(platform_payments_amount - platform_refunds_amount - chargebacks_amount - costs_amount, 2)
            as numeric(18, 2)) as expected_amount,
        cast(reported_amount - round(
            platform_payments_amount - platform_refunds_amount - chargebacks_amount - costs_amount, 2)
            as numeric(18, 2)) as difference,
        abs(reported_amount - round(
            platform_payments_amount - platform_refunds_amount - chargebacks_amount - costs_amount, 2))
            < {{ var('reconciliation_tolerance') }} as is_reconciled,
        discrepancy_count,
        cast(explained_difference as numeric(18, 2)) as explained_difference,
        payment_count,
        refund_count,
        chargeback_count,
        cast(platform_payments_amount as numeric(18, 2)) as platform_payments_amount,
        cast(platform_refunds_amount as numeric(18, 2)) as platform_refunds_amount,
        cast(chargebacks_amount as numeric(18, 2)) as chargebacks_amount,
        cast(costs_amount as numeric(18, 4)) as costs_amount
    from joined
)

select
    *,
    cast(difference - explained_difference as numeric(18, 2)) as unexplained_difference
from final
