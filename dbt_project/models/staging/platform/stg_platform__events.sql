with source as (
    select * from {{ source('platform', 'events') }}
),

renamed as (
    select
        id as event_id,
        organization_id,
        name as event_name,
        status as event_status,
        starts_at,
        ends_at,
        created_at,
        updated_at,
        _loaded_at
    from source
)

select * from renamed
