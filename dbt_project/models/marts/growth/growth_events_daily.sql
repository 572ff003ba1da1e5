-- Active events per local day: events that sold (had an order created) that day, by organization, event
-- status and currency; with the orders and paid GMV of the day.
--
-- Incremental by day: a run rebuilds, whole, every day that an order or event loaded since the last build
-- touches (rows whose _loaded_at is newer than the newest one behind the rows built so far). The key is the
-- day alone, so an event that changes status, or an order refunded months later, leaves no stale row.
{{ config(
    materialized='incremental',
    unique_key='date_day',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[{'columns': ['date_day']}],
) }}
{% set wm = incremental_watermark(uses_settings=true) %}
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
    {% if wm %} where created_date in (select created_date from touched_days) {% endif %}
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
