-- One row per buyer (salted hash of the email; no PII): first and last purchase, orders, spend.
--
-- Incremental by buyer: a run rebuilds, whole, every buyer that an order int_orders rebuilt since belongs to, now
-- or before (int_orders__replaced, macro changed_versions): a buyer left with no paid order is removed. Read from
-- int_orders through its buyer index (int_buyer_orders is rebuilt whole each time, and numbers what this sums).
{{ config(
    materialized='incremental',
    unique_key='buyer_key',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
    pre_hook=[
        "{{ clear_when_built_whole(changes_watermark(ref('int_orders'), 'order_id')) }}",
        "{{ clear_changed_groups(ref('int_orders'), 'order_id', ['buyer_key'], ['buyer_key']) }}",
    ],
    post_hook="{{ index_if_missing('buyer', '(buyer_key)') }}",
) }}
{% set wm = changes_watermark(ref('int_orders'), 'order_id') %}
with

{% if wm %}
changed as (
    {{ changed_versions(ref('int_orders'), 'order_id', ['buyer_key'], wm) }}
),
{% endif %}

buyer_orders as (
    select * from {{ ref('int_orders') }}
    where is_paid {% if wm %} and buyer_key in (select buyer_key from changed) {% endif %}
    {% if wm %}
    union all
    -- the orders without a buyer (no email) are one buyer, as in a build of every row
    select * from {{ ref('int_orders') }}
    where is_paid and buyer_key is null and exists (select 1 from changed where buyer_key is null)
    {% endif %}
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
