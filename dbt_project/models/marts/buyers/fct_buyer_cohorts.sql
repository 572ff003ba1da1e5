-- Repeat-purchase cohorts: buyers grouped by the local month of their first paid order, and how many
-- bought again within 1, 7 and 30 days of it. A buyer whose window has not ended by the as-of instant
-- is not counted in that window's denominator (eligible_*), so young cohorts are not understated.
with buyer_orders as (
    select * from {{ ref('int_buyer_orders') }}
),

-- a buyer's first order carries the time of their second (the window in int_buyer_orders): no group by buyer
buyers as (
    select
        buyer_key,
        paid_at as first_paid_at,
        next_paid_at as second_paid_at
    from buyer_orders
    where buyer_order_number = 1
),

flags as (
    select
        cast(date_trunc('month', {{ reporting_date('first_paid_at') }}) as date) as cohort_month,
        first_paid_at + interval '1 day' <= {{ as_of_ts() }} as eligible_d1,
        first_paid_at + interval '7 days' <= {{ as_of_ts() }} as eligible_d7,
        first_paid_at + interval '30 days' <= {{ as_of_ts() }} as eligible_d30,
        coalesce(second_paid_at <= first_paid_at + interval '1 day', false) as repeat_d1,
        coalesce(second_paid_at <= first_paid_at + interval '7 days', false) as repeat_d7,
        coalesce(second_paid_at <= first_paid_at + interval '30 days', false) as repeat_d30
    from buyers
),

final as (
    select
        cohort_month,
        count(*) as cohort_buyers,
        count(*) filter (where eligible_d1) as eligible_d1,
        count(*) filter (where eligible_d1 and repeat_d1) as repeat_d1,
        count(*) filter (where eligible_d7) as eligible_d7,
        count(*) filter (where eligible_d7 and repeat_d7) as repeat_d7,
        count(*) filter (where eligible_d30) as eligible_d30,
        count(*) filter (where eligible_d30 and repeat_d30) as repeat_d30
    from flags
    group by cohort_month
)

select
    *,
    cast(round(1.0 * repeat_d1 / nullif(eligible_d1, 0), 4) as numeric(9, 4)) as repeat_rate_d1,
    cast(round(1.0 * repeat_d7 / nullif(eligible_d7, 0), 4) as numeric(9, 4)) as repeat_rate_d7,
    cast(round(1.0 * repeat_d30 / nullif(eligible_d30, 0), 4) as numeric(9, 4)) as repeat_rate_d30
from final
