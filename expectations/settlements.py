"""The settlement reconciliation suite: Mollie's payouts against the platform's own records.

The tolerance is the dbt var `reconciliation_tolerance`, the one the marts flag `is_reconciled` with.
"""

from __future__ import annotations

from expectations.runner import RowExpectation, Suite

# A settlement that differs is finance's work list, not a reason to stop publishing (it warns); money that
# no discrepancy explains, or a settlement that breaks Mollie's own identity, is.
SETTLEMENT_MATCHES_PLATFORM = RowExpectation(
    name="settlement_matches_platform",
    description="Per settlement, Mollie's reported amount equals the platform-side expected amount "
    "(payments - refunds - chargebacks - costs) within the reconciliation tolerance.",
    query="""
        select b.settlement_id, b.settlement_reference, b.settlement_date, b.reported_amount, b.expected_amount,
               b.difference, b.discrepancy_count
        from {batch} as b
        where not b.is_reconciled
        order by b.settlement_date""",
    blocking=False,
)

SETTLEMENT_DIFFERENCES_EXPLAINED = RowExpectation(
    name="settlement_differences_explained",
    description="Every euro of difference is named by an itemized discrepancy: the settlement's difference "
    "(from its totals) minus the sum of its discrepant items' differences is within the tolerance.",
    query="""
        select b.settlement_id, b.settlement_reference, b.difference, b.explained_difference,
               b.unexplained_difference
        from {batch} as b
        where abs(b.unexplained_difference) >= {{ var('reconciliation_tolerance') }}""",
)

SETTLEMENT_IDENTITY = RowExpectation(
    name="settlement_identity",
    description="Mollie's own identity: the settlement amount = sum of revenue amountNet - sum of costs "
    "amountGross over all periods, rounded to the cent (int_mollie__settlement_identity; revenue "
    "amountGross is never summed: the refund sign trap).",
    query="""
        select b.settlement_id, b.settlement_reference, b.reported_amount, i.identity_amount,
               b.reported_amount - i.identity_amount as difference
        from {batch} as b
        join {{ ref('int_mollie__settlement_identity') }} as i on i.settlement_id = b.settlement_id
        where abs(b.reported_amount - i.identity_amount) >= {{ var('reconciliation_tolerance') }}""",
)

SUITE = Suite(
    "settlement_reconciliation",
    "fct_settlement_reconciliation",
    ("marts", "fct_settlement_reconciliation"),
    (SETTLEMENT_MATCHES_PLATFORM, SETTLEMENT_DIFFERENCES_EXPLAINED, SETTLEMENT_IDENTITY),
)
