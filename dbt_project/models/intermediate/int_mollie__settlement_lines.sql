-- Mollie settlement `periods` flattened: one row per revenue or cost line per period.
-- amount_net / amount_gross keep Mollie's 4 decimals.
with settlements as (
    select * from {{ ref('stg_mollie__settlements') }}
),

lines as (
    select
        s.settlement_id,
        s.currency,
        cast(y.key as int) as period_year,
        cast(m.key as int) as period_month,
        kind.line_type,
        line.ordinality as line_number,
        line.value->>'method' as method,
        line.value->>'description' as description,
        cast(line.value->>'count' as int) as item_count,
        {{ mollie_amount("line.value->'amountNet'", 4) }} as amount_net,
        {{ mollie_amount("line.value->'amountVat'", 4) }} as amount_vat,
        {{ mollie_amount("line.value->'amountGross'", 4) }} as amount_gross
    from settlements as s
    cross join lateral jsonb_each(s.periods) as y
    cross join lateral jsonb_each(y.value) as m
    cross join lateral (values ('revenue'), ('costs')) as kind (line_type)
    cross join lateral jsonb_array_elements(m.value->kind.line_type) with ordinality as line (value, ordinality)
)

select * from lines
