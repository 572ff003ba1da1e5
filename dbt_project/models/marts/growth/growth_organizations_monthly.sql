-- New organizations per local month, the running total, and month-over-month growth of that total.
with organizations as (
    select * from {{ ref('int_organizations') }}
),

months as (
    select cast(m as date) as month_start
    from (select min(created_date) as first_day from organizations) as b
    cross join lateral generate_series(
        date_trunc('month', b.first_day), date_trunc('month', {{ as_of_date() }}), interval '1 month'
    ) as m
),

new_by_month as (
    select cast(date_trunc('month', created_date) as date) as month_start, count(*) as new_organizations
    from organizations
    group by 1
),

final as (
    select
        m.month_start,
        coalesce(n.new_organizations, 0) as new_organizations,
        cast(sum(coalesce(n.new_organizations, 0)) over (order by m.month_start) as bigint) as organizations_total
    from months as m
    left join new_by_month as n on n.month_start = m.month_start
)

select
    *,
    cast(round(100.0 * new_organizations / nullif(organizations_total - new_organizations, 0), 1) as numeric(9, 1))
        as growth_pct
from final
