"""dbt models as Dagster assets (dagster-dbt); dbt tests become asset checks."""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from boxoffice.dbt_project import prune_runs
from boxoffice.settings import DBT_PROJECT_DIR
from orchestration.resources import BoxofficeSettings, WarehouseLock, export_dbt_env

DBT_STEP = "boxoffice_dbt_assets"  # the step (op) that runs dbt build
KEEP_RUN_ARTIFACTS = 5  # dbt's target/<run> folders kept for looking into recent runs

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
dbt_project.prepare_if_dev()


class BoxofficeTranslator(DagsterDbtTranslator):
    """Sources map to the extract assets (raw/<identifier>); models to <schema>/<name>."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey(["raw", dbt_resource_props["identifier"]])
        schema = dbt_resource_props.get("config", {}).get("schema") or dbt_resource_props["schema"]
        return dg.AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return dbt_resource_props.get("config", {}).get("schema") or "dbt"


class DbtBuildConfig(dg.Config):
    full_refresh: bool = False
    """Rebuild incremental models from scratch (`dbt build --full-refresh`)."""


@dbt_assets(manifest=dbt_project.manifest_path, dagster_dbt_translator=BoxofficeTranslator(), name=DBT_STEP)
def boxoffice_dbt_assets(
    context: dg.AssetExecutionContext,
    config: DbtBuildConfig,
    dbt: DbtCliResource,
    settings: BoxofficeSettings,
    warehouse_lock: WarehouseLock,
):
    export_dbt_env(settings.load())
    args = ["build", "--full-refresh"] if config.full_refresh else ["build"]
    invocation = dbt.cli(args, context=context)
    yield from invocation.stream()
    prune_runs(invocation.target_path.parent, prefix=f"{context.op_def.name}-", keep=KEEP_RUN_ARTIFACTS)
