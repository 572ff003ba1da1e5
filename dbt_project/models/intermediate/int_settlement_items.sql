-- Every payment, refund, chargeback and capture of every settlement, with the platform's side next to
-- it. Amounts are signed as they move the payout: payments +, refunds and chargebacks -.
--
-- Incremental by item group (a settlement's items of one payment): a run rebuilds the groups that a row
-- loaded since the last build touches, at Mollie (an item) or on the platform (the payment, a refund).
-- A platform payment's Mollie id is taken never to change once set.
{{ config(
    materialized='incremental',
    unique_key='item_group',
    incremental_strategy='changed_groups',
    on_schema_change='fail',
    indexes=[
        {'columns': ['item_group']},
        {'columns': ['settlement_id']},
        {'columns': ['mollie_payment_id']},
    ],
) }}
{% set wm = incremental_watermark(uses_settings=false) %}
with

{% if wm %}
touched as (
    {% for item in ['settlement_payments', 'settlement_captures', 'settlement_refunds', 'settlement_chargebacks'] %}
    select mollie_payment_id from {{ ref('stg_mollie__' ~ item) }} where _loaded_at > {{ wm }}
    union
    {% endfor %}
    select mollie_payment_id from {{ ref('stg_platform__payments') }}
    where _loaded_at > {{ wm }}
    union
    select p.mollie_payment_id
    from {{ ref('stg_platform__refunds') }} as r
    inner join {{ ref('stg_platform__payments') }} as p on p.payment_id = r.payment_id
    where r._loaded_at > {{ wm }}
),
{% endif %}

settlement_payments as (
    select * from {{ ref('stg_mollie__settlement_payments') }}
    {% if wm %} where mollie_payment_id in (select mollie_payment_id from touched) {% endif %}
),

settlement_captures as (
    select * from {{ ref('stg_mollie__settlement_captures') }}
    {% if wm %} where mollie_payment_id in (select mollie_payment_id from touched) {% endif %}
),

settlement_refunds as (
    select * from {{ ref('stg_mollie__settlement_refunds') }}
    {% if wm %} where mollie_payment_id in (select mollie_payment_id from touched) {% endif %}
),

settlement_chargebacks as (
    select * from {{ ref('stg_mollie__settlement_chargebacks') }}
    {% if wm %} where mollie_payment_id in (select mollie_payment_id from touched) {% endif %}
),

platform_payments as (
    select * from {{ ref('stg_platform__payments') }}
    {% if wm %} where mollie_payment_id in (select mollie_payment_id from touched) {% endif %}
),

platform_refunds as (
    select * from {{ ref('stg_platform__refunds') }}
    {% if wm %}
    where mollie_refund_id in (select mollie_refund_id from settlement_refunds)
    {% endif %}
),

payment_items as (
    select
        sp.settlement_id,
        'payment' as item_type,
        sp.mollie_payment_id as mollie_item_id,
        sp.mollie_payment_id,
        sp.currency,
        sp.amount as mollie_amount,
        pp.amount as platform_amount,
        pp.payment_status as platform_status
    from settlement_payments as sp
    left join platform_payments as pp on pp.mollie_payment_id = sp.mollie_payment_id
),

capture_items as (
    select
        sc.settlement_id,
        'capture' as item_type,
        sc.mollie_capture_id as mollie_item_id,
        sc.mollie_payment_id,
        sc.currency,
        sc.amount as mollie_amount,
        pp.amount as platform_amount,
        pp.payment_status as platform_status
    from settlement_captures as sc
    left join platform_payments as pp on pp.mollie_payment_id = sc.mollie_payment_id
),

refund_items as (
    select
        sr.settlement_id,
        'refund' as item_type,
        sr.mollie_refund_id as mollie_item_id,
        sr.mollie_payment_id,
        sr.currency,
        -sr.amount as mollie_amount,
        -pr.amount as platform_amount,
        pr.refund_status as platform_status
    from settlement_refunds as sr
    left join platform_refunds as pr on pr.mollie_refund_id = sr.mollie_refund_id
),

-- The platform records no chargebacks: Mollie's amount is the only view of them.
chargeback_items as (
    select
        settlement_id,
        'chargeback' as item_type,
        mollie_chargeback_id as mollie_item_id,
        mollie_payment_id,
        currency,
        -amount as mollie_amount,
        -amount as platform_amount,
        cast(null as text) as platform_status
    from settlement_chargebacks
),

items as (
    select * from payment_items
    union all
    select * from capture_items
    union all
    select * from refund_items
    union all
    select * from chargeback_items
),

final as (
    select
        settlement_id || ':' || coalesce(mollie_payment_id, mollie_item_id) as item_group,
        *,
        case
            when item_type in ('payment', 'capture') and platform_amount is null then 'missing_in_platform'
            when item_type = 'refund' and platform_amount is null then 'refund_missing_in_platform'
            when item_type = 'chargeback' then 'chargeback'
            when mollie_amount <> platform_amount then item_type || '_amount_mismatch'
            when item_type in ('payment', 'capture') and platform_status <> 'paid' then 'status_mismatch'
            when item_type = 'refund' and not {{ is_refunded('platform_status') }} then 'refund_status_mismatch'
        end as discrepancy_reason,
        mollie_amount - coalesce(platform_amount, 0) as item_difference,
        now() as _loaded_at
    from items
)

select * from final
