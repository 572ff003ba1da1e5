-- Support's order search: find an order by its number, the buyer's email, the organization, a QR code
-- or a Mollie payment id, and see its event, payment status and tickets. Holds PII in the clear:
-- lives in the `support` schema, granted to the support role only.
--
-- Incremental by order: a run rebuilds the orders int_orders rebuilt since (their facts changed), and the orders
-- of payments, events, tickets and organizations loaded since (what this shows of them: Mollie ids, event names,
-- QR codes, names); int_orders keeps a row that comes out the same (strategy changed_rows), so it cannot stand
-- for them.
-- The support dashboard's order search lists the newest first, and finds an order by the buyer's email, a QR code
-- or a Mollie payment id through an index each (post-hooks: index_if_missing).
{{ config(
    materialized='incremental',
    unique_key='order_id',
    incremental_strategy='changed_rows',
    on_schema_change='fail',
    indexes=[{'columns': ['order_id'], 'unique': True}, {'columns': ['order_number']}],
    post_hook=[
        "{{ index_if_missing('created', '(created_at)') }}",
        "{{ index_if_missing('email', '(lower(buyer_email))') }}",
        "{{ index_if_missing('qr_codes', 'using gin (qr_codes)') }}",
        "{{ index_if_missing('mollie_ids', 'using gin (mollie_payment_ids)') }}",
    ],
) }}
{% set wm = incremental_watermark(uses_settings=false) %}
with

{% if wm %}
touched as (
    select order_id from {{ ref('int_orders') }} where _loaded_at > {{ wm }}
    union
    select order_id from {{ ref('stg_platform__tickets') }} where _loaded_at > {{ wm }}
    union
    select order_id from {{ ref('stg_platform__payments') }} where _loaded_at > {{ wm }}
    union
    select o.order_id
    from {{ ref('stg_platform__events') }} as e
    inner join {{ ref('stg_platform__orders') }} as o on o.event_id = e.event_id
    where e._loaded_at > {{ wm }}
    union
    select o.order_id
    from {{ ref('stg_platform__organizations') }} as g
    inner join {{ ref('stg_platform__orders') }} as o on o.organization_id = g.organization_id
    where g._loaded_at > {{ wm }}
),
{% endif %}

orders as (
    select * from {{ ref('stg_platform__orders') }}
    {% if wm %} where order_id in (select order_id from touched) {% endif %}
),

order_facts as (
    select * from {{ ref('int_orders') }}
    {% if wm %} where order_id in (select order_id from touched) {% endif %}
),

organizations as (
    select * from {{ ref('stg_platform__organizations') }}
),

events as (
    select * from {{ ref('stg_platform__events') }}
),

payments as (
    select * from {{ ref('stg_platform__payments') }}
    {% if wm %} where order_id in (select order_id from orders) {% endif %}
),

tickets as (
    select * from {{ ref('stg_platform__tickets') }}
    {% if wm %} where order_id in (select order_id from orders) {% endif %}
),

order_payments as (
    select order_id, array_agg(mollie_payment_id order by created_at, payment_id) filter (where mollie_payment_id is not null)
        as mollie_payment_ids
    from payments
    group by order_id
),

order_tickets as (
    select
        order_id,
        array_agg(qr_code order by ticket_id) as qr_codes,
        string_agg(ticket_type || ' (' || ticket_status || ')', ', ' order by ticket_id) as tickets
    from tickets
    group by order_id
),

final as (
    select
        o.order_id,
        o.order_number,
        o.buyer_email,
        host(o.buyer_ip) as buyer_ip,
        o.organization_id,
        g.organization_name,
        o.event_id,
        e.event_name,
        e.starts_at as event_starts_at,
        o.order_status,
        f.payment_status,
        f.payment_method,
        coalesce(p.mollie_payment_ids, array[]::text[]) as mollie_payment_ids,
        coalesce(t.qr_codes, array[]::text[]) as qr_codes,
        coalesce(t.tickets, '') as tickets,
        o.ticket_count,
        o.currency,
        o.total_amount,
        f.refunded_amount,
        o.created_at,
        o.paid_at,
        -- one lowercase haystack for "contains" searches (ilike) across every identifier
        lower(concat_ws(' ', o.order_number, o.buyer_email, g.organization_name, e.event_name,
            array_to_string(p.mollie_payment_ids, ' '), array_to_string(t.qr_codes, ' '))) as search_text,
        now() as _loaded_at
    from orders as o
    inner join order_facts as f on f.order_id = o.order_id
    left join organizations as g on g.organization_id = o.organization_id
    left join events as e on e.event_id = o.event_id
    left join order_payments as p on p.order_id = o.order_id
    left join order_tickets as t on t.order_id = o.order_id
)

select * from final
