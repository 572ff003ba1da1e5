with source as (
    select * from {{ source('platform', 'payments') }}
),

renamed as (
    select
        id as payment_id,
        order_id,
        mollie_payment_id,
        status as payment_status,
        method as payment_method,
        {{ cents_to_major('amount_cents') }} as amount,
        upper(currency) as currency,
        failure_reason,
        created_at,
        paid_at,
        updated_at,
        _loaded_at
    from source
)

select * from renamed
