-- Peak times: orders, paid orders, door scans and webhook deliveries by local hour of day and weekday.
with orders as (
    select * from {{ ref('stg_platform__orders') }}
),

scans as (
    select * from {{ ref('stg_platform__scans') }}
),

deliveries as (
    select * from {{ ref('stg_platform__webhook_deliveries') }}
),

activity as not materialized (
    select created_at as at, 'order' as kind, paid_at is not null as is_paid from orders
    union all
    select scanned_at, 'scan', false from scans
    union all
    select created_at, 'webhook', false from deliveries
),

-- Counted per UTC quarter hour first, then each quarter hour placed in local time once: the time zone
-- conversion per row was most of this model's time (millions of rows, 168 cells). Every zone's offset and its
-- changes fall on whole quarter hours, bar local mean times before a zone was standardized: a quarter hour that
-- such a change cuts is counted row by row below.
quarter_hours as (
    select
        {{ quarter_hour('at') }} as quarter_start,
        count(*) filter (where kind = 'order') as orders,
        count(*) filter (where kind = 'order' and is_paid) as paid_orders,
        count(*) filter (where kind = 'scan') as scans,
        count(*) filter (where kind = 'webhook') as webhook_deliveries
    from activity
    group by 1
),

-- the quarter hour's first and last instant in local time: a quarter hour is cut when the offset changes within
-- it or a local hour starts within it
placed as (
    select
        q.*,
        cast(extract(hour from l.first_local) as int) as hour_of_day,
        cast(extract(isodow from l.first_local) as int) as iso_weekday,
        l.last_local - l.first_local <> interval '15 minutes' - interval '1 microsecond'
            or date_trunc('hour', l.first_local) <> date_trunc('hour', l.last_local) as is_cut
    from quarter_hours as q
    cross join lateral (
        select
            {{ reporting_ts('q.quarter_start') }} as first_local,
            {{ reporting_ts("(q.quarter_start + interval '15 minutes' - interval '1 microsecond')") }} as last_local
    ) as l
),

-- read only when a quarter hour is cut (a one-time filter skips the scan otherwise)
cut_rows as (
    select
        cast(extract(hour from {{ reporting_ts('at') }}) as int) as hour_of_day,
        cast(extract(isodow from {{ reporting_ts('at') }}) as int) as iso_weekday,
        kind,
        is_paid
    from activity
    where (select count(*) from placed where is_cut) > 0
      and {{ quarter_hour('at') }} in (select quarter_start from placed where is_cut)
),

counted as (
    select
        hour_of_day,
        iso_weekday,
        sum(orders) as orders,
        sum(paid_orders) as paid_orders,
        sum(scans) as scans,
        sum(webhook_deliveries) as webhook_deliveries
    from (
        select hour_of_day, iso_weekday, orders, paid_orders, scans, webhook_deliveries
        from placed
        where not is_cut
        union all
        select
            hour_of_day,
            iso_weekday,
            count(*) filter (where kind = 'order'),
            count(*) filter (where kind = 'order' and is_paid),
            count(*) filter (where kind = 'scan'),
            count(*) filter (where kind = 'webhook')
        from cut_rows
        group by hour_of_day, iso_weekday
    ) as parts
    group by hour_of_day, iso_weekday
),

final as (
    select
        h.hour_of_day,
        d.iso_weekday,
        cast(coalesce(c.orders, 0) as bigint) as orders,
        cast(coalesce(c.paid_orders, 0) as bigint) as paid_orders,
        cast(coalesce(c.scans, 0) as bigint) as scans,
        cast(coalesce(c.webhook_deliveries, 0) as bigint) as webhook_deliveries
    from generate_series(0, 23) as h (hour_of_day)
    cross join generate_series(1, 7) as d (iso_weekday)
    left join counted as c on c.hour_of_day = h.hour_of_day and c.iso_weekday = d.iso_weekday
)

select * from final
