-- New and active buyers per local day, week and month. Active: bought (a paid order) in the period;
-- new: their first paid order was in it.
with buyer_orders as (
    select * from {{ ref('int_buyer_orders') }}
),

-- A buyer is active in a period once: counted at their first order in it, the order whose previous one (orders
-- run in time, and so do their local dates) fell in an earlier period. One pass over the orders, where
-- grouping by buyer and period first made millions of groups.
by_grain as (
    select
        g.grain,
        cast(date_trunc(g.grain, b.paid_date) as date) as period_start,
        b.previous_paid_date is null
        or date_trunc(g.grain, b.previous_paid_date) < date_trunc(g.grain, b.paid_date) as is_first_in_period,
        b.buyer_order_number = 1 as is_first_ever
    from buyer_orders as b
    cross join (values ('day'), ('week'), ('month')) as g (grain)
),

final as (
    select
        grain,
        period_start,
        count(*) filter (where is_first_in_period) as active_buyers,
        count(*) filter (where is_first_ever) as new_buyers,
        count(*) filter (where is_first_in_period and not is_first_ever) as returning_buyers
    from by_grain
    group by grain, period_start
)

select * from final
