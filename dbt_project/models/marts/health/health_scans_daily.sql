-- Door scans per local day, event and result: how many, how many failed (anything but ok), on how many devices.
with scans as (
    select * from {{ ref('stg_platform__scans') }}
),

final as (
    select
        {{ reporting_date('scanned_at') }} as date_day,
        event_id,
        scan_result,
        scan_result <> 'ok' as is_failed,
        count(*) as scans,
        count(distinct device_id) as devices
    from scans
    group by 1, 2, 3
)

select * from final
