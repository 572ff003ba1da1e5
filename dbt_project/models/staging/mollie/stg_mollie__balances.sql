with source as (
    select * from {{ source('mollie', 'balances') }}
),

renamed as (
    select
        id as balance_id,
        payload->>'currency' as currency,
        payload->>'status' as balance_status,
        payload->>'transferFrequency' as transfer_frequency,
        {{ mollie_amount("payload->'availableAmount'") }} as available_amount,
        {{ mollie_amount("payload->'pendingAmount'") }} as pending_amount,
        cast(payload->>'createdAt' as timestamptz) as created_at,
        _loaded_at
    from source
)

select * from renamed
