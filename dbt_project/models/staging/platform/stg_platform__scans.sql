with source as (
    select * from {{ source('platform', 'scans') }}
),

renamed as (
    select
        id as scan_id,
        ticket_id,
        event_id,
        qr_code,
        device_id,
        result as scan_result,
        scanned_at,
        created_at,
        _loaded_at
    from source
)

select * from renamed
