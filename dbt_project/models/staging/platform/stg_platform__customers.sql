with source as (
    select * from {{ source('platform', 'customers') }}
),

renamed as (
    select
        id as customer_id,
        lower(email) as email,
        signup_ip,
        created_at,
        updated_at,
        _loaded_at
    from source
)

select * from renamed
