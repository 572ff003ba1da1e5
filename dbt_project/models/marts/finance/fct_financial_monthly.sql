-- The monthly summary finance books from: gross revenue (paid GMV), refunds, the platform's fees,
-- Mollie's costs and the platform's net revenue, by local month of payment.
--
-- Incremental by addition, like growth_monthly: the changes of the orders int_orders rebuilt since are added to
-- their months.
{{ config(
    materialized='incremental',
    incremental_strategy='additive',
    unique_key=['month_start', 'currency'],
    additive_count='paid_orders',
    on_schema_change='append_new_columns',
    pre_hook="{{ clear_for_changes(ref('int_orders'), 'order_id') }}",
) }}
{% set wm = changes_watermark(ref('int_orders'), 'order_id') %}
{% set columns = [
    'is_paid', 'paid_date', 'currency', 'total_amount', 'refunded_amount', 'service_fee_amount',
    'platform_fee_amount', 'mollie_fee',
] %}
with paid_orders as (
    select * from ({{ changed_versions(ref('int_orders'), 'order_id', columns, wm) }}) as changed
),

final as (
    select
        cast(date_trunc('month', paid_date) as date) as month_start,
        currency,
        sum(sign) as paid_orders,
        cast(sum(sign * total_amount) as numeric(18, 2)) as gross_revenue,
        cast(sum(sign * refunded_amount) as numeric(18, 2)) as refunded_amount,
        cast(sum(sign * service_fee_amount) as numeric(18, 2)) as service_fees,
        cast(sum(sign * platform_fee_amount) as numeric(18, 2)) as platform_fees,
        cast(sum(sign * mollie_fee) as numeric(18, 2)) as mollie_costs,
        cast(sum(sign * (service_fee_amount + platform_fee_amount - mollie_fee)) as numeric(18, 2)) as net_revenue,
        now() as _loaded_at
    from paid_orders
    where is_paid
    group by 1, 2
)

select * from final
