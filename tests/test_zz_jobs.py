"""The scheduled jobs, run as the daemon runs them (in process, on the session's real sources): the 5-minute
micro-batch picks up a burst of failed payments and the fraud alert appears without touching Mollie or the
finance marts; the Mollie sensor fires on a new settlement in the sandbox, and the job it requests reconciles
it. Runs last: it adds rows to the source and the sandbox."""

import json
from datetime import timedelta

import dagster as dg
import pytest
from psycopg.types.json import Jsonb

from boxoffice.cli import main
from orchestration import pipeline
from orchestration.definitions import defs
from orchestration.jobs import mollie_settlements, schedules_on
from orchestration.resources import BoxofficeSettings


def materialized(run_id: str) -> set[str]:
    with dg.DagsterInstance.get() as instance:
        records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    return {r.event_log_entry.dagster_event.asset_key.to_user_string() for r in records}


def latest_run(job: str) -> dg.DagsterRun:
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs(filters=dg.RunsFilter(job_name=job), limit=1)
    return run


def test_the_micro_batch_raises_the_fraud_alert_of_a_burst_it_just_loaded(settings, runs, source, warehouse):
    start = settings.as_of - timedelta(minutes=40)
    source.execute(
        """
        insert into orders
        select (jsonb_populate_record(null::orders, to_jsonb(o) || jsonb_build_object(
            'id', (select max(id) + 1 from orders), 'order_number', 'ORD-MICRO-0001', 'status', 'failed',
            'paid_at', null, 'buyer_email', 'micro.batch@example.test', 'buyer_ip', '198.51.100.23',
            'created_at', %(start)s, 'updated_at', now()))).*
        from orders as o where o.id = (select min(id) from orders where status = 'paid')
        """,
        {"start": start},
    )
    source.execute(
        """
        insert into payments (id, order_id, mollie_payment_id, status, method, amount_cents, currency,
                              failure_reason, created_at, paid_at, updated_at)
        select (select max(id) from payments) + n, o.id, 'tr_Micro' || lpad(n::text, 4, '0'), 'failed', 'creditcard',
               o.total_cents, o.currency, 'card_declined', %(start)s + n * interval '1 minute', null, now()
        from orders as o cross join generate_series(1, 8) as n where o.order_number = 'ORD-MICRO-0001'
        """,
        {"start": start},
    )
    # and a table nothing was loaded into for a month: its source freshness warns, the job goes on
    stale = "update raw.platform_organizations set _loaded_at = _loaded_at + %s"
    warehouse.execute(stale, (timedelta(days=-30),))
    try:
        outcome = pipeline.run_job(settings, "micro_batch")
    finally:
        warehouse.execute(stale, (timedelta(days=30),))
    assert outcome.ok, outcome
    assert outcome.warned_checks == ["raw/platform_organizations:source_freshness"]
    (buyer,) = warehouse.execute(
        "select buyer_key from intermediate.int_orders where order_number = 'ORD-MICRO-0001'"
    ).fetchone()
    alert = warehouse.execute(
        "select risk_level, details from marts.fct_fraud_alerts where subject = %s", (f"buyer:{buyer}",)
    ).fetchone()
    assert alert == ("high", "8 failed payments within one hour from one buyer")
    done = materialized(latest_run("micro_batch").run_id)
    assert {"raw/platform_payments", "marts/fct_fraud_alerts", "marts/health_payment_failures"} <= done
    assert "monitoring/alert_notifications" in done
    assert not [a for a in done if a.startswith("raw/mollie_") or a.startswith("marts/fct_settlement")]
    assert not [a for a in done if a.startswith("staging/")]  # views stand; the full build tests them


def settlement_body(sandbox_db) -> dict:
    """A new settlement Mollie is about to pay out: nothing in it yet (its identity: 0.00 = no revenue - no costs)."""
    (body,) = sandbox_db.execute(
        "select body from objects where kind = 'settlement' and body->>'status' = 'paidout' order by seq desc limit 1"
    ).fetchone()
    return {
        **body,
        "id": "stl_SensorTest1",
        "reference": "9999999.2611.01",
        "status": "pending",
        "amount": {**body["amount"], "value": "0.00"},
        "periods": {},
        "createdAt": "2026-11-27T08:00:00+00:00",
        "settledAt": None,
    }


def evaluate(instance, cursor: str | None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"settings": BoxofficeSettings()})
    return mollie_settlements(context), context.cursor


def test_a_new_settlement_at_mollie_runs_the_reconciliation(settings, runs, sandbox_db, warehouse, capsys):
    with dg.DagsterInstance.get() as instance:
        first, cursor = evaluate(instance, None)  # every settlement is new to a sensor that saw none
        again, cursor = evaluate(instance, cursor)
        body = settlement_body(sandbox_db)
        sandbox_db.execute(
            "insert into objects (kind, id, seq, parent_id, body) "
            "values ('settlement', %s, (select max(seq) + 1 from objects where kind = 'settlement'), null, %s)",
            (body["id"], Jsonb(body)),
        )
        fired, cursor = evaluate(instance, cursor)
    assert isinstance(first, dg.RunRequest) and isinstance(again, dg.SkipReason)
    assert isinstance(fired, dg.RunRequest) and fired.tags["boxoffice/settlements"] == "stl_SensorTest1 pending"
    assert json.loads(cursor)["stl_SensorTest1"] == "pending"

    assert main(["run", "--job", "mollie_reconciliation"]) == 0
    assert "Job mollie_reconciliation:" in capsys.readouterr().out
    row = warehouse.execute(
        "select status, reported_amount, is_reconciled from marts.fct_settlement_reconciliation "
        "where settlement_id = 'stl_SensorTest1'"
    ).fetchone()
    assert row == ("pending", 0, True)
    done = materialized(latest_run("mollie_reconciliation").run_id)
    assert {"raw/mollie_settlements", "marts/fct_settlement_reconciliation", "reports/reconciliation_reports"} <= done
    assert "marts/fct_fraud_alerts" not in done


def test_the_marts_say_how_fresh_they_must_be():
    graph = defs.resolve_asset_graph()
    windows = {
        name: (
            graph.get(dg.AssetKey(["marts", name])).freshness_policy.warn_window.to_timedelta(),
            graph.get(dg.AssetKey(["marts", name])).freshness_policy.fail_window.to_timedelta(),
        )
        for name in ("fct_fraud_alerts", "health_payment_failures", "fct_settlement_reconciliation")
    }
    assert windows == {
        "fct_fraud_alerts": (timedelta(minutes=15), timedelta(hours=1)),  # the micro-batch runs every 5 minutes
        "health_payment_failures": (timedelta(minutes=15), timedelta(hours=1)),
        "fct_settlement_reconciliation": (timedelta(hours=26), timedelta(hours=50)),  # the daily run
    }
    assert graph.get(dg.AssetKey(["marts", "kpi_daily"])).freshness_policy is None


def test_schedules_and_sensors_are_on_unless_a_setting_says_off(monkeypatch):
    assert schedules_on()
    names = {s.name: s for s in defs.schedules}
    crons = sorted(s.cron_schedule for s in names.values())
    assert crons == ["*/5 * * * *", "0 6 * * *", "0 7 * * 1", "0 7 1 * *"]
    assert all(s.default_status == dg.DefaultScheduleStatus.RUNNING for s in names.values())
    for off in ("off", "false", "0"):
        monkeypatch.setenv("BOXOFFICE_SCHEDULES", off)
        assert not schedules_on()


@pytest.mark.parametrize("job", ["micro_batch", "mollie_reconciliation", "finance_reports"])
def test_each_job_is_defined_with_its_selection(job):
    resolved = defs.resolve_job_def(job)
    keys = {k.to_user_string() for k in resolved.asset_layer.selected_asset_keys}
    expected = {
        "micro_batch": {"raw/platform_payments", "marts/fct_fraud_alerts", "marts/health_alert_rules"},
        "mollie_reconciliation": {"raw/mollie_settlements", "marts/fct_accounting_journal"},
        "finance_reports": {"reports/reconciliation_reports"},
    }[job]
    assert expected <= keys


def growth_rows(warehouse, start, end) -> dict:
    """growth_events_daily's rows from `start` up to `end` (excluded), by key; None: no bound."""
    rows = warehouse.execute(
        "select date_day, organization_id, event_status, currency, active_events, orders, paid_orders, paid_gmv "
        "from marts.growth_events_daily where date_day >= coalesce(%s, '-infinity'::date) "
        "and date_day < coalesce(%s, 'infinity'::date)",
        (start, end),
    ).fetchall()
    return {row[:4]: row[4:] for row in rows}


def first_of_next_month(day):
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def test_a_backfill_of_one_month_rebuilds_that_month_alone(settings, runs, warehouse, capsys):
    """The marts keyed by day are daily partitions: a backfill of a month's days in one run (what the UI's single-run
    backfill launches, here through `boxoffice backfill`) rebuilds that month whole, and leaves the other months as
    they are, even the next one made wrong on purpose."""
    (first_day,) = warehouse.execute("select min(date_day) from marts.growth_events_daily").fetchone()
    month = first_of_next_month(first_day)  # the first whole month of data
    following = first_of_next_month(month)
    beyond = first_of_next_month(following)
    before = {"month": growth_rows(warehouse, month, following), "following": growth_rows(warehouse, following, beyond)}
    # days that rows loaded since growth_events_daily's last build touch (the micro-batch's above): any build of it
    # builds them too, so that its watermark never passes a row it has not built
    touched = {
        day
        for (day,) in warehouse.execute(
            "select distinct created_date from intermediate.int_orders "
            "where _loaded_at > (select max(_loaded_at) from marts.growth_events_daily)"
        )
    }
    before["elsewhere"] = {**growth_rows(warehouse, None, month), **growth_rows(warehouse, beyond, None)}
    some_day = min(key[0] for key in before["month"]) + timedelta(days=9)
    warehouse.execute(
        "create temp table growth_kept as "
        "select * from marts.growth_events_daily where date_day >= %s and date_day < %s",
        (following, beyond),
    )
    broken = [
        ("update marts.growth_events_daily set paid_gmv = -1 where date_day >= %s and date_day < %s", (month, beyond)),
        ("delete from marts.growth_events_daily where date_day = %s", (some_day,)),
        (
            "insert into marts.growth_events_daily select date_day, -1, event_status, currency, 1, 1, 1, 99, "
            "_loaded_at from marts.growth_events_daily where date_day = %s limit 1",
            (month,),
        ),
    ]
    for statement, params in broken:
        warehouse.execute(statement, params)
    try:
        assert main(["backfill", "--from", month.isoformat(), "--to", (following - timedelta(days=1)).isoformat()]) == 0
        assert growth_rows(warehouse, month, following) == before["month"]  # rebuilt whole, the stray row gone
        assert len(before["month"]) >= 10 and any(key[0] == some_day for key in before["month"])
        untouched = growth_rows(warehouse, following, beyond)
        assert untouched.keys() == before["following"].keys() and {v[-1] for v in untouched.values()} == {-1}
        elsewhere = {**growth_rows(warehouse, None, month), **growth_rows(warehouse, beyond, None)}
        assert {k: v for k, v in elsewhere.items() if k[0] not in touched} == {
            k: v for k, v in before["elsewhere"].items() if k[0] not in touched
        }
        assert not touched & {k[0] for k in before["month"]}  # the month's rows are the backfill's alone
        with dg.DagsterInstance.get() as instance:
            records = instance.get_records_for_run(
                latest_run("daily_marts").run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
            ).records
        partitions = sorted(r.event_log_entry.dagster_event.partition for r in records)
        assert partitions == [(month + timedelta(days=d)).isoformat() for d in range((following - month).days)]
    finally:  # the next month as it was
        warehouse.execute(
            "delete from marts.growth_events_daily where date_day >= %s and date_day < %s", (following, beyond)
        )
        warehouse.execute("insert into marts.growth_events_daily select * from growth_kept")
    capsys.readouterr()
    assert main(["backfill", "--from", "1999-01-01", "--to", "1999-01-31"]) == 2
    assert "are not within the daily partitions 2024-01-01.." in capsys.readouterr().err
