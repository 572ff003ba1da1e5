"""The one place where Boxoffice's Dagster definitions come together."""

from __future__ import annotations

import dagster as dg

from orchestration.alert_assets import alert_notifications, notify_failed_runs
from orchestration.builds import build_after_each_load
from orchestration.checks import suite_checks
from orchestration.dashboard_assets import metabase_dashboards
from orchestration.dbt_assets import DBT_ASSETS, dbt_project
from orchestration.extract_assets import extract_sources
from orchestration.freshness import source_freshness
from orchestration.jobs import (
    WAREHOUSE_TAGS,
    daily_marts,
    finance_reports,
    micro_batch,
    mollie_reconciliation,
    mollie_settlements,
    schedules,
)
from orchestration.progress import progress_logger
from orchestration.report_assets import reconciliation_reports
from orchestration.resources import LOCK, BoxofficeSettings, VenvDbtCliResource, WarehouseLock
from orchestration.warehouse_assets import build_settings

# Runs write one warehouse: in process, so the run's lock (resources.WarehouseLock) is taken once and held
# from the first step to the last; Dagster's run queue lets one such run go at a time (dagster.yaml, WAREHOUSE_TAGS).

everything = dg.define_asset_job(
    "boxoffice_everything",
    selection=dg.AssetSelection.all(),
    description="Extract the platform and Mollie, build and test the dbt models, run the GX checks, write the reports.",
    executor_def=dg.in_process_executor,
    tags=WAREHOUSE_TAGS,
)

# The command line's run is these two, with a plan between them (build_plan): the load, then a build of what the
# load changed. Launched from the UI, the build job builds everything.
LOAD_SELECTION = dg.AssetSelection.assets(extract_sources, build_settings)
# every dbt test, those on raw's tables (checks on the load's assets) too, runs in the build (dbt), not the load
DBT_TESTS = dg.AssetSelection.checks(*(key for assets in DBT_ASSETS for key in assets.check_keys))
load = dg.define_asset_job(
    "boxoffice_load",
    selection=LOAD_SELECTION - DBT_TESTS,
    description="Extract the platform and Mollie into raw, with the build settings and the source contracts.",
    executor_def=dg.in_process_executor,
    tags=WAREHOUSE_TAGS,
)
build = dg.define_asset_job(
    "boxoffice_build",
    selection=(dg.AssetSelection.all() - LOAD_SELECTION) | DBT_TESTS,
    description="Build and test the dbt models, run the GX checks, write the reports, from what raw holds.",
    executor_def=dg.in_process_executor,
    tags=WAREHOUSE_TAGS,
)

build_after_load = build_after_each_load(load, build)


settings = BoxofficeSettings.from_environment()

defs = dg.Definitions(
    assets=[
        extract_sources,
        build_settings,
        *DBT_ASSETS,
        reconciliation_reports,
        alert_notifications,
        metabase_dashboards,
    ],
    asset_checks=[*suite_checks, source_freshness],
    jobs=[everything, load, build, micro_batch, mollie_reconciliation, finance_reports, daily_marts],
    schedules=schedules(everything),
    sensors=[build_after_load, notify_failed_runs, mollie_settlements],
    executor=dg.in_process_executor,
    loggers={"console": dg.colored_console_logger, "progress": progress_logger},
    resources={
        "settings": settings,
        LOCK: WarehouseLock(settings=settings),
        "dbt": VenvDbtCliResource.of_this_environment(dbt_project, str(dbt_project.profiles_dir)),
    },
)
