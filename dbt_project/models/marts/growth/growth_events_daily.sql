-- Active events per local day: events that sold (had an order created) that day, by organization, event
-- status and currency; with the orders and paid GMV of the day.
--
-- Incremental by day: a run rebuilds, whole, every day that an order or event loaded since the last build
-- touches (rows whose _loaded_at is newer than the newest one behind the rows built so far). The key is the
-- day alone, so an event that changes status, or an order refunded months later, leaves no stale row.
-- Partitioned by day in Dagster (tag `daily`): a partition's run, or a backfill's range of days in one run, rebuilds
-- its window whole (dbt vars partition_start/partition_end) together with the days loads touched since the last
-- build, so the watermark never passes a row that is not built.
{{ config(
    materialized='incremental',
    unique_key='date_day',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[{'columns': ['date_day']}],
    tags=['daily'],
    pre_hook="{{ clear_partition_window('date_day') }}",
) }}
{% set wm = incremental_watermark(uses_settings=true) %}
{% set window = partition_window() if wm else none %}
with

{% if wm %}
touched_days as (
    select distinct created_date
    from {{ ref('int_orders') }}
    where _loaded_at > {{ wm }}
),
{% endif %}

orders as (
    select * from {{ ref('int_orders') }}
    {% if wm %}
    where created_date in (select created_date from touched_days)
    {% if window %} or (created_date >= {{ window.start }} and created_date < {{ window.end }}) {% endif %}
    {% endif %}
),

final as (
    select
        created_date as date_day,
        organization_id,
        event_status,
        currency,
        count(distinct event_id) as active_events,
        count(*) as orders,
        count(*) filter (where is_paid) as paid_orders,
        cast(coalesce(sum(total_amount) filter (where is_paid), 0) as numeric(18, 2)) as paid_gmv,
        max(_loaded_at) as _loaded_at
    from orders
    group by 1, 2, 3, 4
)

select * from final
