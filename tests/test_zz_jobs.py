"""The scheduled jobs, run as the daemon runs them (in process, on the session's real sources): the 5-minute
micro-batch picks up a burst of failed payments and the fraud alert appears without touching Mollie or the
finance marts; the Mollie sensor fires on a new settlement in the sandbox, and the job it requests reconciles
it. Runs last: it adds rows to the source and the sandbox."""

import json
from datetime import timedelta

import dagster as dg
import pytest
from psycopg.types.json import Jsonb

from boxoffice import pipeline
from boxoffice.cli import main
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
