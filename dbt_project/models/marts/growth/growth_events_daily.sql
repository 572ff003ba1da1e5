-- Active events per local day: events that sold (had an order created) that day, by organization, event
-- status and currency; with the orders and paid GMV of the day.
--
-- Incremental by day and organization: a run rebuilds, whole, every (day, organization) that an order
-- int_orders rebuilt since the last build is in, now or as it was (int_orders__replaced, macro
-- changed_versions): an event that changes status, an order refunded months later or moved to another day leaves
-- no stale row. Built whole when int_orders' log cannot tell every change since (macro changes_watermark).
-- Partitioned by day in Dagster (tag `daily`): a partition's run, or a backfill's range of days in one run, rebuilds
-- its window whole (dbt vars partition_start/partition_end) together with the groups changes touched since the
-- last build, so the watermark never passes a row that is not built.
{{ config(
    materialized='incremental',
    unique_key=['date_day', 'organization_id'],
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[{'columns': ['date_day']}],
    tags=['daily'],
    pre_hook=[
        "{{ clear_for_changes(ref('int_orders'), 'order_id', ['created_date', 'organization_id'], "
            ~ "['date_day', 'organization_id']) }}",
        "{{ clear_partition_window('date_day') }}",
    ],
    post_hook="{{ index_if_missing('day_organization', '(date_day, organization_id)') }}",
) }}
{% set wm = changes_watermark(ref('int_orders'), 'order_id') %}
{% set window = partition_window() if wm else none %}
with

{% if wm %}
touched as (
    select distinct created_date, organization_id
    from ({{ changed_versions(ref('int_orders'), 'order_id', ['created_date', 'organization_id'], wm) }}) as changed
),
{% endif %}

orders as (
    select * from {{ ref('int_orders') }}
    {% if wm %}
    where (created_date, organization_id) in (select created_date, organization_id from touched)
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
        now() as _loaded_at
    from orders
    group by 1, 2, 3, 4
)

select * from final
