"""A build of what a load changed, the Dagster way: the assets and checks a build plan (build_plan.py) calls
for, and a sensor that launches that build after each load the daemon runs (the command line does the same
in process, orchestration/pipeline.py)."""

from __future__ import annotations

import dagster as dg

from boxoffice import dbt_project
from orchestration import build_plan
from orchestration.alert_assets import ALERT_RULES, FRAUD_ALERTS, alert_notifications
from orchestration.checks import SUITES
from orchestration.dashboard_assets import metabase_dashboards
from orchestration.dbt_assets import DBT_ASSETS, DBT_STEP, BoxofficeTranslator, DbtBuildConfig
from orchestration.jobs import sensor_status
from orchestration.report_assets import reconciliation_reports
from orchestration.resources import BoxofficeSettings


def build_selection(plan: build_plan.BuildPlan) -> tuple[set[dg.AssetKey], set[dg.AssetCheckKey]]:
    """The assets and checks of a planned build: the planned models with their dbt tests, the dbt tests of the
    sources with new rows and those planned alone (changed, or failed last time), the reports and the dashboards
    when any model is built, the alert notifications when the fraud alerts or the alert rules are, and each GX
    suite that reads a built model or a source with new rows."""
    from dagster_dbt.asset_utils import get_asset_check_key_for_test

    manifest = dbt_project.manifest()
    nodes, translator = manifest["nodes"], BoxofficeTranslator()
    models = {translator.get_asset_key(nodes[uid]) for uid in plan.models}
    sources = manifest["sources"]
    fresher = {translator.get_asset_key(sources[build_plan.source_id(manifest, s)]) for s in plan.fresher_sources}
    checks = {key for assets in DBT_ASSETS for key in assets.check_keys if key.asset_key in models | fresher}
    checks |= {get_asset_check_key_for_test(manifest, translator, uid, None) for uid in plan.tests} - {None}
    built = {nodes[uid]["name"] for uid in plan.models}
    for suite in SUITES:
        reads_models, reads_sources = suite.reads()
        if reads_models & built or reads_sources & set(plan.fresher_sources):
            asset = dg.AssetKey(list(suite.asset))
            checks |= {dg.AssetCheckKey(asset, e.name) for e in suite.expectations}
    downstream = {reconciliation_reports.key, *metabase_dashboards.keys} if models else set()
    if models & {FRAUD_ALERTS, ALERT_RULES}:  # new fraud alerts, rules evaluated again: notify what is due
        downstream.add(alert_notifications.key)
    return models | downstream, checks


def build_request(
    plan: build_plan.BuildPlan, settings, run_key: str, full_refresh: bool = False
) -> dg.RunRequest | dg.SkipReason:
    """The build job's run for a plan: cut to its assets and checks, each dbt step given the full refresh flag and
    the main one the freshness snapshot to record; nothing when nothing changed (the snapshot then becomes the one
    to compare with)."""
    snapshot = build_plan.snapshot_dir(settings) / build_plan.LOADED_AT_FILE
    tags = {"boxoffice/build": plan.reason[:200]}
    if plan.everything:
        steps = {assets.op.name for assets in DBT_ASSETS}
        return dg.RunRequest(run_key=run_key, run_config=_dbt_config(steps, snapshot, full_refresh), tags=tags)
    assets, checks = build_selection(plan)
    steps = {a.op.name for a in DBT_ASSETS if assets & set(a.keys) or checks & set(a.check_keys)}
    if DBT_STEP not in steps:  # no main dbt step to record the snapshot once it has run
        build_plan.promote_snapshot(settings, snapshot)
    if not assets and not checks:
        return dg.SkipReason("nothing changed since the last build")
    return dg.RunRequest(
        run_key=run_key,
        asset_selection=sorted(assets, key=str),
        asset_check_keys=sorted(checks, key=str),
        run_config=_dbt_config(steps, snapshot, full_refresh),
        tags=tags,
    )


def _dbt_config(steps: set[str], snapshot, full_refresh: bool) -> dg.RunConfig:
    """Each dbt step's config; the main one records the freshness snapshot the plan was made from."""

    def config(step: str) -> DbtBuildConfig:
        recorded = str(snapshot) if step == DBT_STEP else ""
        return DbtBuildConfig(full_refresh=full_refresh, freshness_snapshot=recorded)

    return dg.RunConfig(ops={step: config(step) for step in sorted(steps)})


def build_after_each_load(load_job, build_job) -> dg.RunStatusSensorDefinition:
    @dg.run_status_sensor(
        name="build_what_the_load_changed",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[load_job],
        request_job=build_job,
        default_status=sensor_status(),
        description="After each load the daemon runs (a schedule, the UI), plan what it changed and build that: "
        "the models below the changed sources, their tests, the GX suites that read them, the reports.",
    )
    def build_what_the_load_changed(context: dg.RunStatusSensorContext, settings: BoxofficeSettings):
        s = settings.load()
        return build_request(build_plan.plan(s), s, run_key=f"after-{context.dagster_run.run_id}")

    return build_what_the_load_changed
