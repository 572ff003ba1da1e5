-- Finance's work list: every payment that does not match between the platform and Mollie, and every
-- settlement line whose platform side disagrees, with the money involved and the reason.
with payments as (
    select * from {{ ref('fct_payment_reconciliation') }}
    where match_status <> 'matched'
),

items as (
    select * from {{ ref('int_settlement_items') }}
    where discrepancy_reason is not null
),

payment_rows as (
    select
        'payment' as discrepancy_source,
        mollie_payment_id as mollie_object_id,
        mollie_payment_id,
        settlement_id,
        order_number,
        currency,
        mollie_amount - coalesce(mollie_refunded_amount, 0) - coalesce(mollie_charged_back_amount, 0)
            as mollie_amount,
        platform_amount - coalesce(platform_refunded_amount, 0) as platform_amount,
        match_status as reason_code,
        mismatch_reason as reason
    from payments
),

item_rows as (
    select
        'settlement_' || item_type as discrepancy_source,
        mollie_item_id as mollie_object_id,
        mollie_payment_id,
        settlement_id,
        cast(null as text) as order_number,
        currency,
        mollie_amount,
        platform_amount,
        discrepancy_reason as reason_code,
        case discrepancy_reason
            when 'missing_in_platform' then 'Settled by Mollie; the platform has no such payment'
            when 'refund_missing_in_platform' then 'Refund settled by Mollie; the platform has no such refund'
            when 'chargeback' then 'Chargeback deducted from the payout'
            when 'status_mismatch' then 'Settled as paid; the platform does not count it as paid'
            when 'refund_status_mismatch' then 'Refund settled; the platform does not count it as refunded'
            else 'Settled amount differs from the platform amount'
        end as reason
    from items
),

unioned as (
    select * from payment_rows
    union all
    select * from item_rows
),

final as (
    select
        md5(discrepancy_source || ':' || mollie_object_id || ':' || coalesce(settlement_id, '')) as discrepancy_id,
        discrepancy_source,
        mollie_object_id,
        mollie_payment_id,
        settlement_id,
        order_number,
        currency,
        cast(mollie_amount as numeric(18, 2)) as mollie_amount,
        cast(platform_amount as numeric(18, 2)) as platform_amount,
        cast(coalesce(mollie_amount, 0) - coalesce(platform_amount, 0) as numeric(18, 2)) as difference,
        reason_code,
        reason
    from unioned
)

select * from final
