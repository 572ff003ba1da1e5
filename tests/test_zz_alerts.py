"""Alerts that reach a person, through real runs and a real HTTP receiver: a burst of failed payments planted in
the source raises a high-risk fraud alert and breaches the payment failure rule, a blocking check fails; each
sends exactly one notification, and the next runs, with the same conditions, send none. Runs late: it adds rows
to the session's source."""

import json
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from boxoffice import alerts
from boxoffice.cli import main
from expectations.runner import Suite

BURST = 24  # failed payments of one buyer within the hour before the as-of instant (high risk: > 2 x 3)
GMV_CHECK = "check:marts/fct_financial_monthly:paid_gmv_matches_mollie"


@pytest.fixture
def receiver():
    """A Slack-style incoming webhook on localhost: the JSON bodies it was sent."""
    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def plant_burst(source, as_of: datetime) -> None:
    """One order whose buyer's card is declined BURST times in the hour before the marts' as-of instant."""
    source.execute(
        """
        insert into orders
        select (jsonb_populate_record(null::orders, to_jsonb(o) || jsonb_build_object(
            'id', (select max(id) + 1 from orders), 'order_number', 'ORD-BURST-0001', 'status', 'failed',
            'paid_at', null, 'buyer_email', 'declined.card@example.test', 'buyer_ip', '203.0.113.77',
            'created_at', %(start)s, 'updated_at', now()))).*
        from orders as o where o.id = (select min(id) from orders where status = 'paid')
        """,
        {"start": as_of - timedelta(minutes=55)},
    )
    source.execute(
        """
        insert into payments (id, order_id, mollie_payment_id, status, method, amount_cents, currency,
                              failure_reason, created_at, paid_at, updated_at)
        select (select max(id) from payments) + n, o.id, 'tr_Burst' || lpad(n::text, 4, '0'), 'failed', 'creditcard',
               o.total_cents, o.currency, 'card_declined', %(start)s + n * interval '2 minutes', null, now()
        from orders as o cross join generate_series(1, %(burst)s) as n
        where o.order_number = 'ORD-BURST-0001'
        """,
        {"start": as_of - timedelta(minutes=55), "burst": BURST},
    )


def touch(source) -> None:
    """A change the next run builds (so the suites and the alert rules are evaluated again)."""
    source.execute("update payments set updated_at = now() where mollie_payment_id = 'tr_Burst0001'")


def disagree_on_paid_gmv(monkeypatch) -> None:
    """The paid-GMV check finds one disagreeing month."""
    validate = Suite.validate

    def planted(self, *args, **kwargs):
        if self.name == "paid_gmv":
            (expectation,) = self.expectations
            query = "select '2026-10' as month_start, 1.23 as difference, 'planted' as reason from {batch} as b limit 1"
            self = replace(self, expectations=(replace(expectation, query=query),))
        return validate(self, *args, **kwargs)

    monkeypatch.setattr(Suite, "validate", planted)


def test_each_condition_notifies_once_and_not_again_while_it_lasts(
    runs, settings, source, warehouse, receiver, monkeypatch, capsys
):
    url, received = receiver
    # the session's first runs sent the demo's high-risk fraud alerts (if any) once, to the alert log (no channel)
    (high,) = warehouse.execute("select count(*) from marts.fct_fraud_alerts where risk_level = 'high'").fetchone()
    log_path = settings.home / "alerts.log"
    log = [json.loads(line) for line in log_path.read_text().splitlines()] if log_path.exists() else []
    assert [len(e["keys"]) for e in log if e["keys"][0].startswith("fraud:")] == ([high] if high else [])

    monkeypatch.setenv("ALERT_WEBHOOK_URL", url)
    plant_burst(source, settings.as_of)
    disagree_on_paid_gmv(monkeypatch)
    assert main(["run"]) == 1  # the blocking check stops the run
    run_id = _latest_run_id()
    texts = sorted(r["text"] for r in received)
    assert [t.splitlines()[0] for t in texts] == [
        "2 new high-risk fraud alerts",  # the buyer and the IP behind the burst
        "Alert rule breached: payment_failure_rate",
        "Blocking check failed: marts/fct_financial_monthly:paid_gmv_matches_mollie",
    ]
    fraud, rule, check = texts
    assert fraud.count("failed_payments_burst") == 2 and f"{BURST} failed payments within one hour" in fraud
    (rate, sample) = warehouse.execute(
        "select observed, sample_size from marts.health_alert_rules where rule_name = 'payment_failure_rate'"
    ).fetchone()
    assert sample >= BURST and f"observed {rate:.1%} over {sample:,}, threshold 30%" in rule
    assert "1 rows disagree" in check and "planted" in check
    assert all(t.endswith(f"/runs/{run_id}") for t in texts)  # a link to the run that found it
    assert "Alerts sent:               3" in capsys.readouterr().out

    # the daemon's sensor, on the same failed run, names the same check (here once the cooldown is over)
    received.clear()
    monkeypatch.setenv("ALERT_COOLDOWN_MINUTES", "0")
    sensor_on_failed_run(run_id)
    assert [r["text"].splitlines()[0] for r in received] == [check.splitlines()[0]]
    monkeypatch.delenv("ALERT_COOLDOWN_MINUTES")

    received.clear()
    touch(source)
    assert main(["run"]) == 1  # the same failure and the same breached rule: within the cooldown
    assert received == []

    (times,) = warehouse.execute(
        "select times_sent from raw._alerts_sent where alert_key = %s", (GMV_CHECK,)
    ).fetchone()
    assert times == 2  # the run, and the sensor once its cooldown was over
    # (the next runs of the session evaluate the check again, unplanted: it passes)


def sensor_on_failed_run(run_id: str) -> None:
    import dagster as dg

    from orchestration.alert_assets import notify_failed_runs
    from orchestration.resources import BoxofficeSettings

    with dg.DagsterInstance.get() as instance:
        (failure,) = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
        context = dg.build_run_status_sensor_context(
            sensor_name="notify_failed_runs",
            dagster_instance=instance,
            dagster_run=instance.get_run_by_id(run_id),
            dagster_event=failure.event_log_entry.dagster_event,
        ).for_run_failure()
        notify_failed_runs(context, settings=BoxofficeSettings())


def _latest_run_id() -> str:
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        return instance.get_runs(limit=1)[0].run_id


def test_a_lasting_condition_is_sent_again_after_the_cooldown_and_a_fraud_alert_never(settings, runs, receiver):
    url, received = receiver
    own = replace(settings, alerts=replace(alerts.config_of(settings), webhook_url=url, cooldown_minutes=30))
    rule = alerts.Notification(("rule:test_cooldown",), "Alert rule breached: test_cooldown")
    fraud = alerts.Notification(("fraud:test-once",), "1 new high-risk fraud alert", once=True)
    start = datetime.now(UTC)
    sent = [alerts.notify(own, [rule, fraud], now=start + timedelta(minutes=m)).sent for m in (0, 29, 31, 60, 62)]
    # due again 30 minutes after it was last sent; the fraud alert never
    assert sent == [[rule.title, fraud.title], [], [rule.title], [], [rule.title]]
    assert len(received) == 4


def test_a_channel_that_fails_does_not_count_as_sent(settings, runs, tmp_path):
    dead = replace(settings, alerts=replace(alerts.config_of(settings), webhook_url="http://127.0.0.1:9/nothing"))
    note = alerts.Notification(("rule:test_unreachable",), "Alert rule breached: test_unreachable")
    first = alerts.notify(dead, [note])
    assert first.sent == [] and first.failed and first.failed[0].startswith(note.title + ": webhook: ")
    assert alerts.notify(dead, [note]).failed  # tried again, not suppressed
    logged = [json.loads(line) for line in alerts.config_of(settings).log_path.read_text().splitlines()]
    assert [e["errors"] != [] for e in logged if e["keys"] == ["rule:test_unreachable"]] == [True, True]
