-- Every buyer of dim_buyers is new exactly once at each grain of fct_buyer_activity (day, week, month):
-- the new buyers of a grain's periods add up to the buyers. Returns the grains that disagree.
{{ config(meta={'dagster': {'ref': {'name': 'fct_buyer_activity'}}}) }}
with buyers as (
    select count(*) as buyers from {{ ref('dim_buyers') }}
),

new_per_grain as (
    select grain, sum(new_buyers) as new_buyers
    from {{ ref('fct_buyer_activity') }}
    group by grain
)

select g.grain, g.new_buyers, b.buyers
from new_per_grain as g
cross join buyers as b
where g.new_buyers <> b.buyers
