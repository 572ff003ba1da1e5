"""The suites that prove the financial marts hold together: Mollie's ledger, its payouts, paid GMV on
three sides, and control totals from the source down to the marts.

Each expectation is a query returning the rows that disagree, with the amounts and the reason.
"""

from __future__ import annotations

from expectations.runner import RowExpectation, Suite

BALANCE_TRANSACTION_IDENTITY = RowExpectation(
    name="balance_transaction_identity",
    description="Every Mollie balance transaction: resultAmount = initialAmount + deductions.",
    query="""
        select b.balance_transaction_id, b.transaction_type, b.initial_amount, b.deductions, b.result_amount,
               b.result_amount - (b.initial_amount + b.deductions) as difference,
               'resultAmount is not initialAmount + deductions' as reason
        from {batch} as b
        where b.result_amount <> b.initial_amount + b.deductions""",
)

TRANSFER_EQUALS_SETTLEMENT = RowExpectation(
    name="transfer_equals_settlement",
    description="Every paid-out settlement has an outgoing transfer on the balance equal to its amount.",
    query="""
        select b.settlement_id, b.settlement_reference, b.settlement_amount, b.transferred_amount,
               b.untransferred_amount as difference,
               case when b.transfer_transaction_id is null then 'no outgoing transfer on the balance'
                    else 'transfer differs from the settlement amount' end as reason
        from {batch} as b
        where b.settlement_status = 'paidout'
          and (b.transfer_transaction_id is null or b.transferred_amount <> b.settlement_amount)""",
)

# Per local month and currency, with the listed discrepancies (fct_payment_reconciliation) left out on
# every side: the financial mart's paid GMV, the platform's paid payments, Mollie's paid payments.
PAID_GMV_MATCHES_MOLLIE = RowExpectation(
    name="paid_gmv_matches_mollie",
    description="Paid GMV in fct_financial_monthly = the platform's paid payments = Mollie's paid payments, "
    "per month, apart from the payments listed as discrepancies.",
    query="""
        with listed as (
            select mollie_payment_id from {{ ref('fct_payment_reconciliation') }} where match_status <> 'matched'
        ),
        mart as (
            select b.month_start, b.currency, sum(b.gross_revenue) as amount from {batch} as b group by 1, 2
        ),
        mart_listed as (
            select cast(date_trunc('month', o.paid_date) as date) as month_start, o.currency,
                   sum(o.total_amount) as amount
            from {{ ref('int_orders') }} as o
            where o.is_paid and o.mollie_payment_id in (select mollie_payment_id from listed)
            group by 1, 2
        ),
        -- each side summed straight from its rows, the listed payments left out by a hash anti-join; Mollie's
        -- amounts come out of their JSON payloads once, in int_mollie__payments (GX runs this query twice)
        platform_paid as (
            select cast(date_trunc('month', p.paid_at at time zone '{{ var("reporting_timezone") }}') as date)
                   as month_start, p.currency, sum(p.amount) as amount
            from {{ ref('stg_platform__payments') }} as p
            where p.payment_status = 'paid' and not exists (
                select 1 from listed as l where l.mollie_payment_id = p.mollie_payment_id
            )
            group by 1, 2
        ),
        mollie_paid as (
            select cast(date_trunc('month', m.paid_at at time zone '{{ var("reporting_timezone") }}') as date)
                   as month_start, m.currency, sum(m.amount) as amount
            from {{ ref('int_mollie__payments') }} as m
            where m.paid_at is not null and not exists (
                select 1 from listed as l where l.mollie_payment_id = m.mollie_payment_id
            )
            group by 1, 2
        ),
        sides as (
            select coalesce(a.month_start, p.month_start, m.month_start) as month_start,
                   coalesce(a.currency, p.currency, m.currency) as currency,
                   coalesce(a.amount, 0) - coalesce(l.amount, 0) as mart_gmv,
                   coalesce(p.amount, 0) as platform_paid, coalesce(m.amount, 0) as mollie_paid
            from mart as a
            full join platform_paid as p on p.month_start = a.month_start and p.currency = a.currency
            full join mollie_paid as m on m.month_start = coalesce(a.month_start, p.month_start)
                and m.currency = coalesce(a.currency, p.currency)
            left join mart_listed as l on l.month_start = a.month_start and l.currency = a.currency
        )
        select month_start, currency, mart_gmv, platform_paid, mollie_paid,
               mart_gmv - mollie_paid as difference,
               case when mart_gmv <> platform_paid then 'financial mart differs from the platform''s payments'
                    else 'platform differs from Mollie' end as reason
        from sides
        where mart_gmv <> platform_paid or platform_paid <> mollie_paid""",
)


CONTROL_TOTALS = RowExpectation(
    name="control_totals_kept",
    description="Row counts and money sums of raw equal the source's at extraction time, the rows held in "
    "quarantine then left out on both sides; and the financial mart keeps raw's paid orders and their money: "
    "no loss, no fan-out.",
    query="""
        with latest as (
            select distinct on (b.source_table) b.*
            from {batch} as b
            order by b.source_table, b.measured_at desc
        ),
        checks as (
            select source_table, 'raw rows (not held in quarantine)' as layer,
                   coalesce(source_kept_rows, source_rows - quarantined_rows) as expected,
                   coalesce(raw_kept_rows, raw_rows) as actual
            from latest
            union all
            select source_table, 'raw ' || amount_column || ' (not held in quarantine)',
                   source_kept_cents, raw_kept_cents
            from latest where amount_column is not null and source_kept_cents is not null
            union all
            select 'orders', 'fct_financial_monthly paid orders',
                   (select count(*) from {{ source('platform', 'orders') }} where paid_at is not null),
                   (select sum(paid_orders) from {{ ref('fct_financial_monthly') }})
            union all
            select 'orders', 'fct_financial_monthly gross_revenue (cents)',
                   (select sum(total_cents) from {{ source('platform', 'orders') }} where paid_at is not null),
                   (select sum(gross_revenue) * 100 from {{ ref('fct_financial_monthly') }})
        )
        select source_table, layer, expected, actual, actual - expected as difference,
               'control total not kept' as reason
        from checks
        where expected is distinct from actual""",
)

JOURNAL_BALANCES = RowExpectation(
    name="journal_entries_balance",
    description="Every journal entry and every month of the journal: debits = credits to the cent, per currency; "
    "every line a debit or a credit, never negative.",
    query="""
        with lines as (
            select b.journal_line_id, b.entry_id, b.entry_month, b.currency, b.debit, b.credit from {batch} as b
        ),
        totals as (
            select 'entry' as level, entry_id as unit, currency, sum(debit) as debits, sum(credit) as credits
            from lines group by entry_id, currency
            union all
            select 'month', to_char(entry_month, 'YYYY-MM'), currency, sum(debit), sum(credit)
            from lines group by entry_month, currency
        )
        select level, unit, currency, debits, credits, debits - credits as difference,
               'debits differ from credits' as reason
        from totals
        where debits <> credits
        union all
        select 'line', journal_line_id, currency, debit, credit, null,
               'a line must be a debit or a credit, not negative'
        from lines
        where debit < 0 or credit < 0 or (debit <> 0) = (credit <> 0)""",
)

LEDGER = Suite(
    "balance_ledger", "fct_balance_transactions", ("marts", "fct_balance_transactions"), (BALANCE_TRANSACTION_IDENTITY,)
)
PAYOUTS = Suite("payouts", "fct_payouts", ("marts", "fct_payouts"), (TRANSFER_EQUALS_SETTLEMENT,))
PAID_GMV = Suite("paid_gmv", "fct_financial_monthly", ("marts", "fct_financial_monthly"), (PAID_GMV_MATCHES_MOLLIE,))
CONTROL = Suite(
    "control_totals", ("boxoffice", "control_totals"), ("marts", "fct_financial_monthly"), (CONTROL_TOTALS,)
)
JOURNAL = Suite(
    "accounting_journal", "fct_accounting_journal", ("marts", "fct_accounting_journal"), (JOURNAL_BALANCES,)
)
SUITES = (LEDGER, PAYOUTS, PAID_GMV, CONTROL, JOURNAL)
