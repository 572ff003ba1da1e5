"""The one place where Boxoffice's Dagster definitions come together."""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.checks import suite_checks
from orchestration.dbt_assets import boxoffice_dbt_assets, dbt_project
from orchestration.extract_assets import mollie_assets, platform_assets
from orchestration.report_assets import reconciliation_reports
from orchestration.resources import BoxofficeSettings

everything = dg.define_asset_job(
    "boxoffice_everything",
    selection=dg.AssetSelection.all(),
    description="Extract the platform and Mollie, build and test the dbt models, run the GX checks, write the reports.",
)

daily = dg.ScheduleDefinition(
    job=everything,
    cron_schedule="0 6 * * *",
    execution_timezone="Europe/Amsterdam",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

defs = dg.Definitions(
    assets=[*platform_assets, mollie_assets, boxoffice_dbt_assets, reconciliation_reports],
    asset_checks=suite_checks,
    jobs=[everything],
    schedules=[daily],
    resources={
        "settings": BoxofficeSettings(),
        "dbt": DbtCliResource(
            project_dir=dbt_project,
            profiles_dir=str(dbt_project.profiles_dir),
            # the venv's dbt, also when the venv is not activated (dagster-dbt only searches PATH)
            dbt_executable=str(Path(sys.executable).parent / "dbt"),
        ),
    },
)
