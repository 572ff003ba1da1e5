with source as (
    select * from {{ source('mollie', 'settlements') }}
),

renamed as (
    select
        id as settlement_id,
        payload->>'reference' as settlement_reference,
        payload->>'status' as settlement_status,
        {{ mollie_amount("payload->'amount'") }} as amount,
        payload->'amount'->>'currency' as currency,
        cast(payload->>'createdAt' as timestamptz) as created_at,
        cast(payload->>'settledAt' as timestamptz) as settled_at,
        payload->>'invoiceId' as invoice_id,
        payload->'periods' as periods,
        _loaded_at
    from source
)

select * from renamed
