"""The settlement reconciliation suite: Mollie's payouts against the platform's own records."""

from __future__ import annotations

from expectations.runner import RowExpectation, Suite

TOLERANCE = "0.01"

# A settlement that differs is finance's work list, not a reason to stop publishing (it warns); money that
# no discrepancy explains, or a settlement that breaks Mollie's own identity, is.
SETTLEMENT_MATCHES_PLATFORM = RowExpectation(
    name="settlement_matches_platform",
    description="Per settlement, Mollie's reported amount equals the platform-side expected amount "
    "(payments - refunds - chargebacks - costs) to the cent.",
    query=f"""
        select b.settlement_id, b.settlement_reference, b.settlement_date, b.reported_amount, b.expected_amount,
               b.difference, b.discrepancy_count
        from (select * from {{batch}}) as b
        where abs(b.difference) >= {TOLERANCE}
        order by b.settlement_date""",
    blocking=False,
)

SETTLEMENT_DIFFERENCES_EXPLAINED = RowExpectation(
    name="settlement_differences_explained",
    description="Every euro of difference is named by an itemized discrepancy: "
    "abs(difference - explained_difference) < 0.01 for every settlement.",
    query=f"""
        select b.settlement_id, b.settlement_reference, b.difference, b.explained_difference,
               b.unexplained_difference
        from (select * from {{batch}}) as b
        where abs(b.unexplained_difference) >= {TOLERANCE}""",
)

SETTLEMENT_IDENTITY = RowExpectation(
    name="settlement_identity",
    description="Mollie's own identity: amount = sum of revenue amountNet - sum of costs amountGross over "
    "all periods, rounded to the cent (revenue amountGross is never summed: the refund sign trap).",
    query=f"""
        select b.settlement_id, b.settlement_reference, b.reported_amount, l.identity_amount,
               b.reported_amount - l.identity_amount as difference
        from (select * from {{batch}}) as b
        join (
            select settlement_id,
                   round(coalesce(sum(amount_net) filter (where line_type = 'revenue'), 0)
                         - coalesce(sum(amount_gross) filter (where line_type = 'costs'), 0), 2) as identity_amount
            from intermediate.int_mollie__settlement_lines
            group by settlement_id
        ) as l on l.settlement_id = b.settlement_id
        where abs(b.reported_amount - l.identity_amount) >= {TOLERANCE}""",
)

SUITE = Suite(
    "settlement_reconciliation",
    "marts",
    "fct_settlement_reconciliation",
    ("marts", "fct_settlement_reconciliation"),
    (SETTLEMENT_MATCHES_PLATFORM, SETTLEMENT_DIFFERENCES_EXPLAINED, SETTLEMENT_IDENTITY),
)
