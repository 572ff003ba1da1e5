-- Support's ticket lookup: a ticket by QR code with its order, buyer, event and its whole scan history
-- (when, which device, what result). PII in the clear: `support` schema, support role only.
--
-- Incremental by ticket: a run rebuilds the tickets that a row loaded since the last build touches (the
-- ticket, a scan of it, its order, its event).
-- The support dashboard's ticket lookup lists the latest scanned first, and finds an order's tickets by its number
-- (post-hooks: index_if_missing).
{{ config(
    materialized='incremental',
    unique_key='ticket_id',
    incremental_strategy='changed_rows',
    on_schema_change='fail',
    indexes=[{'columns': ['ticket_id'], 'unique': True}, {'columns': ['qr_code']}],
    post_hook=[
        "{{ index_if_missing('last_scanned', '(last_scanned_at desc nulls last)') }}",
        "{{ index_if_missing('order_number', '(order_number)') }}",
    ],
) }}
{% set wm = incremental_watermark(uses_settings=false) %}
with

{% if wm %}
touched as (
    select ticket_id from {{ ref('stg_platform__tickets') }} where _loaded_at > {{ wm }}
    union
    select ticket_id from {{ ref('stg_platform__scans') }}
    where _loaded_at > {{ wm }} and ticket_id is not null
    union
    select t.ticket_id
    from {{ ref('stg_platform__orders') }} as o
    inner join {{ ref('stg_platform__tickets') }} as t on t.order_id = o.order_id
    where o._loaded_at > {{ wm }}
    union
    select t.ticket_id
    from {{ ref('stg_platform__events') }} as e
    inner join {{ ref('stg_platform__tickets') }} as t on t.event_id = e.event_id
    where e._loaded_at > {{ wm }}
),
{% endif %}

tickets as (
    select * from {{ ref('stg_platform__tickets') }}
    {% if wm %} where ticket_id in (select ticket_id from touched) {% endif %}
),

orders as (
    select * from {{ ref('stg_platform__orders') }}
),

events as (
    select * from {{ ref('stg_platform__events') }}
),

scans as (
    select * from {{ ref('stg_platform__scans') }}
    {% if wm %} where ticket_id in (select ticket_id from tickets) {% endif %}
),

history as (
    select
        ticket_id,
        count(*) as scans,
        count(*) filter (where scan_result <> 'ok') as failed_scans,
        min(scanned_at) as first_scanned_at,
        max(scanned_at) as last_scanned_at,
        (array_agg(scan_result order by scanned_at desc, scan_id desc))[1] as last_scan_result,
        jsonb_agg(jsonb_build_object('scanned_at', scanned_at, 'device_id', device_id, 'result', scan_result)
            order by scanned_at, scan_id) as scan_history
    from scans
    where ticket_id is not null
    group by ticket_id
),

final as (
    select
        t.ticket_id,
        t.qr_code,
        t.ticket_type,
        t.ticket_status,
        t.price_amount,
        o.order_number,
        o.buyer_email,
        t.event_id,
        e.event_name,
        e.starts_at as event_starts_at,
        coalesce(h.scans, 0) as scans,
        coalesce(h.failed_scans, 0) as failed_scans,
        h.first_scanned_at,
        h.last_scanned_at,
        h.last_scan_result,
        coalesce(h.scan_history, '[]'::jsonb) as scan_history,
        now() as _loaded_at
    from tickets as t
    left join orders as o on o.order_id = t.order_id
    left join events as e on e.event_id = t.event_id
    left join history as h on h.ticket_id = t.ticket_id
)

select * from final
