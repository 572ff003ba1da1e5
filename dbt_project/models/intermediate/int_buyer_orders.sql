-- Paid orders per buyer (salted hash of the email), numbered, with the buyer's first paid order.
with paid_orders as (
    select * from {{ ref('int_orders') }}
    where is_paid
),

final as (
    select
        buyer_key,
        order_id,
        organization_id,
        paid_at,
        paid_date,
        total_amount,
        currency,
        row_number() over (partition by buyer_key order by paid_at, order_id) as buyer_order_number,
        min(paid_at) over (partition by buyer_key) as first_paid_at
    from paid_orders
)

select * from final
