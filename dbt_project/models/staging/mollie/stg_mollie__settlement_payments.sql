with source as (
    select * from {{ source('mollie', 'settlement_payments') }}
),

renamed as (
    select
        settlement_id,
        id as mollie_payment_id,
        payload->>'status' as status,
        {{ mollie_amount("payload->'amount'") }} as amount,
        payload->'amount'->>'currency' as currency,
        cast(payload->>'createdAt' as timestamptz) as created_at,
        _loaded_at
    from source
)

select * from renamed
