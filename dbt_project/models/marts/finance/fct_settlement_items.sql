-- Every line of every Mollie settlement: its payments, captures, refunds and chargebacks with the
-- platform's side next to them, and its cost lines (Mollie's fees, which only Mollie reports).
-- Amounts are signed as they move the payout, so per settlement they add up to the paid-out amount
-- (up to Mollie's rounding of the 4-decimal cost lines).
--
-- Incremental by item group (a settlement's items of one payment, or its cost lines): a run rebuilds the
-- groups int_settlement_items rebuilt since, those of payments loaded since (the order a payment belongs to),
-- those whose order int_orders rebuilt since (its number, its organization), and the cost lines of settlements
-- loaded since.
-- depends_on: {{ ref('stg_mollie__settlements') }}
{{ config(
    materialized='incremental',
    unique_key='item_group',
    incremental_strategy='changed_groups',
    on_schema_change='fail',
    indexes=[{'columns': ['item_group']}, {'columns': ['settlement_id']}],
) }}
{% set wm = incremental_watermark(uses_settings=false) %}
with

{% if wm %}
touched as (
    select item_group from {{ ref('int_settlement_items') }} where _loaded_at > {{ wm }}
    union
    select i.item_group
    from {{ ref('stg_platform__payments') }} as p
    inner join {{ ref('int_settlement_items') }} as i on i.mollie_payment_id = p.mollie_payment_id
    where p._loaded_at > {{ wm }}
    union
    select i.item_group
    from {{ ref('int_orders') }} as o
    inner join {{ ref('stg_platform__payments') }} as p on p.order_id = o.order_id
    inner join {{ ref('int_settlement_items') }} as i on i.mollie_payment_id = p.mollie_payment_id
    where o._loaded_at > {{ wm }}
    union
    select settlement_id || ':costs' from {{ ref('stg_mollie__settlements') }}
    where _loaded_at > {{ wm }}
),
{% endif %}

items as (
    select * from {{ ref('int_settlement_items') }}
    {% if wm %} where item_group in (select item_group from touched) {% endif %}
),

lines as (
    select * from {{ ref('int_mollie__settlement_lines') }}
    where line_type = 'costs'
    {% if wm %} and settlement_id || ':costs' in (select item_group from touched) {% endif %}
),

platform_payments as (
    select * from {{ ref('stg_platform__payments') }}
),

orders as (
    select * from {{ ref('int_orders') }}
),

money_items as (
    select
        i.item_group,
        i.settlement_id,
        i.item_type,
        i.mollie_item_id,
        i.mollie_payment_id,
        o.order_number,
        o.organization_id,
        cast(null as text) as cost_description,
        i.currency,
        cast(i.mollie_amount as numeric(18, 4)) as mollie_amount,
        cast(i.platform_amount as numeric(18, 4)) as platform_amount,
        i.platform_status,
        i.discrepancy_reason
    from items as i
    left join platform_payments as pp on pp.mollie_payment_id = i.mollie_payment_id
    left join orders as o on o.order_id = pp.order_id
),

cost_items as (
    select
        settlement_id || ':costs' as item_group,
        settlement_id,
        'cost' as item_type,
        settlement_id || ':' || period_year || '-' || lpad(period_month::text, 2, '0') || ':' || line_number
            as mollie_item_id,
        cast(null as text) as mollie_payment_id,
        cast(null as text) as order_number,
        cast(null as bigint) as organization_id,
        description as cost_description,
        currency,
        cast(-amount_gross as numeric(18, 4)) as mollie_amount,
        cast(null as numeric(18, 4)) as platform_amount,
        cast(null as text) as platform_status,
        cast(null as text) as discrepancy_reason
    from lines
),

final as (
    select *, now() as _loaded_at from money_items
    union all
    select *, now() from cost_items
)

select * from final
