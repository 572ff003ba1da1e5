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

activity as (
    select created_at as at, 'order' as kind, paid_at is not null as is_paid from orders
    union all
    select scanned_at, 'scan', false from scans
    union all
    select created_at, 'webhook', false from deliveries
),

local_activity as (
    select
        cast(extract(hour from at at time zone '{{ var("reporting_timezone") }}') as int) as hour_of_day,
        cast(extract(isodow from at at time zone '{{ var("reporting_timezone") }}') as int) as iso_weekday,
        kind,
        is_paid
    from activity
),

-- counted before the 168 slots are joined: joining first sorted every row of activity (millions) to group it
counted as (
    select
        hour_of_day,
        iso_weekday,
        count(*) filter (where kind = 'order') as orders,
        count(*) filter (where kind = 'order' and is_paid) as paid_orders,
        count(*) filter (where kind = 'scan') as scans,
        count(*) filter (where kind = 'webhook') as webhook_deliveries
    from local_activity
    group by hour_of_day, iso_weekday
),

final as (
    select
        h.hour_of_day,
        d.iso_weekday,
        coalesce(c.orders, 0) as orders,
        coalesce(c.paid_orders, 0) as paid_orders,
        coalesce(c.scans, 0) as scans,
        coalesce(c.webhook_deliveries, 0) as webhook_deliveries
    from generate_series(0, 23) as h (hour_of_day)
    cross join generate_series(1, 7) as d (iso_weekday)
    left join counted as c on c.hour_of_day = h.hour_of_day and c.iso_weekday = d.iso_weekday
)

select * from final
