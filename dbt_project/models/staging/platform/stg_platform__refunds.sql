with source as (
    select * from {{ source('platform', 'refunds') }}
),

renamed as (
    select
        id as refund_id,
        payment_id,
        mollie_refund_id,
        {{ cents_to_major('amount_cents') }} as amount,
        reason as refund_reason,
        status as refund_status,
        initiated_by,
        created_at,
        updated_at,
        _loaded_at
    from source
)

select * from renamed
