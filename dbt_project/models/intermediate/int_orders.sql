-- One row per order with what the marts slice and sum it by: organization, event status, the method
-- that paid it, local dates, refunds, Mollie's fees, and the buyer as a salted hash (no PII past here).
--
-- Incremental: a run rebuilds the orders that a row loaded since the last build touches (the order itself,
-- its event, a payment, a refund, a Mollie fee summed again), found through indexes on _loaded_at and the
-- foreign keys (macro incremental_watermark); every order when a build setting (the PII salt, the time zone)
-- changed. _loaded_at is when this row was built: the watermark of the models that read it. The rows it
-- replaces are kept in int_orders__replaced (macro log_replaced_rows): the monthly marts add up the changes.
{{ config(
    materialized='incremental',
    unique_key='order_id',
    incremental_strategy='changed_rows',
    log_replaced_rows=true,
    post_hook=[
        "{{ start_replaced_rows_log() }}",
        "{{ index_if_missing('created_organization', '(created_date, organization_id)') }}",
    ],
    on_schema_change='fail',
    indexes=[
        {'columns': ['order_id'], 'unique': True},
        {'columns': ['organization_id']},
        {'columns': ['mollie_payment_id']},
        {'columns': ['buyer_key']},
        {'columns': ['paid_at']},
        {'columns': ['created_at']},
        {'columns': ['created_date']},
    ],
) }}
{% set wm = incremental_watermark(uses_settings=true) %}
with

{% if wm %}
changed_orders as (
    select order_id from {{ ref('stg_platform__orders') }}
    where _loaded_at > {{ wm }}
    union
    select o.order_id
    from {{ ref('stg_platform__events') }} as e
    inner join {{ ref('stg_platform__orders') }} as o on o.event_id = e.event_id
    where e._loaded_at > {{ wm }}
    union
    select order_id from {{ ref('stg_platform__payments') }}
    where _loaded_at > {{ wm }}
    union
    select p.order_id
    from {{ ref('stg_platform__refunds') }} as r
    inner join {{ ref('stg_platform__payments') }} as p on p.payment_id = r.payment_id
    where r._loaded_at > {{ wm }}
    union
    select p.order_id
    from {{ ref('int_mollie__payment_fees') }} as f
    inner join {{ ref('stg_platform__payments') }} as p on p.mollie_payment_id = f.mollie_payment_id
    where f._loaded_at > {{ wm }}
),
{% endif %}

orders as (
    select * from {{ ref('stg_platform__orders') }}
    {% if wm %} where order_id in (select order_id from changed_orders) {% endif %}
),

events as (
    select * from {{ ref('stg_platform__events') }}
),

payments as (
    select * from {{ ref('stg_platform__payments') }}
    {% if wm %} where order_id in (select order_id from changed_orders) {% endif %}
),

refunds as (
    select * from {{ ref('stg_platform__refunds') }}
    {% if wm %} where payment_id in (select payment_id from payments) {% endif %}
),

-- read through the join below (an index lookup per payment): a filter here by the payments CTE, which is
-- also read elsewhere, made the planner re-read that CTE for every fee (34 s for 1% of a million orders)
payment_fees as (
    select * from {{ ref('int_mollie__payment_fees') }}
),

-- The payment that paid the order; else its latest attempt.
deciding_payment as (
    select distinct on (order_id)
        order_id,
        mollie_payment_id,
        payment_method,
        payment_status
    from payments
    order by order_id, (payment_status = 'paid') desc, created_at desc, payment_id desc
),

order_payments as (
    select
        p.order_id,
        count(*) as payment_attempts,
        count(*) filter (where p.payment_status = 'failed') as failed_payments,
        coalesce(sum(f.mollie_fee), 0) as mollie_fee
    from payments as p
    left join payment_fees as f on f.mollie_payment_id = p.mollie_payment_id
    group by p.order_id
),

order_refunds as (
    select
        p.order_id,
        count(*) as refund_count,
        coalesce(sum(r.amount) filter (where {{ is_refunded('r.refund_status') }}), 0) as refunded_amount
    from refunds as r
    inner join payments as p on p.payment_id = r.payment_id
    group by p.order_id
),

final as (
    select
        o.order_id,
        o.order_number,
        o.organization_id,
        o.event_id,
        e.event_status,
        o.customer_id,
        {{ pii_hash('o.buyer_email') }} as buyer_key,
        {{ pii_hash('host(o.buyer_ip)') }} as buyer_ip_hash,
        o.order_status,
        o.currency,
        o.tickets_amount,
        o.service_fee_amount,
        o.platform_fee_amount,
        o.total_amount,
        o.ticket_count,
        o.is_paid,
        o.created_at,
        o.paid_at,
        {{ reporting_date('o.created_at') }} as created_date,
        {{ reporting_date('o.paid_at') }} as paid_date,
        dp.mollie_payment_id,
        dp.payment_method,
        dp.payment_status,
        coalesce(op.payment_attempts, 0) as payment_attempts,
        coalesce(op.failed_payments, 0) as failed_payments,
        cast(coalesce(op.mollie_fee, 0) as numeric(18, 2)) as mollie_fee,
        coalesce(r.refund_count, 0) as refund_count,
        cast(coalesce(r.refunded_amount, 0) as numeric(18, 2)) as refunded_amount,
        now() as _loaded_at
    from orders as o
    left join events as e on e.event_id = o.event_id
    left join deciding_payment as dp on dp.order_id = o.order_id
    left join order_payments as op on op.order_id = o.order_id
    left join order_refunds as r on r.order_id = o.order_id
)

select * from final
