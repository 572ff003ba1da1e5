-- One row per buyer (salted hash of the email; no PII): first and last purchase, orders, spend.
with buyer_orders as (
    select * from {{ ref('int_buyer_orders') }}
),

final as (
    select
        buyer_key,
        min(paid_at) as first_paid_at,
        max(paid_at) as last_paid_at,
        {{ reporting_date('min(paid_at)') }} as first_paid_date,
        count(*) as paid_orders,
        count(distinct organization_id) as organizations,
        cast(sum(total_amount) as numeric(18, 2)) as total_spent,
        count(*) > 1 as is_repeat_buyer
    from buyer_orders
    group by buyer_key
)

select * from final
