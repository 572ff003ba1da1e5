-- One row per payment known to either side (platform or Mollie), with the first match_status that
-- applies: missing_in_platform, missing_in_mollie, amount_mismatch (payment or refunded amount),
-- status_mismatch (a charged-back payment counts as not paid), not_settled, matched.
--
-- Incremental by Mollie payment id: a run rebuilds the payments that a row loaded since the last build
-- touches, on either side (the payment, its order, a refund, a chargeback, a settlement item), the payment
-- an order or platform payment was linked to before, and, when a settlement arrives or changes, the
-- payments paid on both sides and not yet settled (their not_settled status depends on the latest one).
{{ config(
    materialized='incremental',
    unique_key='mollie_payment_id',
    incremental_strategy='changed_rows',
    on_schema_change='fail',
    indexes=[{'columns': ['mollie_payment_id'], 'unique': True}, {'columns': ['order_number']}],
) }}
{% set wm = incremental_watermark(uses_settings=false) %}
with

{% if wm %}
touched as (
    select mollie_payment_id from {{ ref('stg_platform__payments') }}
    where _loaded_at > {{ wm }}
    union
    select p.mollie_payment_id
    from {{ ref('stg_platform__orders') }} as o
    inner join {{ ref('stg_platform__payments') }} as p on p.order_id = o.order_id
    where o._loaded_at > {{ wm }}
    union
    select p.mollie_payment_id
    from {{ ref('stg_platform__refunds') }} as r
    inner join {{ ref('stg_platform__payments') }} as p on p.payment_id = r.payment_id
    where r._loaded_at > {{ wm }}
    union
    select mollie_payment_id from {{ ref('stg_mollie__payments') }} where _loaded_at > {{ wm }}
    union
    select mollie_payment_id from {{ ref('stg_mollie__settlement_payments') }}
    where _loaded_at > {{ wm }}
    union
    select mollie_payment_id from {{ ref('stg_mollie__refunds') }} where _loaded_at > {{ wm }}
    union
    select mollie_payment_id from {{ ref('stg_mollie__chargebacks') }}
    where _loaded_at > {{ wm }}
    union
    -- linked before to an order that changed or whose payments changed (a payment re-linked to another Mollie
    -- id); two lookups through an index each: one `or` of the two made the planner scan both tables whole
    select b.mollie_payment_id
    from {{ this }} as b
    inner join {{ ref('stg_platform__orders') }} as o on o.order_number = b.order_number
    where o._loaded_at > {{ wm }}
    union
    select b.mollie_payment_id
    from {{ this }} as b
    inner join {{ ref('stg_platform__orders') }} as o on o.order_number = b.order_number
    inner join {{ ref('stg_platform__payments') }} as p on p.order_id = o.order_id
    where p._loaded_at > {{ wm }}
    union
    select b.mollie_payment_id
    from {{ this }} as b
    where b.settlement_id is null and b.platform_status = 'paid' and b.mollie_status = 'paid'
      and exists (
          select 1 from {{ ref('stg_mollie__settlements') }} where _loaded_at > {{ wm }}
      )
),
{% endif %}

platform_payments as (
    select * from {{ ref('stg_platform__payments') }}
    {% if wm %} where mollie_payment_id in (select mollie_payment_id from touched) {% endif %}
),

platform_orders as (
    select * from {{ ref('stg_platform__orders') }}
    {% if wm %} where order_id in (select order_id from platform_payments) {% endif %}
),

platform_refunds as (
    select * from {{ ref('stg_platform__refunds') }}
    {% if wm %} where payment_id in (select payment_id from platform_payments) {% endif %}
),

mollie_payments as (
    select * from {{ ref('stg_mollie__payments') }}
    {% if wm %} where mollie_payment_id in (select mollie_payment_id from touched) {% endif %}
),

mollie_refunds as (
    select * from {{ ref('stg_mollie__refunds') }}
    {% if wm %} where mollie_payment_id in (select mollie_payment_id from touched) {% endif %}
),

mollie_chargebacks as (
    select * from {{ ref('stg_mollie__chargebacks') }}
    {% if wm %} where mollie_payment_id in (select mollie_payment_id from touched) {% endif %}
),

settlement_payments as (
    select * from {{ ref('stg_mollie__settlement_payments') }}
    {% if wm %} where mollie_payment_id in (select mollie_payment_id from touched) {% endif %}
),

settlements as (
    select * from {{ ref('stg_mollie__settlements') }}
),

platform_refunded as (
    select payment_id, sum(amount) as refunded_amount
    from platform_refunds
    where {{ is_refunded('refund_status') }}
    group by payment_id
),

platform_side as (
    select
        p.mollie_payment_id,
        o.order_number,
        p.amount as platform_amount,
        p.currency as platform_currency,
        p.payment_status as platform_status,
        p.paid_at as platform_paid_at,
        coalesce(r.refunded_amount, 0) as platform_refunded_amount
    from platform_payments as p
    inner join platform_orders as o on o.order_id = p.order_id
    left join platform_refunded as r on r.payment_id = p.payment_id
    where p.mollie_payment_id is not null
),

-- Mollie's view: its payments list, plus any settled payment that the list did not return.
mollie_all as (
    select mollie_payment_id, amount, currency, payment_status, paid_at
    from mollie_payments
    union all
    select sp.mollie_payment_id, sp.amount, sp.currency, sp.status, null
    from settlement_payments as sp
    where not exists (select 1 from mollie_payments as mp where mp.mollie_payment_id = sp.mollie_payment_id)
),

mollie_refunded as (
    select mollie_payment_id, sum(amount) as refunded_amount
    from mollie_refunds
    where {{ is_refunded('refund_status') }}
    group by mollie_payment_id
),

mollie_charged_back as (
    select mollie_payment_id, sum(amount) as charged_back_amount
    from mollie_chargebacks
    where reversed_at is null
    group by mollie_payment_id
),

settled as (
    select mollie_payment_id, min(settlement_id) as settlement_id
    from settlement_payments
    group by mollie_payment_id
),

mollie_side as (
    select distinct on (m.mollie_payment_id)
        m.mollie_payment_id,
        m.amount as mollie_amount,
        m.currency as mollie_currency,
        m.payment_status as mollie_status,
        m.paid_at as mollie_paid_at,
        coalesce(r.refunded_amount, 0) as mollie_refunded_amount,
        coalesce(c.charged_back_amount, 0) as mollie_charged_back_amount,
        s.settlement_id
    from mollie_all as m
    left join mollie_refunded as r on r.mollie_payment_id = m.mollie_payment_id
    left join mollie_charged_back as c on c.mollie_payment_id = m.mollie_payment_id
    left join settled as s on s.mollie_payment_id = m.mollie_payment_id
    order by m.mollie_payment_id, m.paid_at nulls last
),

latest_settlement as (
    select max(settled_at) as latest_settled_at from settlements
),

joined as (
    select
        coalesce(p.mollie_payment_id, m.mollie_payment_id) as mollie_payment_id,
        p.order_number,
        m.settlement_id,
        coalesce(p.platform_currency, m.mollie_currency) as currency,
        p.platform_amount,
        m.mollie_amount,
        p.platform_refunded_amount,
        m.mollie_refunded_amount,
        m.mollie_charged_back_amount,
        p.platform_status,
        m.mollie_status,
        coalesce(m.mollie_paid_at, p.platform_paid_at) as paid_at,
        p.mollie_payment_id is not null as is_known_to_platform,
        m.mollie_payment_id is not null as is_known_to_mollie
    from platform_side as p
    full outer join mollie_side as m on m.mollie_payment_id = p.mollie_payment_id
),

final as (
    select
        j.mollie_payment_id,
        j.order_number,
        j.settlement_id,
        j.currency,
        cast(j.platform_amount as numeric(18, 2)) as platform_amount,
        cast(j.mollie_amount as numeric(18, 2)) as mollie_amount,
        cast(j.platform_refunded_amount as numeric(18, 2)) as platform_refunded_amount,
        cast(j.mollie_refunded_amount as numeric(18, 2)) as mollie_refunded_amount,
        cast(j.mollie_charged_back_amount as numeric(18, 2)) as mollie_charged_back_amount,
        j.platform_status,
        j.mollie_status,
        j.paid_at,
        case
            when not j.is_known_to_platform then 'missing_in_platform'
            when not j.is_known_to_mollie then 'missing_in_mollie'
            when j.platform_amount <> j.mollie_amount
                or j.platform_refunded_amount <> j.mollie_refunded_amount then 'amount_mismatch'
            when j.platform_status <> j.mollie_status
                or (j.mollie_charged_back_amount > 0 and j.platform_status = 'paid') then 'status_mismatch'
            when j.platform_status = 'paid' and j.mollie_status = 'paid' and j.settlement_id is null
                and j.paid_at < l.latest_settled_at - interval '{{ var("not_settled_after_days") }} days'
                then 'not_settled'
            else 'matched'
        end as match_status,
        case
            when not j.is_known_to_platform then 'Mollie returns this payment; the platform has no such payment'
            when not j.is_known_to_mollie then 'The platform has this payment; Mollie does not return it'
            when j.platform_amount <> j.mollie_amount then 'Payment amount differs'
            when j.platform_refunded_amount <> j.mollie_refunded_amount then 'Refunded amount differs'
            when j.platform_status <> j.mollie_status then 'Status differs'
            when j.mollie_charged_back_amount > 0 and j.platform_status = 'paid'
                then 'Charged back at Mollie; the platform still counts it as paid'
            when j.platform_status = 'paid' and j.mollie_status = 'paid' and j.settlement_id is null
                and j.paid_at < l.latest_settled_at - interval '{{ var("not_settled_after_days") }} days'
                then 'Paid on both sides but in no settlement'
        end as mismatch_reason,
        now() as _loaded_at
    from joined as j
    cross join latest_settlement as l
)

select * from final
