-- One row per day (in the reporting time zone) and currency: paid GMV, orders, tickets and fees.
-- An order counts on the day it was paid, also when it was refunded later (refunds are a column).
with orders as (
    select * from {{ ref('stg_platform__orders') }}
),

refunds as (
    select * from {{ ref('stg_platform__refunds') }}
),

payments as (
    select * from {{ ref('stg_platform__payments') }}
),

paid_orders as (
    select
        {{ reporting_date('paid_at') }} as date_day,
        currency,
        count(*) as paid_orders,
        sum(ticket_count) as tickets_sold,
        sum(total_amount) as gmv,
        sum(tickets_amount) as tickets_amount,
        sum(service_fee_amount) as service_fees,
        sum(platform_fee_amount) as platform_fees
    from orders
    where is_paid
    group by 1, 2
),

refunded as (
    select
        {{ reporting_date('r.created_at') }} as date_day,
        p.currency,
        sum(r.amount) as refunded_amount
    from refunds as r
    inner join payments as p on p.payment_id = r.payment_id
    where {{ is_refunded('r.refund_status') }}
    group by 1, 2
),

activity as (
    select date_day, currency from paid_orders
    union
    select date_day, currency from refunded
),

-- every day from a currency's first sale or refund to the as-of date (or its last activity, if later)
days as (
    select cast(d as date) as date_day, c.currency
    from (select currency, min(date_day) as first_day, max(date_day) as last_day from activity group by currency) as c
    cross join lateral generate_series(
        c.first_day, greatest(c.last_day, {{ as_of_date() }}), interval '1 day'
    ) as d
),

final as (
    select
        d.date_day,
        d.currency,
        coalesce(o.paid_orders, 0) as paid_orders,
        coalesce(o.tickets_sold, 0) as tickets_sold,
        cast(coalesce(o.gmv, 0) as numeric(18, 2)) as gmv,
        cast(coalesce(o.tickets_amount, 0) as numeric(18, 2)) as tickets_amount,
        cast(coalesce(o.service_fees, 0) as numeric(18, 2)) as service_fees,
        cast(coalesce(o.platform_fees, 0) as numeric(18, 2)) as platform_fees,
        cast(coalesce(r.refunded_amount, 0) as numeric(18, 2)) as refunded_amount
    from days as d
    left join paid_orders as o on o.date_day = d.date_day and o.currency = d.currency
    left join refunded as r on r.date_day = d.date_day and r.currency = d.currency
)

select * from final
