-- Mollie's balance ledger (the hub of every money movement, like dbt_stripe's balance transactions):
-- one row per transaction with what it is about (payment, refund, chargeback, settlement/transfer),
-- the platform order and organization behind it, and the running balance.
--
-- Incremental in fact, with work in proportion to the change. The watermark is the last build (_loaded_at).
-- Mollie lines loaded since are added, and each balance's running balance is carried forward from the last
-- stored line before the earliest of them (a line that arrives late, dated before lines already built,
-- moves the balance of the stored lines after it). Lines whose platform payment or order was loaded since
-- are linked to it again, keeping their running balance.
-- The reconciliation dashboard's ledger (newest first) and its movements per day (read from the index alone) (post-hooks: index_if_missing).
{{ config(
    materialized='incremental',
    unique_key='balance_transaction_id',
    incremental_strategy='changed_rows',
    on_schema_change='fail',
    indexes=[
        {'columns': ['balance_transaction_id'], 'unique': True},
        {'columns': ['balance_id', 'created_at', 'balance_transaction_id']},
        {'columns': ['mollie_payment_id']},
        {'columns': ['order_number']},
    ],
    post_hook=[
        "{{ index_if_missing('created', '(created_at)') }}",
        "{{ index_if_missing('daily', '(created_date) include (result_amount, organization_id)') }}",
    ],
) }}
{% set wm = incremental_watermark(uses_settings=true) %}
{% set line_columns = [
    'balance_transaction_id', 'balance_id', 'transaction_type', 'created_at', 'currency', 'initial_amount',
    'deductions', 'result_amount', 'mollie_payment_id', 'mollie_refund_id', 'mollie_chargeback_id',
    'settlement_id',
] %}
with transactions as (
    select
        balance_transaction_id,
        balance_id,
        transaction_type,
        created_at,
        currency,
        cast(initial_amount as numeric(18, 2)) as initial_amount,
        cast(deductions as numeric(18, 2)) as deductions,
        cast(result_amount as numeric(18, 2)) as result_amount,
        mollie_payment_id,
        mollie_refund_id,
        mollie_chargeback_id,
        settlement_id,
        _loaded_at
    from {{ ref('stg_mollie__balance_transactions') }}
),

{% if not wm %}

rebuilt as (
    select
        {{ line_columns | join(', ') }},
        cast(sum(result_amount) over (
            partition by balance_id order by created_at, balance_transaction_id
        ) as numeric(18, 2)) as running_balance
    from transactions
),

{% else %}

new_lines as (
    select {{ line_columns | join(', ') }}
    from transactions
    where _loaded_at > {{ wm }}
),

-- per balance, the earliest new line: the running balance is recomputed from there on
restarts as (
    select distinct on (balance_id) balance_id, created_at, balance_transaction_id
    from new_lines
    order by balance_id, created_at, balance_transaction_id
),

openings as (
    select
        r.*,
        coalesce((
            select b.running_balance
            from {{ this }} as b
            where b.balance_id = r.balance_id
              and (b.created_at, b.balance_transaction_id) < (r.created_at, r.balance_transaction_id)
            order by b.created_at desc, b.balance_transaction_id desc
            limit 1
        ), 0) as opening_balance
    from restarts as r
),

-- stored lines after a restart: their running balance moves
later_lines as (
    select {% for c in line_columns %}b.{{ c }}{{ ', ' if not loop.last }}{% endfor %}
    from {{ this }} as b
    inner join restarts as r on r.balance_id = b.balance_id
    where (b.created_at, b.balance_transaction_id) > (r.created_at, r.balance_transaction_id)
      and not exists (select 1 from new_lines as n where n.balance_transaction_id = b.balance_transaction_id)
),

rebalanced as (
    select
        l.*,
        cast(o.opening_balance + sum(l.result_amount) over (
            partition by l.balance_id order by l.created_at, l.balance_transaction_id
        ) as numeric(18, 2)) as running_balance
    from (select * from new_lines union all select * from later_lines) as l
    inner join openings as o on o.balance_id = l.balance_id
),

-- platform payments and orders loaded since, and the payments of those orders
changed_orders as (
    select order_id, order_number from {{ ref('stg_platform__orders') }} where _loaded_at > {{ wm }}
    union
    select o.order_id, o.order_number
    from {{ ref('stg_platform__payments') }} as p
    inner join {{ ref('stg_platform__orders') }} as o on o.order_id = p.order_id
    where p._loaded_at > {{ wm }}
),

changed_payment_ids as (
    select mollie_payment_id from {{ ref('stg_platform__payments') }} where _loaded_at > {{ wm }}
    union
    select p.mollie_payment_id
    from {{ ref('stg_platform__payments') }} as p
    where p.order_id in (select order_id from changed_orders)
),

-- stored lines now linked to a changed payment or order, or linked to one before: linked again. Two lookups
-- through an index each: one `or` of the two made the planner expect most of the table and scan it whole.
relinked as (
    select {% for c in line_columns %}b.{{ c }}, {% endfor %}b.running_balance
    from {{ this }} as b
    where b.mollie_payment_id in (select mollie_payment_id from changed_payment_ids)
    union
    select {% for c in line_columns %}b.{{ c }}, {% endfor %}b.running_balance
    from {{ this }} as b
    where b.order_number in (select order_number from changed_orders)
),

rebuilt as (
    select * from rebalanced
    union all
    select * from relinked as b
    where not exists (select 1 from rebalanced as r where r.balance_transaction_id = b.balance_transaction_id)
),

{% endif %}

final as (
    select
        r.balance_transaction_id,
        r.balance_id,
        r.transaction_type,
        r.created_at,
        {{ reporting_date('r.created_at') }} as created_date,
        r.currency,
        r.initial_amount,
        r.deductions,
        r.result_amount,
        r.running_balance,
        r.mollie_payment_id,
        r.mollie_refund_id,
        r.mollie_chargeback_id,
        r.settlement_id,
        o.order_number,
        o.organization_id,
        now() as _loaded_at
    from rebuilt as r
    left join {{ ref('stg_platform__payments') }} as pp on pp.mollie_payment_id = r.mollie_payment_id
    left join {{ ref('stg_platform__orders') }} as o on o.order_id = pp.order_id
)

select * from final
