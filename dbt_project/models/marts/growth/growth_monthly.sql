-- Paid sales by local month, organization and event status: GMV, orders, tickets and the platform's
-- revenue (service + platform fees, and net of Mollie's fees). Sum over the slices for the platform total.
--
-- Incremental by addition (strategy `additive`): a run adds up the orders int_orders rebuilt since, each as it is
-- now (+1) and as it was counted (-1, from int_orders__replaced), per slice; a slice left with no paid order is
-- removed. Built whole the first time, when a build setting changed, or when int_orders' log cannot tell every
-- change since the last build (macro changes_watermark).
{{ config(
    materialized='incremental',
    incremental_strategy='additive',
    unique_key=['month_start', 'organization_id', 'event_status', 'currency'],
    additive_count='paid_orders',
    additive_nullable_keys=['event_status'],
    on_schema_change='append_new_columns',
    indexes=[{'columns': ['month_start', 'organization_id']}],
    pre_hook="{{ clear_for_changes(ref('int_orders'), 'order_id') }}",
) }}
{% set wm = changes_watermark(ref('int_orders'), 'order_id') %}
{% set columns = [
    'is_paid', 'paid_date', 'organization_id', 'event_status', 'currency', 'ticket_count', 'total_amount',
    'service_fee_amount', 'platform_fee_amount', 'mollie_fee',
] %}
with paid_orders as (
    select * from ({{ changed_versions(ref('int_orders'), 'order_id', columns, wm) }}) as changed
),

final as (
    select
        cast(date_trunc('month', paid_date) as date) as month_start,
        organization_id,
        event_status,
        currency,
        sum(sign) as paid_orders,
        sum(sign * ticket_count) as tickets_sold,
        cast(sum(sign * total_amount) as numeric(18, 2)) as gmv,
        cast(sum(sign * service_fee_amount) as numeric(18, 2)) as service_fees,
        cast(sum(sign * platform_fee_amount) as numeric(18, 2)) as platform_fees,
        cast(sum(sign * (service_fee_amount + platform_fee_amount)) as numeric(18, 2)) as platform_revenue,
        cast(sum(sign * mollie_fee) as numeric(18, 2)) as mollie_fees,
        cast(sum(sign * (service_fee_amount + platform_fee_amount - mollie_fee)) as numeric(18, 2))
            as net_platform_revenue,
        now() as _loaded_at
    from paid_orders
    where is_paid
    group by 1, 2, 3, 4
)

select * from final
