"""Alerts that reach a person (boxoffice/alerts.py), the Dagster way: an asset that notifies on new high-risk
fraud alerts and breached alert rules whenever the marts behind them are built, and a sensor that notifies on
runs the daemon launched that failed (naming the blocking checks that stopped them)."""

from collections.abc import Iterable

import dagster as dg

from boxoffice import alerts
from orchestration.resources import BoxofficeSettings, WarehouseLock

FRAUD_ALERTS = dg.AssetKey(["marts", "fct_fraud_alerts"])
ALERT_RULES = dg.AssetKey(["marts", "health_alert_rules"])


@dg.asset(
    key=["monitoring", "alert_notifications"],
    group_name="monitoring",
    kinds={"python"},
    deps=[FRAUD_ALERTS, ALERT_RULES],
    description="Notifies (ALERT_WEBHOOK_URL, ALERT_SMTP_*, always the alert log) each high-risk fraud alert the "
    "first time it appears, and each breached alert rule of health_alert_rules once per ALERT_COOLDOWN_MINUTES.",
)
def alert_notifications(
    context: dg.AssetExecutionContext, settings: BoxofficeSettings, warehouse_lock: WarehouseLock
) -> dg.MaterializeResult:
    s = settings.load()
    notifications = alerts.fraud_notifications(s, context.run_id) + alerts.rule_notifications(s, context.run_id)
    delivery = alerts.notify(s, notifications)
    for failure in delivery.failed:
        context.log.warning(f"alert not delivered (tried again next run): {failure}")
    return dg.MaterializeResult(
        metadata={
            "alerts_sent": len(delivery.sent),
            "suppressed": len(delivery.suppressed),
            "not_delivered": len(delivery.failed),
            "sent_titles": dg.MetadataValue.md("\n".join(f"- {t}" for t in delivery.sent) or "(none)"),
        }
    )


def check_notifications(evaluations: Iterable, run_id: str | None = None) -> list[alerts.Notification]:
    """A notification per blocking check that failed or could not run (Dagster's AssetCheckEvaluations), with its
    numbers: how many rows disagree and the first of them, or the database's message."""
    notifications = []
    for e in evaluations:
        if e.passed or e.severity != dg.AssetCheckSeverity.ERROR:
            continue
        metadata = {k: v.value for k, v in e.metadata.items()}
        name = f"{e.asset_key.to_user_string()}:{e.check_name}"
        if metadata.get("errored"):
            title, lines = f"Check could not run: {name}", (str(metadata.get("error", "")),)
        else:
            rows = str(metadata.get("disagreeing_rows", "")).splitlines()
            title = f"Blocking check failed: {name}"
            lines = (f"{metadata.get('unexpected_count', '?')} rows disagree", *alerts.listed(rows, "lines"))
        notifications.append(alerts.Notification((f"check:{name}",), title, lines, run_id=run_id))
    return notifications


def run_notification(job: str, failed_steps: list[str], run_id: str | None) -> alerts.Notification:
    return alerts.Notification(
        (f"run:{job}",), f"Run failed: {job}", alerts.listed(failed_steps, "steps"), run_id=run_id
    )


def run_check_evaluations(instance: dg.DagsterInstance, run_id: str) -> list:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    return [r.event_log_entry.dagster_event.event_specific_data for r in records]


def run_failure_notifications(instance: dg.DagsterInstance, run: dg.DagsterRun, failed_steps: list[str]) -> list:
    """The blocking checks that failed or could not run in the run; else the run's failure itself."""
    notifications = check_notifications(run_check_evaluations(instance, run.run_id), run.run_id)
    return notifications or [run_notification(run.job_name, failed_steps, run.run_id)]


@dg.run_failure_sensor(
    name="notify_failed_runs",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A run that failed sends one notification per blocking check that stopped it (or one for the "
    "run), at most once per ALERT_COOLDOWN_MINUTES for the same check or job.",
)
def notify_failed_runs(context: dg.RunFailureSensorContext, settings: BoxofficeSettings):
    steps = [f"{e.step_key}: {e.message}" for e in context.get_step_failure_events()]
    notifications = run_failure_notifications(context.instance, context.dagster_run, steps)
    delivery = alerts.notify(settings.load(), notifications)
    context.log.info(f"alerts: {len(delivery.sent)} sent, {len(delivery.suppressed)} within their cooldown")
