"""The walking skeleton's promises, proven on data that flowed source -> raw -> staging -> marts."""

import csv
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import psycopg

from extract import platform as platform_extract
from orchestration import pipeline

TZ = "Europe/Amsterdam"


def test_first_run_succeeds_and_flags_the_differing_settlements(runs):
    first, _ = runs
    assert first.success, first
    assert first.failed_checks == []
    assert first.warned_checks == ["marts/fct_settlement_reconciliation:settlement_matches_platform"]


def test_row_counts_in_raw_equal_the_source(settings, runs, sandbox_db):
    counts = {table: (src, raw, held) for table, src, raw, held in pipeline.layer_counts(settings)}
    for table in platform_extract.TABLES:
        src, raw, held = counts[table]
        assert src > 0, table
        assert (src, held) == (raw, 0), (table, src, raw, held)
    mollie = dict(sandbox_db.execute("select kind, count(*) from objects group by kind").fetchall())
    assert counts["mollie_payments"][1] == mollie["payment"]
    assert counts["mollie_refunds"][1] == mollie["refund"]
    assert counts["mollie_chargebacks"][1] == mollie["chargeback"] > 0
    assert counts["mollie_settlements"][1] == mollie["settlement"]
    assert counts["mollie_balance_transactions"][1] == mollie["balance_transaction"]
    settled = sandbox_db.execute(
        "select count(*) from objects where kind = 'payment' and settlement_id is not null"
    ).fetchone()[0]
    assert counts["mollie_settlement_payments"][1] == settled


def test_gmv_in_the_kpi_mart_equals_independent_sql_over_the_source(source, warehouse):
    # Independent: integer cents straight from the platform database, grouped by local day.
    expected = {
        day: Decimal(cents) / 100
        for day, cents in source.execute(
            "select cast(paid_at at time zone %s as date), sum(total_cents) from orders "
            "where paid_at is not null group by 1",
            (TZ,),
        )
    }
    actual = {day: gmv for day, gmv in warehouse.execute("select date_day, gmv from marts.kpi_daily where gmv <> 0")}
    assert actual == expected
    total = source.execute("select sum(total_cents) from orders where paid_at is not null").fetchone()[0]
    assert warehouse.execute("select sum(gmv) from marts.kpi_daily").fetchone()[0] == Decimal(total) / 100


def test_every_planted_discrepancy_is_found_and_nothing_else(sandbox_db, warehouse):
    planted = {
        pid: status
        for pid, status in sandbox_db.execute("select mollie_payment_id, expected_match_status from planted")
    }
    kinds = {k for (k,) in sandbox_db.execute("select distinct kind from planted")}
    assert kinds == {
        "amount_mismatch",
        "missing_in_platform",
        "not_settled",
        "refund_mollie_only",
        "refund_platform_only",
        "chargeback",
        "status_mismatch",
    }
    flagged = dict(
        warehouse.execute(
            "select mollie_payment_id, match_status from marts.fct_payment_reconciliation "
            "where match_status <> 'matched'"
        ).fetchall()
    )
    assert flagged == planted


def test_settlement_differences_are_exactly_the_planted_money(sandbox_db, warehouse):
    # Only these planted kinds move money inside a settlement; each by a known amount.
    expected = defaultdict(Decimal)
    for kind, settlement_id, payment_id, refund_id in sandbox_db.execute(
        "select kind, settlement_id, mollie_payment_id, mollie_refund_id from planted "
        "where kind in ('amount_mismatch', 'missing_in_platform', 'refund_mollie_only')"
    ):
        if kind == "refund_mollie_only":
            (body,) = sandbox_db.execute(
                "select body from objects where kind = 'refund' and id = %s", (refund_id,)
            ).fetchone()
            expected[settlement_id] -= Decimal(body["amount"]["value"])
        else:
            (body,) = sandbox_db.execute(
                "select body from objects where kind = 'payment' and id = %s", (payment_id,)
            ).fetchone()
            platform = warehouse.execute(
                "select amount from staging.stg_platform__payments where mollie_payment_id = %s", (payment_id,)
            ).fetchone()
            expected[settlement_id] += Decimal(body["amount"]["value"]) - (platform[0] if platform else 0)
    actual = dict(
        warehouse.execute(
            "select settlement_id, difference from marts.fct_settlement_reconciliation where not is_reconciled"
        ).fetchall()
    )
    assert actual == {k: v for k, v in expected.items() if v != 0}
    unexplained = warehouse.execute(
        "select count(*) from marts.fct_settlement_reconciliation where abs(unexplained_difference) >= 0.01"
    ).fetchone()[0]
    assert unexplained == 0


def test_settlement_identity_holds_for_every_sandbox_settlement(sandbox_db):
    settlements = [b for (b,) in sandbox_db.execute("select body from objects where kind = 'settlement'")]
    assert len(settlements) >= 20
    for s in settlements:
        revenue = costs = Decimal(0)
        for months in s["periods"].values():
            for period in months.values():
                revenue += sum(Decimal(line["amountNet"]["value"]) for line in period["revenue"])
                costs += sum(Decimal(line["amountGross"]["value"]) for line in period["costs"])
        identity = (revenue - costs).quantize(Decimal("0.01"), ROUND_HALF_UP)
        assert Decimal(s["amount"]["value"]) == identity, s["id"]
        # and the items Mollie lists for it add up to its revenue lines
        listed = sandbox_db.execute(
            "select coalesce(sum(case kind when 'payment' then 1 else -1 end"
            " * (body->'amount'->>'value')::numeric), 0) from objects where settlement_id = %s",
            (s["id"],),
        ).fetchone()[0]
        assert listed == revenue, s["id"]


def test_second_run_loads_nothing_twice(runs, settings, warehouse):
    first, second = runs
    assert second.success
    assert sum(first.rows_written.values()) > 0
    assert second.rows_written and set(second.rows_written.values()) == {0}, second.rows_written
    for table, src, raw, _ in pipeline.layer_counts(settings):
        if src is not None:
            assert raw == src, table
    dupes = warehouse.execute(
        "select count(*) - count(distinct mollie_payment_id) from marts.fct_payment_reconciliation"
    ).fetchone()[0]
    assert dupes == 0


def test_monthly_reports_match_the_marts(settings, warehouse, runs):
    folder = settings.reports_dir / "reconciliation"
    months = sorted(p.name for p in folder.iterdir())
    expected_months = [
        m
        for (m,) in warehouse.execute(
            "select distinct to_char(settlement_date, 'YYYY-MM') from marts.fct_settlement_reconciliation order by 1"
        )
    ]
    assert months == expected_months
    bad_month, bad_reference = warehouse.execute(
        "select to_char(settlement_date, 'YYYY-MM'), settlement_reference from marts.fct_settlement_reconciliation "
        "where not is_reconciled order by settlement_date limit 1"
    ).fetchone()
    with open(folder / bad_month / "settlements.csv") as f:
        rows = list(csv.DictReader(f))
    total = warehouse.execute(
        "select sum(reported_amount) from marts.fct_settlement_reconciliation "
        "where to_char(settlement_date, 'YYYY-MM') = %s",
        (bad_month,),
    ).fetchone()[0]
    assert sum(Decimal(r["reported_amount"]) for r in rows) == total
    html = (folder / bad_month / "reconciliation.html").read_text()
    assert f'<tr class="discrepant">\n    <td>{bad_reference}</td>' in html
    assert 'Reconciled</td><td><span class="bad">no</span>' in html


def test_dbt_keeps_the_artifacts_of_the_last_few_runs_only(runs, tmp_path):
    """dagster-dbt writes each run to target/<folder>: 416 MB after 60 runs. The oldest go."""
    import os

    from boxoffice.dbt_project import prune_runs
    from boxoffice.settings import DBT_PROJECT_DIR
    from orchestration.dbt_assets import KEEP_RUN_ARTIFACTS

    for i in range(8):
        folder = tmp_path / f"boxoffice_dbt_assets-{i}"
        folder.mkdir()
        os.utime(folder, (1_000_000 + i, 1_000_000 + i))
    (tmp_path / "manifest.json").write_text("{}")
    removed = prune_runs(tmp_path, "boxoffice_dbt_assets-", keep=5)
    assert sorted(p.name for p in removed) == [f"boxoffice_dbt_assets-{i}" for i in range(3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"boxoffice_dbt_assets-{i}" for i in range(3, 8)] + [
        "manifest.json"
    ]
    assert len(list((DBT_PROJECT_DIR / "target").glob("boxoffice_dbt_assets-*"))) <= KEEP_RUN_ARTIFACTS


def test_a_run_writes_its_events_through_a_few_connections_to_dagsters_storage(settings, runs):
    """Dagster's PostgreSQL storage opens a connection per read or write unless pooled: 557 for this run's 192 events
    (at a million orders, 15 s of the run's process). Pooled, a run needs a few dozen whatever it writes."""

    def counts() -> tuple[int, int]:
        """(sessions ever opened on Dagster's database, this one included; events stored)."""
        with psycopg.connect(settings.dagster_storage_dsn, autocommit=True) as conn:
            sessions = "select sessions from pg_stat_database where datname = current_database()"
            return conn.execute(sessions).fetchone()[0], conn.execute("select count(*) from event_logs").fetchone()[0]

    sessions_before, events_before = counts()
    assert pipeline.run_everything(settings).success
    sessions_after, events_after = counts()
    written, sessions = events_after - events_before, sessions_after - sessions_before - 1  # counts()'s own
    assert written >= 30, written
    assert sessions <= 50 and sessions * 4 < written, (sessions, written)
