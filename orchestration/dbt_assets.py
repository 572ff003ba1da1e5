"""dbt models as Dagster assets (dagster-dbt); dbt tests become asset checks."""

import json
import shutil
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from boxoffice.dbt_project import ensure_manifest, prune_runs
from boxoffice.settings import DBT_PROJECT_DIR, Settings
from orchestration import build_plan
from orchestration.resources import BoxofficeSettings, WarehouseLock, dbt_environment

DBT_STEP = "boxoffice_dbt_assets"  # the step (op) that runs dbt build
KEEP_RUN_ARTIFACTS = 5  # dbt's target/<run> folders kept for looking into recent runs

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
ensure_manifest()  # parsed again whenever a project file is newer, so the asset graph is never stale


class BoxofficeTranslator(DagsterDbtTranslator):
    """Sources map to the extract assets (raw/<identifier>); models to <schema>/<name>. Tests on sources (raw's
    primary keys) are checks on the extract's assets."""

    def __init__(self):
        super().__init__(DagsterDbtTranslatorSettings(enable_source_tests_as_checks=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey(["raw", dbt_resource_props["identifier"]])
        schema = dbt_resource_props.get("config", {}).get("schema") or dbt_resource_props["schema"]
        return dg.AssetKey([schema, dbt_resource_props["name"]])

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        """A model whose dbt meta sets freshness_warn_minutes / freshness_fail_minutes (dbt_project.yml) gets a
        freshness policy: the Dagster UI shows it stale when it has not been rebuilt for that long."""
        spec = super().get_asset_spec(manifest, unique_id, project)
        meta = (manifest["nodes"].get(unique_id) or {}).get("meta") or {}
        if "freshness_fail_minutes" not in meta:
            return spec
        fail = timedelta(minutes=int(meta["freshness_fail_minutes"]))
        warn = timedelta(minutes=int(meta["freshness_warn_minutes"])) if "freshness_warn_minutes" in meta else None
        return spec.replace_attributes(
            freshness_policy=dg.FreshnessPolicy.time_window(fail_window=fail, warn_window=warn)
        )

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return dbt_resource_props.get("config", {}).get("schema") or "dbt"


class DbtBuildConfig(dg.Config):
    full_refresh: bool = False
    """Rebuild incremental models from scratch (`dbt build --full-refresh`)."""
    freshness_snapshot: str = ""
    """The sources' freshness snapshot the build was planned from (build_plan): once dbt has run, the next plan
    compares with it. Empty when the build was not planned (e.g. launched from the UI)."""


def keep_partial_parse(target: Path) -> None:
    """dagster-dbt starts each dbt from target/partial_parse.msgpack; this invocation's, parsed with the settings'
    environment, takes its place, so the next one parses only what changed (dbt parses the whole project again
    when the profile or an env var it read differ, as they do from a parse outside a run: seconds per step)."""
    parsed = target / "partial_parse.msgpack"
    if parsed.exists():
        kept = DBT_PROJECT_DIR / "target" / "partial_parse.msgpack"
        shutil.copyfile(parsed, kept.with_suffix(".tmp"))
        kept.with_suffix(".tmp").replace(kept)


DAILY_TAG = "daily"  # dbt models keyed by a local day: Dagster runs them as daily partitions
DAILY_STEP = "boxoffice_dbt_daily"  # the step (op) that builds them


def daily_partitions() -> dg.DailyPartitionsDefinition:
    """Local days of the reporting time zone, from PARTITIONS_START_DATE to today (the day in progress too)."""
    settings = Settings.load()
    return dg.DailyPartitionsDefinition(
        start_date=settings.partitions_start.isoformat(), timezone=settings.reporting_timezone, end_offset=1
    )


@dbt_assets(
    manifest=dbt_project.manifest_path,
    dagster_dbt_translator=BoxofficeTranslator(),
    name=DBT_STEP,
    exclude=f"tag:{DAILY_TAG}",
)
def boxoffice_dbt_assets(
    context: dg.AssetExecutionContext,
    config: DbtBuildConfig,
    dbt: DbtCliResource,
    settings: BoxofficeSettings,
    warehouse_lock: WarehouseLock,
):
    yield from _build(context, config, dbt, settings.load(), [])


@dbt_assets(
    manifest=dbt_project.manifest_path,
    dagster_dbt_translator=BoxofficeTranslator(),
    name=DAILY_STEP,
    select=f"tag:{DAILY_TAG}",
    partitions_def=daily_partitions(),
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def boxoffice_dbt_daily(
    context: dg.AssetExecutionContext,
    config: DbtBuildConfig,
    dbt: DbtCliResource,
    settings: BoxofficeSettings,
    warehouse_lock: WarehouseLock,
):
    """Unpartitioned (the daily run, the build after a load), the models are built incrementally like the others;
    for a partition, or a backfill's range of them in a single run, dbt rebuilds that window of days."""
    window = []
    if context.has_partition_key or context.has_partition_key_range:
        days = context.partition_time_window
        dates = {"partition_start": days.start.date().isoformat(), "partition_end": days.end.date().isoformat()}
        window = ["--vars", json.dumps(dates)]
    yield from _build(context, config, dbt, settings.load(), window)


DBT_ASSETS = (boxoffice_dbt_assets, boxoffice_dbt_daily)  # every dbt model is in one of these
DBT_STEPS = tuple(assets.op.name for assets in DBT_ASSETS)


def _build(context: dg.AssetExecutionContext, config: DbtBuildConfig, dbt: DbtCliResource, s, extra: list[str]):
    args = ["build", "--full-refresh", *extra] if config.full_refresh else ["build", *extra]
    with dbt_environment(s):
        invocation = dbt.cli(args, context=context)  # dbt starts here, with the environment it reads
    try:
        yield from invocation.stream()
    finally:  # also after failed models or tests: what failed is what the next plan builds again
        snapshot = Path(config.freshness_snapshot) if config.freshness_snapshot else None
        build_plan.record_build(s, invocation.target_path, snapshot)
        keep_partial_parse(invocation.target_path)
        prune_runs(invocation.target_path.parent, prefix=f"{context.op_def.name}-", keep=KEEP_RUN_ARTIFACTS)
