-- Door scans per local day, event and result: how many, how many failed (anything but ok), on how many devices.
with scans as (
    select * from {{ ref('stg_platform__scans') }}
),

-- counted per device first: a distinct count over every scan sorted them all (twice as slow at a million)
per_device as (
    select
        {{ reporting_date('scanned_at') }} as date_day,
        event_id,
        scan_result,
        device_id,
        count(*) as scans
    from scans
    group by 1, 2, 3, 4
),

final as (
    select
        date_day,
        event_id,
        scan_result,
        scan_result <> 'ok' as is_failed,
        cast(sum(scans) as bigint) as scans,
        count(device_id) as devices
    from per_device
    group by date_day, event_id, scan_result
)

select * from final
