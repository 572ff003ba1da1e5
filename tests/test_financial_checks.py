"""The financial GX suites (ledger, payouts, paid GMV, control totals): pass on the clean pipeline run,
and fail naming exactly the planted rows. Plants are undone, so later tests see the clean warehouse."""

from contextlib import contextmanager

import pytest

from expectations import financials
from expectations.runner import RowExpectation, run_suite
from extract import contract


@contextmanager
def planted(warehouse, do: str, undo: str, *params):
    warehouse.execute(do, params)
    try:
        yield
    finally:
        warehouse.execute(undo, params)


def only(outcomes):
    (outcome,) = outcomes
    return outcome


def test_every_financial_check_passes_on_the_pipeline_run(runs, settings, warehouse, source):
    first, second = runs
    names = {e.name for s in financials.SUITES for e in s.expectations}
    assert not [c for c in first.failed_checks + second.failed_checks if c.split(":")[-1] in names]
    for suite in financials.SUITES:
        outcome = only(suite.validate(settings.warehouse_dsn))
        assert outcome.success and not outcome.errored and outcome.unexpected_count == 0, suite.name
    recorded = dict(
        warehouse.execute(
            "select distinct on (source_table) source_table, source_rows from raw._control_totals "
            "order by source_table, measured_at desc"
        ).fetchall()
    )
    assert set(recorded) == set(contract.LOAD_ORDER)
    for table, rows in recorded.items():
        assert rows == source.execute(f"select count(*) from {table}").fetchone()[0] > 0, table


def test_a_balance_transaction_that_breaks_mollies_identity_is_named(settings, warehouse):
    (tx,) = warehouse.execute("select min(balance_transaction_id) from marts.fct_balance_transactions").fetchone()
    with planted(
        warehouse,
        "update marts.fct_balance_transactions set result_amount = result_amount + 1.23 "
        "where balance_transaction_id = %s",
        "update marts.fct_balance_transactions set result_amount = "
        "result_amount - 1.23 where balance_transaction_id = %s",
        tx,
    ):
        outcome = only(financials.LEDGER.validate(settings.warehouse_dsn))
    assert not outcome.success and not outcome.errored
    assert [(r["balance_transaction_id"], str(r["difference"])) for r in outcome.unexpected_rows] == [(tx, "1.23")]


def test_a_transfer_that_differs_from_its_settlement_is_named(settings, warehouse):
    (settlement,) = warehouse.execute(
        "select min(settlement_id) from marts.fct_payouts where settlement_status = 'paidout'"
    ).fetchone()
    with planted(
        warehouse,
        "update marts.fct_payouts set transferred_amount = transferred_amount - 5 where settlement_id = %s",
        "update marts.fct_payouts set transferred_amount = transferred_amount + 5 where settlement_id = %s",
        settlement,
    ):
        outcome = only(financials.PAYOUTS.validate(settings.warehouse_dsn))
    assert not outcome.success
    assert [(r["settlement_id"], r["reason"]) for r in outcome.unexpected_rows] == [
        (settlement, "transfer differs from the settlement amount")
    ]


def test_paid_gmv_that_drifts_from_the_payments_is_named_by_month(settings, warehouse):
    (month,) = warehouse.execute("select max(month_start) from marts.fct_financial_monthly").fetchone()
    with planted(
        warehouse,
        "update marts.fct_financial_monthly set gross_revenue = gross_revenue + 10 where month_start = %s",
        "update marts.fct_financial_monthly set gross_revenue = gross_revenue - 10 where month_start = %s",
        month,
    ):
        outcome = only(financials.PAID_GMV.validate(settings.warehouse_dsn))
    assert not outcome.success
    (row,) = outcome.unexpected_rows
    assert row["month_start"] == month and str(row["mart_gmv"] - row["platform_paid"]) == "10.00"
    assert row["platform_paid"] == row["mollie_paid"]
    assert row["reason"] == "financial mart differs from the platform's payments"


def test_rows_lost_between_source_and_raw_are_named(settings, warehouse):
    latest = "(select max(measured_at) from raw._control_totals where source_table = 'tickets')"
    with planted(
        warehouse,
        f"update raw._control_totals set raw_kept_rows = raw_kept_rows - 2 where source_table = %s "
        f"and measured_at = {latest}",
        f"update raw._control_totals set raw_kept_rows = raw_kept_rows + 2 where source_table = %s "
        f"and measured_at = {latest}",
        "tickets",
    ):
        outcome = only(financials.CONTROL.validate(settings.warehouse_dsn))
    assert not outcome.success
    assert [(r["source_table"], r["layer"], r["difference"]) for r in outcome.unexpected_rows] == [
        ("tickets", "raw rows (not held in quarantine)", -2)
    ]


def test_a_broken_expectation_is_reported_as_errored_not_failed(settings):
    broken = RowExpectation("broken", "a query that cannot run", "select * from {batch} where no_such_column > 0")
    outcome = only(run_suite(settings.warehouse_dsn, "broken_suite", "marts", "fct_payouts", [broken]))
    assert outcome.errored and not outcome.success and outcome.error
    assert outcome.unexpected_rows == []


@pytest.mark.parametrize("suite", financials.SUITES, ids=lambda s: s.name)
def test_each_suite_is_a_blocking_dagster_check(suite):
    from orchestration.definitions import defs

    specs = {(s.asset_key.to_user_string(), s.name): s for c in defs.asset_checks for s in c.check_specs}
    for e in suite.expectations:
        spec = specs[("/".join(suite.asset), e.name)]
        assert spec.blocking and spec.description == e.description
