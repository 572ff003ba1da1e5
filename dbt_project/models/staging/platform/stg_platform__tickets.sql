with source as (
    select * from {{ source('platform', 'tickets') }}
),

renamed as (
    select
        id as ticket_id,
        order_id,
        event_id,
        ticket_type,
        {{ cents_to_major('price_cents') }} as price_amount,
        qr_code,
        status as ticket_status,
        created_at,
        updated_at,
        _loaded_at
    from source
)

select * from renamed
