-- Per organization and currency: paid GMV, the platform's fees, Mollie's fees on its payments, net
-- revenue for the platform, refunds, and the last payment.
with organizations as (
    select * from {{ ref('int_organizations') }}
),

paid_orders as (
    select * from {{ ref('int_orders') }}
    where is_paid
),

by_org as (
    select
        organization_id,
        currency,
        count(*) as paid_orders,
        sum(total_amount) as gmv,
        sum(service_fee_amount) as service_fees,
        sum(platform_fee_amount) as platform_fees,
        sum(mollie_fee) as mollie_fees,
        sum(refunded_amount) as refunded_amount,
        max(paid_at) as last_payment_at
    from paid_orders
    group by 1, 2
),

final as (
    select
        o.organization_id,
        o.organization_name,
        o.organization_status,
        b.currency,
        b.paid_orders,
        cast(b.gmv as numeric(18, 2)) as gmv,
        cast(b.service_fees as numeric(18, 2)) as service_fees,
        cast(b.platform_fees as numeric(18, 2)) as platform_fees,
        cast(b.mollie_fees as numeric(18, 2)) as mollie_fees,
        cast(b.service_fees + b.platform_fees - b.mollie_fees as numeric(18, 2)) as net_revenue,
        cast(b.refunded_amount as numeric(18, 2)) as refunded_amount,
        b.last_payment_at
    from by_org as b
    inner join organizations as o on o.organization_id = b.organization_id
)

select * from final
