-- The monthly summary finance books from: gross revenue (paid GMV), refunds, the platform's fees,
-- Mollie's costs and the platform's net revenue, by local month of payment.
with paid_orders as (
    select * from {{ ref('int_orders') }}
    where is_paid
),

final as (
    select
        cast(date_trunc('month', paid_date) as date) as month_start,
        currency,
        count(*) as paid_orders,
        cast(sum(total_amount) as numeric(18, 2)) as gross_revenue,
        cast(sum(refunded_amount) as numeric(18, 2)) as refunded_amount,
        cast(sum(service_fee_amount) as numeric(18, 2)) as service_fees,
        cast(sum(platform_fee_amount) as numeric(18, 2)) as platform_fees,
        cast(sum(mollie_fee) as numeric(18, 2)) as mollie_costs,
        cast(sum(service_fee_amount + platform_fee_amount - mollie_fee) as numeric(18, 2)) as net_revenue
    from paid_orders
    group by 1, 2
)

select * from final
