-- The admin dashboard's headline numbers as of one instant (macro as_of_ts), one row.
-- Money is in var reporting_currency; "this week/month" are local to var reporting_timezone.
with organizations as (
    select * from {{ ref('int_organizations') }}
),

events as (
    select * from {{ ref('stg_platform__events') }}
),

paid_orders as (
    select * from {{ ref('int_orders') }}
    where is_paid and currency = '{{ var("reporting_currency") }}'
),

bounds as (
    select
        {{ as_of_ts() }} as as_of,
        {{ as_of_date() }} as as_of_date,
        cast(date_trunc('week', {{ as_of_date() }}) as date) as week_start,
        cast(date_trunc('month', {{ as_of_date() }}) as date) as month_start,
        cast(date_trunc('month', {{ as_of_date() }}) - interval '1 month' as date) as last_month_start
),

org_kpis as (
    select
        count(*) as organizations_total,
        count(*) filter (where o.lifecycle_status = 'active') as organizations_active,
        count(*) filter (where o.lifecycle_status = 'suspended') as organizations_suspended,
        count(*) filter (where o.lifecycle_status = 'churned') as organizations_churned,
        count(*) filter (where o.created_date >= b.week_start) as organizations_new_this_week,
        count(*) filter (where o.created_date >= b.month_start) as organizations_new_this_month,
        count(*) filter (where o.created_date < b.month_start) as organizations_before_this_month
    from organizations as o
    cross join bounds as b
    where o.created_at <= b.as_of
),

event_kpis as (
    select
        count(*) as events_total,
        count(*) filter (where e.event_status = 'live') as events_live,
        count(*) filter (
            where e.event_status = 'live' and e.starts_at > b.as_of and e.starts_at <= b.as_of + interval '30 days'
        ) as events_upcoming_30d,
        count(*) filter (
            where {{ reporting_period('month', 'e.starts_at') }} = b.month_start
        ) as events_this_month
    from events as e
    cross join bounds as b
),

order_kpis as (
    select
        sum(o.total_amount) as gmv_total,
        sum(o.total_amount) filter (where o.paid_date >= b.month_start) as gmv_this_month,
        sum(o.total_amount) filter (
            where o.paid_date >= b.last_month_start and o.paid_date < b.month_start
        ) as gmv_last_month,
        sum(o.ticket_count) as tickets_sold_total,
        sum(o.ticket_count) filter (where o.paid_date >= b.month_start) as tickets_sold_this_month,
        sum(o.tickets_amount) as tickets_amount_total,
        count(*) as orders_completed_total,
        sum(o.platform_fee_amount) as platform_fees_total,
        sum(o.service_fee_amount) as service_fees_total,
        sum(o.mollie_fee) as mollie_fees_total
    from paid_orders as o
    cross join bounds as b
    where o.paid_at <= b.as_of
),

final as (
    select
        b.as_of,
        b.as_of_date,
        '{{ var("reporting_currency") }}' as currency,
        og.organizations_total,
        og.organizations_active,
        og.organizations_suspended,
        og.organizations_churned,
        og.organizations_new_this_week,
        og.organizations_new_this_month,
        cast(round(100.0 * og.organizations_new_this_month
            / nullif(og.organizations_before_this_month, 0), 1) as numeric(9, 1)) as organizations_mom_growth_pct,
        ev.events_total,
        ev.events_live,
        ev.events_upcoming_30d,
        ev.events_this_month,
        cast(round(1.0 * ev.events_total / nullif(og.organizations_total, 0), 2) as numeric(9, 2))
            as events_per_organization,
        cast(coalesce(od.gmv_total, 0) as numeric(18, 2)) as gmv_total,
        cast(coalesce(od.gmv_this_month, 0) as numeric(18, 2)) as gmv_this_month,
        cast(coalesce(od.gmv_last_month, 0) as numeric(18, 2)) as gmv_last_month,
        cast(round(100.0 * (coalesce(od.gmv_this_month, 0) - od.gmv_last_month)
            / nullif(od.gmv_last_month, 0), 1) as numeric(9, 1)) as gmv_change_pct,
        coalesce(od.tickets_sold_total, 0) as tickets_sold_total,
        coalesce(od.tickets_sold_this_month, 0) as tickets_sold_this_month,
        cast(round(od.tickets_amount_total / nullif(od.tickets_sold_total, 0), 2) as numeric(18, 2))
            as average_ticket_price,
        od.orders_completed_total,
        cast(round(od.gmv_total / nullif(od.orders_completed_total, 0), 2) as numeric(18, 2))
            as average_order_value,
        cast(coalesce(od.platform_fees_total, 0) as numeric(18, 2)) as platform_fees_total,
        cast(coalesce(od.service_fees_total, 0) as numeric(18, 2)) as service_fees_total,
        cast(coalesce(od.mollie_fees_total, 0) as numeric(18, 2)) as mollie_fees_total,
        cast(coalesce(od.platform_fees_total, 0) + coalesce(od.service_fees_total, 0)
            - coalesce(od.mollie_fees_total, 0) as numeric(18, 2)) as net_platform_revenue_total
    from bounds as b
    cross join org_kpis as og
    cross join event_kpis as ev
    cross join order_kpis as od
)

select * from final
