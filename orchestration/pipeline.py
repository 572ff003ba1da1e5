"""Run the whole Dagster job once (what `boxoffice run` and `boxoffice demo` do) and summarise it."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg

from boxoffice.alerts import config_of
from boxoffice.settings import PROJECT_DIR, ArgumentError, Settings
from boxoffice.warehouse import DAGSTER_STORAGE_ENV, dagster_storage_url
from extract import mollie as mollie_extract
from extract import platform as platform_extract
from extract import quarantine
from orchestration.extract_assets import CONTRACT_CHECK, EXTRACT_STEP, ExtractConfig


def prepare_dagster_home(settings: Settings) -> None:
    """Point Dagster at .boxoffice/dagster with the project's dagster.yaml (telemetry off), its storage at the
    settings' PostgreSQL database (dagster.yaml reads its URL from DAGSTER_STORAGE_ENV)."""
    home = settings.home / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_DIR / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ[DAGSTER_STORAGE_ENV] = dagster_storage_url(settings.dagster_storage_dsn)


DBT_ERRORS = "Errors parsed from dbt logs:"
# the tags of a run over a range of partitions, those a single-run backfill launches (execute_in_process takes one
# partition key, not a range)
PARTITION_RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
HOST_TAG, PID_TAG = "boxoffice/host", "boxoffice/pid"  # where a command-line run's process lives


@dataclass
class RunOutcome:
    success: bool
    failed_checks: list[str] = field(default_factory=list)
    errored_checks: list[str] = field(default_factory=list)  # "<check>: <the database's message>"
    warned_checks: list[str] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)
    tables_not_loaded: list[str] = field(default_factory=list)  # "<table>: <the broken contract>"
    not_started: str | None = None  # why the run could not start (e.g. another run holds the warehouse)
    rows_in_future: list[str] = field(default_factory=list)  # "3 rows in organizations have updated_at in the future"
    rows_written: dict[str, int] = field(default_factory=dict)
    log_path: Path | None = None
    rows_quarantined: int = 0
    materialized: int = 0  # assets materialized (tables loaded, models built, reports written)
    build: object = None  # the build plan (orchestration.build_plan.BuildPlan): what was built, and why
    alerts: object = None  # the run's notifications on its checks and steps (boxoffice.alerts.Delivery)
    alerts_sent: int = 0  # notifications sent in all, those of the alert notifications asset too
    job: str | None = None  # a scheduled job run alone (run_job); None: the load and its build

    @property
    def ok(self) -> bool:
        """Nothing to act on: every step ran, every table loaded, no blocking check failed or could not run."""
        return self.success and not (self.failed_checks or self.errored_checks or self.tables_not_loaded)


def _launch(log_level: str, progress: bool) -> dict:
    return {
        "tags": {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())},
        "loggers": {"console": {"config": {"log_level": log_level}}, **({"progress": {}} if progress else {})},
    }


@contextlib.contextmanager
def _session(settings: Settings):
    """The warehouse's run lock, the Dagster instance and the run log for a command's runs; yields (why the
    warehouse could not be had or None, the instance, the log's path). dagster-dbt re-emits every dbt log line
    on stdout and Dagster logs errors with their tracebacks on stderr: they go to the run log, the console gets
    the summary."""
    import dagster as dg

    log_path = settings.home / "logs" / "last_run.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    holder = f"boxoffice run pid {os.getpid()} on {socket.gethostname()}"
    with (
        _locked(settings, holder) as busy,
        dg.DagsterInstance.get() as instance,
        open(log_path, "w") as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
        pooled_storage(instance) as instance,
    ):
        fail_dead_runs(instance)
        yield busy, instance, log_path


# Dagster's PostgreSQL storages open a connection per read or write unless told otherwise; a run writes an event per
# step, model, test and check, and a connection each (a backend forked, a password exchange) was 15 s of the process
# of a run after 1% of a million orders changed
STORAGE_POOL_RECYCLE_SECONDS = 3600
STORAGE_POOL_MAX_OVERFLOW = 8  # beyond the one kept: the run's threads that write events at once (progress, extract)


@contextlib.contextmanager
def pooled_storage(instance):
    """The instance, holding a connection to its storages for the command's runs as the webserver does (no statement
    timeout: a run's writes are never cut short); the connections are closed when the command is done with it
    (disposing an instance leaves its engines open)."""
    instance.optimize_for_webserver(
        statement_timeout=0, pool_recycle=STORAGE_POOL_RECYCLE_SECONDS, max_overflow=STORAGE_POOL_MAX_OVERFLOW
    )
    try:
        yield instance
    finally:
        for storage in (instance.run_storage, instance.event_log_storage, instance.schedule_storage):
            engine = getattr(storage, "_engine", None)
            if engine is not None:
                engine.dispose()


def run_everything(
    settings: Settings, log_level: str = "WARNING", full_refresh: bool = False, progress: bool = False
) -> RunOutcome:
    """The load, then a build of what it changed (orchestration/build_plan.py): two runs in the Dagster instance,
    the lock held from the load to the build's end. The checks' outcome is each check's latest evaluation: one not
    rerun (nothing it reads changed) stands."""
    prepare_dagster_home(settings)
    from orchestration import build_plan
    from orchestration.definitions import defs  # parses the dbt project first when a file of it is newer
    from orchestration.definitions import load as load_job

    launch = _launch(log_level, progress)
    with _session(settings) as (busy, instance, log_path):
        if busy:
            return RunOutcome(success=False, not_started=busy, log_path=log_path)
        extract = {EXTRACT_STEP: ExtractConfig(full_refresh=full_refresh)}
        loaded = _execute(defs.resolve_job_def(load_job.name), instance, launch, extract)
        results, plan = [loaded], None
        if loaded.success:  # a load that failed leaves the build to the next run (raw is not what it should be)
            started = time.monotonic()
            plan = build_plan.plan(settings, full_refresh)
            if progress:
                from orchestration.progress import show_outside_a_run

                what = "everything" if plan.everything else f"{len(plan.models)} models, {len(plan.tests)} tests"
                show_outside_a_run("plan: what the load changed", what, time.monotonic() - started)
            build = _build(defs, instance, launch, plan, settings, full_refresh)
            results += [build] if build is not None else []
        evaluations = latest_check_evaluations(instance, defs)
        outcome = read_outcome(results, log_path, evaluations)
        outcome.alerts = _notify(settings, outcome, evaluations, results[-1].run_id)
        outcome.alerts_sent += len(outcome.alerts.sent)
    outcome.build = plan
    return outcome


def run_job(
    settings: Settings,
    job_name: str,
    log_level: str = "WARNING",
    progress: bool = False,
    days: tuple[date, date] | None = None,
) -> RunOutcome:
    """One of the scheduled jobs (orchestration/jobs.py: the micro-batch, the Mollie reconciliation, finance's
    reports, the marts by day) in this process, as the daemon would run it, holding the warehouse like any run.
    `days` (first, last) runs a partitioned job over that range of daily partitions in one run, as a single-run
    backfill from the UI does."""
    prepare_dagster_home(settings)
    from orchestration.definitions import defs

    job = defs.resolve_job_def(job_name)
    launch = _launch(log_level, progress)
    if days is not None:
        launch["tags"] |= partition_range_tags(job, *days)
    with _session(settings) as (busy, instance, log_path):
        if busy:
            return RunOutcome(success=False, not_started=busy, log_path=log_path)
        result = _execute(job, instance, launch, {})
        evaluations = result.get_asset_check_evaluations()
        outcome = read_outcome([result], log_path, evaluations)
        outcome.alerts = _notify(settings, outcome, evaluations, result.run_id)
        outcome.alerts_sent += len(outcome.alerts.sent)
    outcome.job = job_name
    return outcome


def _notify(settings: Settings, outcome: RunOutcome, evaluations: list, run_id: str):
    """The run's notifications (boxoffice/alerts.py): each blocking check that failed or could not run, else a
    failed step. A notification that cannot be sent never fails the run: it is told in the summary."""
    from boxoffice import alerts
    from orchestration.alert_assets import check_notifications, run_notification

    notifications = check_notifications(evaluations, run_id)
    if not notifications and outcome.failed_steps:
        notifications = [run_notification("boxoffice run", outcome.failed_steps, run_id)]
    try:
        return alerts.notify(settings, notifications)
    except psycopg.Error as err:
        return alerts.Delivery(failed=[f"alerts: {str(err).strip().splitlines()[0]}"])


@contextlib.contextmanager
def _locked(settings: Settings, holder: str):
    """The warehouse's run lock for the whole command; yields why it could not be had, or None."""
    from boxoffice.warehouse import WarehouseBusy, run_lock

    try:
        with run_lock(settings.warehouse_dsn, holder, settings.run_lock_wait_seconds):
            yield None
    except WarehouseBusy as err:  # raised only while taking the lock (the process holds it from then on)
        yield str(err)


def partition_range_tags(job, first: date, last: date) -> dict[str, str]:
    """The tags of a run over the daily partitions first..last (Dagster's single-run backfill); a day outside the
    job's partitions is an ArgumentError naming the range there is."""
    partitions = job.partitions_def
    if partitions is None:
        raise ArgumentError(f"the job {job.name} is not partitioned")
    keys = partitions.get_partition_keys()
    start, end = first.isoformat(), last.isoformat()
    if last < first or start not in keys or end not in keys:
        raise ArgumentError(f"days {start}..{end} are not within the daily partitions {keys[0]}..{keys[-1]}")
    return {PARTITION_RANGE_TAGS[0]: start, PARTITION_RANGE_TAGS[1]: end}


def _execute(job, instance, launch: dict, ops: dict):
    """The job in this process; `ops`: each step's config by step name (a dg.Config, or as a RunRequest holds it)."""
    import dagster as dg

    config = dg.RunConfig(ops=ops, loggers=launch["loggers"])
    return job.execute_in_process(instance=instance, raise_on_error=False, tags=launch["tags"], run_config=config)


def _build(defs, instance, launch: dict, plan, settings: Settings, full_refresh: bool):
    """The build job, whole or cut to the plan (the run the sensor would request); None when there is nothing to
    build and no check to run."""
    import dagster as dg

    from orchestration.builds import build_request
    from orchestration.definitions import build

    request = build_request(plan, settings, run_key="command line", full_refresh=full_refresh)
    if isinstance(request, dg.SkipReason):
        return None
    job = defs.resolve_job_def(build.name)
    if not plan.everything:
        job = job.get_subset(
            asset_selection=set(request.asset_selection), asset_check_selection=set(request.asset_check_keys)
        )
    return _execute(job, instance, launch, request.run_config.get("ops", {}))


def latest_check_evaluations(instance, defs) -> list:
    """Every check's latest evaluation, from this run or the last one that ran it."""
    keys = list(defs.resolve_asset_graph().asset_check_keys)
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    evaluations = []
    for record in records.values():
        event = record.event.dagster_event if record.event else None
        if event is not None and event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluations.append(event.event_specific_data)
    return evaluations


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def fail_dead_runs(instance) -> list[str]:
    """Runs started from this machine's command line that a kill left STARTED (their process is gone) are
    marked failed, so the Dagster UI never shows a run in progress that nothing runs. (Runs the daemon
    launched are watched by Dagster's own run monitoring, see dagster.yaml.)"""
    import dagster as dg

    in_progress = dg.RunsFilter(
        statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING], tags={HOST_TAG: socket.gethostname()}
    )
    failed = []
    for run in instance.get_runs(filters=in_progress):
        pid = int(run.tags.get(PID_TAG, "0"))
        if pid and not _alive(pid):
            instance.report_run_failed(run, f"the boxoffice process that ran it (pid {pid}) is gone: killed?")
            failed.append(run.run_id)
    return failed


def read_outcome(results, log_path: Path | None = None, evaluations: list | None = None) -> RunOutcome:
    """What a person needs from a run's Dagster runs: what failed, what could not run, what was loaded; the
    checks from `evaluations` (default: those of the runs themselves)."""
    import dagster as dg

    results = results if isinstance(results, list) else [results]
    outcome = RunOutcome(success=all(r.success for r in results), log_path=log_path)
    if evaluations is None:
        evaluations = [e for r in results for e in r.get_asset_check_evaluations()]
    for evaluation in evaluations:
        if evaluation.passed:
            continue
        name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        metadata = {k: v.value for k, v in evaluation.metadata.items()}
        if evaluation.check_name == CONTRACT_CHECK:
            outcome.tables_not_loaded.append(f"{evaluation.asset_key.path[-1]}: {metadata.get('error')}")
        elif metadata.get("errored"):
            outcome.errored_checks.append(f"{name}: {metadata.get('error')}")
        elif evaluation.severity == dg.AssetCheckSeverity.ERROR:
            outcome.failed_checks.append(name)
        else:
            outcome.warned_checks.append(name)
    for result in results:
        _read_events(result, outcome)
    return outcome


def _read_events(result, outcome: RunOutcome) -> None:
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            outcome.failed_steps.append(f"{event.step_key}: {_first_line(event.event_specific_data.error)}")
        elif event.event_type_value == "RESOURCE_INIT_FAILURE" and not outcome.not_started:
            outcome.not_started = _first_line(event.event_specific_data.error).split(": ", 1)[-1]
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        metadata = {k: v.value for k, v in materialization.metadata.items()}
        table = materialization.asset_key.path[-1]
        if "rows_written" in metadata:
            outcome.rows_written[table] = int(metadata["rows_written"])
        outcome.rows_quarantined += int(metadata.get("rows_quarantined", 0))
        outcome.alerts_sent += int(metadata.get("alerts_sent", 0))  # by the alert notifications asset
        if metadata.get("rows_in_future"):
            outcome.rows_in_future.append(metadata["rows_in_future_note"])
        outcome.materialized += 1


def _first_line(error) -> str:
    """The innermost cause's message: what went wrong, without Dagster's wrapping."""
    while error is not None and error.cause is not None:
        error = error.cause
    message = (error.message if error is not None else "") or "unknown error"
    if DBT_ERRORS in message:  # dagster-dbt's own message says little; the errors it parsed from dbt say what failed
        message = message.split(DBT_ERRORS, 1)[1]
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def layer_counts(settings: Settings) -> list[tuple[str, int | None, int, int]]:
    """(table, source rows, raw rows, rows held in quarantine) per raw table; Mollie's have no source count."""
    rows = []
    with psycopg.connect(settings.source_dsn) as src, psycopg.connect(settings.warehouse_dsn) as wh:
        for table in platform_extract.TABLES:
            source = src.execute(f'select count(*) from "{settings.source_schema}"."{table}"').fetchone()[0]
            raw = wh.execute(f"select count(*) from raw.{platform_extract.raw_table(table)}").fetchone()[0]
            rows.append((table, source, raw, quarantine.held(wh, table)))
        for table in mollie_extract.TABLES:
            rows.append((table, None, wh.execute(f"select count(*) from raw.{table}").fetchone()[0], 0))
    return rows


def summary(settings: Settings) -> dict:
    with psycopg.connect(settings.warehouse_dsn) as wh:
        gmv, orders, tickets = wh.execute(
            "select coalesce(sum(gmv), 0), coalesce(sum(paid_orders), 0), coalesce(sum(tickets_sold), 0) "
            "from marts.kpi_daily"
        ).fetchone()
        settlements, reconciled, paid_out = wh.execute(
            "select count(*), count(*) filter (where is_reconciled), coalesce(sum(reported_amount), 0) "
            "from marts.fct_settlement_reconciliation"
        ).fetchone()
        statuses = dict(
            wh.execute(
                "select match_status, count(*) from marts.fct_payment_reconciliation group by 1 order by 1"
            ).fetchall()
        )
    return {
        "gmv": Decimal(gmv),
        "paid_orders": int(orders),
        "tickets_sold": int(tickets),
        "settlements": settlements,
        "reconciled": reconciled,
        "discrepant": settlements - reconciled,
        "paid_out": Decimal(paid_out),
        "payment_match_status": statuses,
    }


def print_summary(settings: Settings, outcome: RunOutcome) -> None:
    try:
        _print_figures(settings, outcome)
    except psycopg.Error as err:  # a run that stopped early may have left no marts to count
        print(f"\n(no figures: {str(err).strip().splitlines()[0]})")
    _print_findings(settings, outcome)


def build_line(plan) -> str:
    """What the build did, and why: the person running it sees when and why the marts were not rebuilt."""
    if plan is None:
        return "Build: not run (the load did not finish)"
    if plan.everything:
        return f"Build: every model ({plan.reason})"
    if plan.nothing:
        return "Build: no model to rebuild (nothing changed since the last build); the marts and reports stand"
    tests = f" and {len(plan.tests)} tests of sources or models not rebuilt" if plan.tests else ""
    return f"Build: {len(plan.models) or 'no'} models{tests} ({plan.reason})"


def _print_figures(settings: Settings, outcome: RunOutcome) -> None:
    print("\nRows per table (source -> raw, and held in quarantine):")
    for table, source, raw, held in layer_counts(settings):
        src = f"{source:>9,}" if source is not None else "      api"
        print(f"  {table:32} {src} {raw:>9,} {held:>9,}")
    written = sum(outcome.rows_written.values())
    held = f"{outcome.rows_quarantined:,} quarantined, see raw._quarantine"
    print(f"\nThis run wrote {written:,} new or changed rows to raw ({held})")
    print(build_line(outcome.build) if outcome.job is None else f"Job {outcome.job}: {outcome.materialized} assets")
    s = summary(settings)
    print(f"\nGMV (paid orders):         EUR {s['gmv']:,.2f} over {s['paid_orders']:,} orders")
    print(f"Tickets sold:              {s['tickets_sold']:,}")
    print(f"Mollie paid out:           EUR {s['paid_out']:,.2f} in {s['settlements']} settlements")
    print(f"Settlements reconciled:    {s['reconciled']} of {s['settlements']} ({s['discrepant']} with discrepancies)")
    print("Payments by match status:  " + ", ".join(f"{k} {v:,}" for k, v in s["payment_match_status"].items()))


def _print_findings(settings: Settings, outcome: RunOutcome) -> None:
    if settings.demo_salt_warning:
        print(f"WARNING: {settings.demo_salt_warning}")
    if outcome.warned_checks:
        print("Checks with findings (warn): " + ", ".join(outcome.warned_checks))
    if outcome.failed_checks:
        print("BLOCKING CHECKS FAILED:    " + ", ".join(outcome.failed_checks))
    for check in outcome.errored_checks:
        print(f"CHECKS THAT COULD NOT RUN: {check}")
    for table in outcome.tables_not_loaded:
        print(f"TABLE NOT LOADED:          {table} (raw keeps its last load; the rest of the run went on)")
    for line in outcome.rows_in_future:
        print(f"NOTE: {line} (loaded; the cursor stays at the source's clock)")
    for step in outcome.failed_steps:
        print(f"FAILED STEP:               {step}")
    if outcome.alerts_sent:
        config = config_of(settings)
        where = ", ".join(str(w) for w in (config.webhook_url, config.smtp_host, config.log_path) if w)
        print(f"Alerts sent:               {outcome.alerts_sent} (to {where})")
    for failure in outcome.alerts.failed if outcome.alerts is not None else []:
        print(f"ALERT NOT DELIVERED:       {failure}")
    print(f"Full run log (dbt output): {outcome.log_path}")
