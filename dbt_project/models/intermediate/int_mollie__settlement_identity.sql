-- Mollie's own identity per settlement: amount = sum(revenue amountNet) - sum(costs amountGross) over
-- all periods, rounded to cents. The refund revenue line is the sign trap: its amountNet is negative
-- while its amountGross is positive, so only amountNet may be summed for revenue.
with settlements as (
    select * from {{ ref('stg_mollie__settlements') }}
),

lines as (
    select * from {{ ref('int_mollie__settlement_lines') }}
),

sums as (
    select
        settlement_id,
        coalesce(sum(amount_net) filter (where line_type = 'revenue'), 0) as revenue_net,
        coalesce(sum(amount_gross) filter (where line_type = 'costs'), 0) as costs_gross
    from lines
    group by settlement_id
),

final as (
    select
        s.settlement_id,
        s.currency,
        s.amount,
        coalesce(m.revenue_net, 0) as revenue_net,
        coalesce(m.costs_gross, 0) as costs_gross,
        round(coalesce(m.revenue_net, 0) - coalesce(m.costs_gross, 0), 2) as identity_amount,
        s.amount - round(coalesce(m.revenue_net, 0) - coalesce(m.costs_gross, 0), 2) as identity_difference
    from settlements as s
    left join sums as m on m.settlement_id = s.settlement_id
)

select * from final
