-- Tickets admitted or re-presented on more than one scanning device: the same QR code in two places.
-- A table, not a view: two marts and its tests read it, and as a view each of them grouped every scan again.
{{ config(materialized='table') }}
with scans as (
    select * from {{ ref('stg_platform__scans') }}
),

events as (
    select * from {{ ref('stg_platform__events') }}
),

final as (
    select
        s.ticket_id,
        e.organization_id,
        s.event_id,
        count(distinct s.device_id) as devices,
        string_agg(distinct s.device_id, ', ') as device_ids,
        count(*) as scans,
        min(s.scanned_at) as first_scanned_at,
        max(s.scanned_at) as last_scanned_at
    from scans as s
    inner join events as e on e.event_id = s.event_id
    where s.ticket_id is not null and s.scan_result in ('ok', 'already_used')
    group by s.ticket_id, e.organization_id, s.event_id
    having count(distinct s.device_id) > 1
)

select * from final
