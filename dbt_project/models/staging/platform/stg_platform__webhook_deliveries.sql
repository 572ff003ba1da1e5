with source as (
    select * from {{ source('platform', 'webhook_deliveries') }}
),

renamed as (
    select
        id as webhook_delivery_id,
        webhook_id,
        event_type,
        organization_id,
        payload,
        attempt,
        max_attempts,
        status as delivery_status,
        response_status,
        last_error,
        next_retry_at,
        created_at,
        updated_at,
        _loaded_at
    from source
)

select * from renamed
