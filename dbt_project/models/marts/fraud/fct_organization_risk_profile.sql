-- Per organization, the signals fraud review starts from: volume, refund and failed-payment rates,
-- chargebacks, account age, the payment methods its buyers use, and tickets scanned on several devices.
-- Refunds for cancelled events are the organizer doing the right thing, not a signal: they are left out.
with organizations as (
    select * from {{ ref('int_organizations') }}
),

orders as (
    select * from {{ ref('int_orders') }}
),

chargebacks as (
    select * from {{ ref('stg_mollie__chargebacks') }}
),

scan_conflicts as (
    select * from {{ ref('int_scan_conflicts') }}
),

order_stats as (
    select
        organization_id,
        count(*) as orders,
        count(*) filter (where is_paid) as paid_orders,
        count(*) filter (where is_paid and refund_count > 0 and event_status <> 'cancelled') as refunded_orders,
        cast(sum(payment_attempts) as bigint) as payment_attempts,
        cast(sum(failed_payments) as bigint) as failed_payments,
        array_to_string(array_agg(distinct payment_method) filter (where payment_method is not null), ', ')
            as payment_methods
    from orders
    group by organization_id
),

chargeback_stats as (
    select o.organization_id, count(*) as chargebacks, sum(c.amount) as charged_back_amount
    from chargebacks as c
    inner join orders as o on o.mollie_payment_id = c.mollie_payment_id
    group by o.organization_id
),

scan_stats as (
    select organization_id, count(*) as scan_conflicts
    from scan_conflicts
    group by organization_id
),

final as (
    select
        g.organization_id,
        g.organization_name,
        g.organization_status,
        g.lifecycle_status,
        (({{ as_of_date() }}) - g.created_date) as account_age_days,
        coalesce(s.orders, 0) as orders,
        coalesce(s.paid_orders, 0) as paid_orders,
        coalesce(s.refunded_orders, 0) as refunded_orders,
        cast(round(1.0 * s.refunded_orders / nullif(s.paid_orders, 0), 4) as numeric(9, 4)) as refund_rate,
        coalesce(s.failed_payments, 0) as failed_payments,
        cast(round(1.0 * s.failed_payments / nullif(s.payment_attempts, 0), 4) as numeric(9, 4))
            as failed_payment_rate,
        coalesce(c.chargebacks, 0) as chargebacks,
        cast(coalesce(c.charged_back_amount, 0) as numeric(18, 2)) as charged_back_amount,
        coalesce(s.payment_methods, '') as payment_methods,
        coalesce(sc.scan_conflicts, 0) as scan_conflicts
    from organizations as g
    left join order_stats as s on s.organization_id = g.organization_id
    left join chargeback_stats as c on c.organization_id = g.organization_id
    left join scan_stats as sc on sc.organization_id = g.organization_id
)

select * from final
