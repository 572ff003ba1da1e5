with source as (
    select * from {{ source('platform', 'organizations') }}
),

renamed as (
    select
        id as organization_id,
        name as organization_name,
        status as organization_status,
        created_at,
        updated_at,
        _loaded_at
    from source
)

select * from renamed
