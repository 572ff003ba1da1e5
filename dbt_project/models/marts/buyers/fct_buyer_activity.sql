-- New and active buyers per local day, week and month. Active: bought (a paid order) in the period;
-- new: their first paid order was in it.
with buyer_orders as (
    select * from {{ ref('int_buyer_orders') }}
),

by_grain as (
    select
        g.grain,
        cast(date_trunc(g.grain, b.paid_date) as date) as period_start,
        b.buyer_key,
        bool_or(b.buyer_order_number = 1) as is_new
    from buyer_orders as b
    cross join (values ('day'), ('week'), ('month')) as g (grain)
    group by 1, 2, 3
),

final as (
    select
        grain,
        period_start,
        count(*) as active_buyers,
        count(*) filter (where is_new) as new_buyers,
        count(*) filter (where not is_new) as returning_buyers
    from by_grain
    group by grain, period_start
)

select * from final
