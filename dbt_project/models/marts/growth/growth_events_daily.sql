-- Active events per local day: events that sold (had an order created) that day, by organization and
-- event status; with the orders and paid GMV of the day.
{{ config(materialized='incremental', unique_key=['date_day', 'organization_id', 'event_status'],
          incremental_strategy='delete+insert', on_schema_change='fail') }}
with orders as (
    select * from {{ ref('int_orders') }}
    {% if is_incremental() %}
    -- late orders and status changes land within days; rebuild the last week of days
    where created_date >= (select max(date_day) - 7 from {{ this }})
    {% endif %}
),

final as (
    select
        created_date as date_day,
        organization_id,
        event_status,
        count(distinct event_id) as active_events,
        count(*) as orders,
        count(*) filter (where is_paid) as paid_orders,
        cast(coalesce(sum(total_amount) filter (where is_paid), 0) as numeric(18, 2)) as paid_gmv
    from orders
    group by 1, 2, 3
)

select * from final
