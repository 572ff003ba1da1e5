-- One row per buyer (salted hash of the email; no PII): first and last purchase, orders, spend.
--
-- Incremental by buyer: a run rebuilds the buyers whose orders int_buyer_orders numbered again since, and those
-- an order int_orders rebuilt since belonged to before (a buyer left with no paid order is removed).
{{ config(
    materialized='incremental',
    unique_key='buyer_key',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
    pre_hook=[
        "{{ clear_when_built_whole(changes_watermark(ref('int_orders'), 'order_id')) }}",
        "{{ clear_changed_groups(ref('int_orders'), 'order_id', ['buyer_key'], ['buyer_key']) }}",
    ],
) }}
{% set wm = changes_watermark(ref('int_orders'), 'order_id') %}
with

{% if wm %}
changed as (
    select buyer_key from {{ ref('int_buyer_orders') }} where _loaded_at > {{ wm }}
    union all
    select buyer_key from ({{ changed_versions(ref('int_orders'), 'order_id', ['buyer_key'], wm) }}) as versions
),
{% endif %}

buyer_orders as (
    select * from {{ ref('int_buyer_orders') }}
    {% if wm %} where {{ in_changed_groups(['buyer_key'], ['buyer_key'], 'changed') }} {% endif %}
),

final as (
    select
        buyer_key,
        min(paid_at) as first_paid_at,
        max(paid_at) as last_paid_at,
        {{ reporting_date('min(paid_at)') }} as first_paid_date,
        count(*) as paid_orders,
        count(distinct organization_id) as organizations,
        cast(sum(total_amount) as numeric(18, 2)) as total_spent,
        count(*) > 1 as is_repeat_buyer,
        now() as _loaded_at
    from buyer_orders
    group by buyer_key
)

select * from final
