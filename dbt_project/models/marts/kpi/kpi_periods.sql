-- Every period KPI for today, this week and this month (local time), next to the previous period up
-- to the same point (yesterday until the same hour, last week until the same weekday and hour, ...),
-- with the change in % and its direction. One row per KPI and period. Flows (GMV, orders, fees, new
-- organizations) count within the window; organizations_total is the count at the window's end;
-- active organizations sold (an order created) and active buyers bought (a paid order) in it.
with organizations as (
    select * from {{ ref('stg_platform__organizations') }}
),

events as (
    select * from {{ ref('stg_platform__events') }}
),

now_local as (
    select {{ reporting_ts(as_of_ts()) }} as local_now
),

periods as (
    select
        p.period,
        p.period_start as current_start,
        n.local_now as current_end,
        cast(p.period_start - p.step as timestamp) as previous_start,
        -- the previous period up to the same point; never past its own end (a shorter month)
        least(cast(p.period_start - p.step + (n.local_now - p.period_start) as timestamp), p.period_start)
            as previous_end
    from now_local as n
    cross join lateral (
        values
            ('today', date_trunc('day', n.local_now), interval '1 day', 1),
            ('this_week', date_trunc('week', n.local_now), interval '1 week', 2),
            ('this_month', date_trunc('month', n.local_now), interval '1 month', 3)
    ) as p (period, period_start, step, period_order)
),

-- only orders of the windows are read (int_orders is indexed on paid_at and created_at)
bounds as (
    select min(previous_start) at time zone '{{ var("reporting_timezone") }}' as earliest from periods
),

paid_orders as (
    select * from {{ ref('int_orders') }}
    where is_paid and currency = '{{ var("reporting_currency") }}'
      and paid_at >= (select earliest from bounds)
),

all_orders as (
    select * from {{ ref('int_orders') }}
    where created_at >= (select earliest from bounds)
),

facts as (
    select
        {{ reporting_ts('paid_at') }} as local_at,
        buyer_key,
        total_amount,
        tickets_amount,
        ticket_count,
        platform_fee_amount,
        service_fee_amount,
        mollie_fee
    from paid_orders
),

windows as (
    select p.period, w.window_name, w.window_start, w.window_end
    from periods as p
    cross join lateral (
        values ('current', p.current_start, p.current_end), ('previous', p.previous_start, p.previous_end)
    ) as w (window_name, window_start, window_end)
),

order_windows as (
    select
        w.period,
        w.window_name,
        count(f.local_at) as orders_completed,
        count(distinct f.buyer_key) as active_buyers,
        coalesce(sum(f.total_amount), 0) as gmv,
        coalesce(sum(f.ticket_count), 0) as tickets_sold,
        coalesce(sum(f.tickets_amount), 0) as tickets_amount,
        coalesce(sum(f.platform_fee_amount), 0) as platform_fees,
        coalesce(sum(f.service_fee_amount), 0) as service_fees,
        coalesce(sum(f.mollie_fee), 0) as mollie_fees
    from windows as w
    left join facts as f on f.local_at >= w.window_start and f.local_at < w.window_end
    group by w.period, w.window_name
),

-- what was created, in local time: organizations, events, and orders (any status) by organization
created as (
    select 'organization' as kind, cast(null as bigint) as organization_id, {{ reporting_ts('created_at') }} as local_at
    from organizations
    union all
    select 'event', null, {{ reporting_ts('created_at') }} from events
    union all
    select 'order', organization_id, {{ reporting_ts('created_at') }} from all_orders
),

created_windows as (
    select
        w.period,
        w.window_name,
        count(*) filter (where c.kind = 'organization' and c.local_at >= w.window_start) as new_organizations,
        count(*) filter (where c.kind = 'event' and c.local_at >= w.window_start) as new_events,
        count(*) filter (where c.kind = 'organization') as organizations_total,
        count(distinct c.organization_id) filter (where c.kind = 'order' and c.local_at >= w.window_start)
            as active_organizations
    from windows as w
    -- every organization up to the window's end (the total); events and orders of the window only, where
    -- joining them since the beginning sorted a million and a half rows for the distinct count
    left join created as c
        on c.local_at < w.window_end and (c.kind = 'organization' or c.local_at >= w.window_start)
    group by w.period, w.window_name
),

values_by_window as (
    select
        o.period,
        o.window_name,
        k.kpi,
        k.unit,
        k.kpi_order,
        k.kpi_value
    from order_windows as o
    inner join created_windows as c on c.period = o.period and c.window_name = o.window_name
    cross join lateral (
        values
            ('gmv', 'money', 1, cast(o.gmv as numeric)),
            ('orders_completed', 'count', 2, cast(o.orders_completed as numeric)),
            ('tickets_sold', 'count', 3, cast(o.tickets_sold as numeric)),
            ('average_ticket_price', 'money', 4, round(o.tickets_amount / nullif(o.tickets_sold, 0), 2)),
            ('average_order_value', 'money', 5, round(o.gmv / nullif(o.orders_completed, 0), 2)),
            ('platform_fees', 'money', 6, cast(o.platform_fees as numeric)),
            ('service_fees', 'money', 7, cast(o.service_fees as numeric)),
            ('mollie_fees', 'money', 8, cast(o.mollie_fees as numeric)),
            ('net_platform_revenue', 'money', 9, cast(o.platform_fees + o.service_fees - o.mollie_fees as numeric)),
            ('new_organizations', 'count', 10, cast(c.new_organizations as numeric)),
            ('new_events', 'count', 11, cast(c.new_events as numeric)),
            ('organizations_total', 'count', 12, cast(c.organizations_total as numeric)),
            ('active_organizations', 'count', 13, cast(c.active_organizations as numeric)),
            ('active_buyers', 'count', 14, cast(o.active_buyers as numeric))
    ) as k (kpi, unit, kpi_order, kpi_value)
),

final as (
    select
        cur.kpi,
        cur.period,
        cur.unit,
        case when cur.unit = 'money' then '{{ var("reporting_currency") }}' end as currency,
        cast(p.current_start as date) as period_start,
        cast(cur.kpi_value as numeric(18, 2)) as current_value,
        cast(prev.kpi_value as numeric(18, 2)) as previous_value,
        cast(round(100.0 * (cur.kpi_value - prev.kpi_value) / nullif(prev.kpi_value, 0), 1) as numeric(9, 1))
            as change_pct,
        case
            when cur.kpi_value is null or prev.kpi_value is null then 'n/a'
            when cur.kpi_value > prev.kpi_value then 'up'
            when cur.kpi_value < prev.kpi_value then 'down'
            else 'flat'
        end as direction,
        cur.kpi_order
    from values_by_window as cur
    inner join values_by_window as prev
        on prev.kpi = cur.kpi and prev.period = cur.period and prev.window_name = 'previous'
    inner join periods as p on p.period = cur.period
    where cur.window_name = 'current'
)

select * from final
