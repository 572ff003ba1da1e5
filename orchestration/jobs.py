"""The jobs a data engineer schedules, and when they run.

- `micro_batch`, every 5 minutes: the platform's tables (incremental extract; the parents come along so no new
  row waits in quarantine for its parent) and the dbt models tagged `fresh` (the fraud and system-health marts)
  with the tables and incremental models they read, then the alert notifications.
- `boxoffice_everything`, daily at 06:00: everything (definitions.py).
- `finance_reports`, weekly (Monday 07:00) and monthly (the 1st, 07:00, once the month has closed): finance's
  reconciliation reports and exports from the marts as they stand.
- `daily_marts`, on demand: the marts keyed by day as daily partitions; a backfill (the UI's asset page, or
  `boxoffice backfill --from --to`) rebuilds a range of days in one run, the other days untouched.
- `mollie_reconciliation`, when the sensor `mollie_settlements` sees a new settlement or one whose status
  changed (paid out): the Mollie extract and the marts tagged `reconciliation` with what they read, their
  checks, and the reports.

Schedules and sensors run by default where the Dagster daemon runs (`make ui`); BOXOFFICE_SCHEDULES=off leaves
them stopped.
"""

import functools
import hashlib
import json
import operator
import os

import dagster as dg
from dagster_dbt import build_dbt_asset_selection

from boxoffice.settings import DEFAULT_TIMEZONE
from extract import mollie
from orchestration.alert_assets import alert_notifications
from orchestration.dbt_assets import DBT_ASSETS, boxoffice_dbt_daily
from orchestration.extract_assets import MOLLIE_SPECS, PLATFORM_SPECS
from orchestration.report_assets import reconciliation_reports
from orchestration.resources import BoxofficeSettings

FRESH_TAG = "fresh"  # dbt_project.yml tags the fraud and health marts with it
RECONCILIATION_TAG = "reconciliation"  # and the finance marts with this
WAREHOUSE_TAGS = {"boxoffice/warehouse": "write"}  # one run writing the warehouse at a time (dagster.yaml)


def schedules_on() -> bool:
    """BOXOFFICE_SCHEDULES=off (or false, 0, no) leaves every schedule and sensor stopped; on by default."""
    return os.environ.get("BOXOFFICE_SCHEDULES", "on").strip().lower() not in ("off", "false", "0", "no")


def tagged(tag: str) -> dg.AssetSelection:
    """The dbt models with the tag, and the tables and incremental models upstream of them (the views between
    them are always current, and their tests are the full build's)."""
    select = f"tag:{tag} +tag:{tag},config.materialized:table +tag:{tag},config.materialized:incremental"
    return functools.reduce(operator.or_, (build_dbt_asset_selection([a], dbt_select=select) for a in DBT_ASSETS))


PLATFORM_TABLES = dg.AssetSelection.assets(*(spec.key for spec in PLATFORM_SPECS))
MOLLIE_TABLES = dg.AssetSelection.assets(*(spec.key for spec in MOLLIE_SPECS))

micro_batch = dg.define_asset_job(
    "micro_batch",
    selection=PLATFORM_TABLES | tagged(FRESH_TAG) | dg.AssetSelection.assets(alert_notifications),
    description="Every 5 minutes: the platform's tables, the fraud and system-health marts (dbt tag `fresh`) with "
    "what they read, and the alerts they raise.",
    executor_def=dg.in_process_executor,
    tags=WAREHOUSE_TAGS,
)
mollie_reconciliation = dg.define_asset_job(
    "mollie_reconciliation",
    selection=MOLLIE_TABLES | tagged(RECONCILIATION_TAG) | dg.AssetSelection.assets(reconciliation_reports),
    description="When Mollie settles: the Mollie extract, the reconciliation marts (dbt tag `reconciliation`) with "
    "what they read and their checks, and finance's reports.",
    executor_def=dg.in_process_executor,
    tags=WAREHOUSE_TAGS,
)
daily_marts = dg.define_asset_job(
    "daily_marts",
    selection=dg.AssetSelection.assets(boxoffice_dbt_daily),
    description="The marts keyed by day (dbt tag `daily`) by daily partition: a backfill of a range of days (the "
    "UI's, or `boxoffice backfill`) rebuilds those days alone, in one run.",
    executor_def=dg.in_process_executor,
    tags=WAREHOUSE_TAGS,
)
finance_reports = dg.define_asset_job(
    "finance_reports",
    selection=dg.AssetSelection.assets(reconciliation_reports),
    description="Finance's reconciliation reports, revenue files and monthly journals from the marts as they stand.",
    executor_def=dg.in_process_executor,
    tags=WAREHOUSE_TAGS,
)


def _status() -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if schedules_on() else dg.DefaultScheduleStatus.STOPPED


def sensor_status() -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if schedules_on() else dg.DefaultSensorStatus.STOPPED


def schedules(everything) -> list[dg.ScheduleDefinition]:
    timed = (
        ("micro_batch_every_5_minutes", micro_batch, "*/5 * * * *", "every 5 minutes"),
        ("everything_daily", everything, "0 6 * * *", "daily at 06:00"),
        ("finance_reports_weekly", finance_reports, "0 7 * * 1", "weekly, Monday 07:00"),
        ("finance_reports_monthly", finance_reports, "0 7 1 * *", "monthly, the 1st at 07:00 (the month just closed)"),
    )
    return [
        dg.ScheduleDefinition(
            name=name,
            job=job,
            cron_schedule=cron,
            execution_timezone=DEFAULT_TIMEZONE,
            default_status=_status(),
            description=f"{job.name}, {when}",
        )
        for name, job, cron, when in timed
    ]


@dg.sensor(
    name="mollie_settlements",
    job=mollie_reconciliation,
    minimum_interval_seconds=300,
    default_status=sensor_status(),
    description="Asks Mollie for its settlements every 5 minutes; a new settlement, or one whose status changed "
    "(pending -> paidout), runs the Mollie extract, the reconciliation marts, their checks and the reports.",
)
def mollie_settlements(context: dg.SensorEvaluationContext, settings: BoxofficeSettings):
    s = settings.load()
    seen = json.loads(context.cursor) if context.cursor else {}
    client = mollie.make_client(s.mollie_api_url, s.mollie_api_token)
    now = mollie.settlement_statuses(client)
    changed = sorted(k for k, status in now.items() if seen.get(k) != status)
    context.update_cursor(json.dumps(now, sort_keys=True))
    if not changed:
        return dg.SkipReason(f"no new or changed settlement among {len(now)}")
    what = ", ".join(f"{k} {now[k]}" for k in changed[:5]) + (
        f" and {len(changed) - 5} more" if len(changed) > 5 else ""
    )
    key = hashlib.sha256(json.dumps(now, sort_keys=True).encode()).hexdigest()[:16]
    return dg.RunRequest(run_key=f"settlements-{key}", tags={"boxoffice/settlements": what[:200]})
