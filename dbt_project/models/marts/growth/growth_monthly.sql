-- Paid sales by local month, organization and event status: GMV, orders, tickets and the platform's
-- revenue (service + platform fees, and net of Mollie's fees). Sum over the slices for the platform total.
with paid_orders as (
    select * from {{ ref('int_orders') }}
    where is_paid
),

final as (
    select
        cast(date_trunc('month', paid_date) as date) as month_start,
        organization_id,
        event_status,
        currency,
        count(*) as paid_orders,
        sum(ticket_count) as tickets_sold,
        cast(sum(total_amount) as numeric(18, 2)) as gmv,
        cast(sum(service_fee_amount) as numeric(18, 2)) as service_fees,
        cast(sum(platform_fee_amount) as numeric(18, 2)) as platform_fees,
        cast(sum(service_fee_amount + platform_fee_amount) as numeric(18, 2)) as platform_revenue,
        cast(sum(mollie_fee) as numeric(18, 2)) as mollie_fees,
        cast(sum(service_fee_amount + platform_fee_amount - mollie_fee) as numeric(18, 2)) as net_platform_revenue
    from paid_orders
    group by 1, 2, 3, 4
)

select * from final
