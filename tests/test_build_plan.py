"""A run builds what its load changed since the last build, and nothing when nothing changed
(orchestration/build_plan.py). The plans here are made from a copy of the session's build state."""

import json
import re
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from boxoffice import dbt_project
from orchestration import build_plan
from orchestration.builds import build_selection
from orchestration.definitions import defs
from orchestration.resources import BoxofficeSettings


@pytest.fixture
def planned(settings, runs, tmp_path):
    """Settings whose home holds a copy of the session's build state (after its two runs)."""
    home = tmp_path / "home"
    shutil.copytree(build_plan.state_dir(settings), home / "dbt_state")
    return replace(settings, home=home, warehouse_dsn_override=settings.warehouse_dsn)


def test_a_run_with_no_source_change_builds_nothing(runs):
    first, second = runs
    assert first.build.everything and "no earlier build" in first.build.reason
    assert second.build.nothing, second.build
    nodes = dbt_project.manifest()["nodes"].values()
    models = sum(1 for n in nodes if n["resource_type"] in ("model", "seed"))
    # the models, reports, alerts and dashboards: not again
    from orchestration.dashboard_assets import SPECS

    assert first.materialized - second.materialized == models + 2 + len(SPECS)
    # the checks not rerun keep their findings: the summary reads each check's latest evaluation
    assert second.warned_checks == first.warned_checks != []
    assert second.ok


def test_plans_what_changed_and_nothing_else(planned, descendants):
    assert build_plan.plan(planned).nothing
    manifest = json.loads((build_plan.state_dir(planned) / "manifest.json").read_text())
    # a model whose code changed since the last build, and one that errored in it
    changed = manifest["nodes"]["model.boxoffice.int_scan_conflicts"]
    changed["raw_code"], changed["checksum"]["checksum"] = changed["raw_code"] + "\n-- before", "before"
    (build_plan.state_dir(planned) / "manifest.json").write_text(json.dumps(manifest))
    results_file = build_plan.state_dir(planned) / "run_results.json"
    results = json.loads(results_file.read_text())
    (errored,) = [r for r in results["results"] if r["unique_id"] == "model.boxoffice.fct_payouts"]
    errored["status"] = "error"
    # and a test that failed last time on a model that did not change
    (failed,) = [r for r in results["results"] if r["unique_id"].startswith("test.boxoffice.unique_dim_buyers_")]
    failed["status"] = "fail"
    results_file.write_text(json.dumps(results))
    plan = build_plan.plan(planned)
    roots = {"model.boxoffice.int_scan_conflicts", "model.boxoffice.fct_payouts"}
    assert set(plan.models) == descendants(dbt_project.manifest(), roots)
    assert not plan.everything and plan.fresher_sources == []
    assert failed["unique_id"] in plan.tests and "model.boxoffice.dim_buyers" not in plan.models
    assets, checks = build_selection(plan)
    assert dg.AssetCheckKey(dg.AssetKey(["marts", "dim_buyers"]), "unique_dim_buyers_buyer_key") in checks
    assert dg.AssetKey(["marts", "dim_buyers"]) not in assets and dg.AssetKey(["marts", "fct_payouts"]) in assets


def test_a_changed_setting_or_a_full_refresh_builds_everything(planned):
    plan = build_plan.plan(replace(planned, reporting_timezone="America/New_York"))
    assert plan.everything and plan.reason == "settings changed since the last build: REPORTING_TIMEZONE"
    assert build_plan.plan(planned, full_refresh=True).everything
    shutil.rmtree(build_plan.state_dir(planned))
    assert build_plan.plan(planned).everything


def test_the_clock_reading_models_are_the_ones_calling_the_as_of_macros():
    manifest = dbt_project.manifest()
    calls = re.compile(r"\bas_of_(ts|date)\(\)")
    models = {u: n for u, n in manifest["nodes"].items() if n["resource_type"] == "model"}
    expected = {u for u, n in models.items() if calls.search(n["raw_code"])}
    assert build_plan.reads_clock(manifest) == expected
    assert "model.boxoffice.kpi_periods" in expected and "model.boxoffice.int_orders" not in expected


def test_clock_models_are_due_after_their_max_age_or_on_a_new_day(settings):
    manifest = dbt_project.manifest()
    clock = build_plan.reads_clock(manifest)
    built = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)  # 12:00 in Amsterdam
    timing = [{"name": "execute", "started_at": "x", "completed_at": built.isoformat().replace("+00:00", "Z")}]
    results = [{"unique_id": u, "status": "success", "timing": timing} for u in clock]
    unpinned = replace(settings, as_of=None, as_of_max_age_minutes=60, reporting_timezone="Europe/Amsterdam")
    due = lambda at, s=unpinned: set(build_plan._clock_models_due(s, manifest, results, at))  # noqa: E731
    assert due(built + timedelta(minutes=59)) == set()
    assert due(built + timedelta(minutes=60)) == clock
    assert due(built + timedelta(minutes=59), replace(unpinned, as_of_max_age_minutes=0)) == clock
    assert due(built.replace(hour=21, minute=50), replace(unpinned, as_of_max_age_minutes=1000)) == set()
    assert due(built.replace(hour=22, minute=10), replace(unpinned, as_of_max_age_minutes=1000)) == clock  # 00:10
    assert due(built + timedelta(days=9), settings) == set()  # a pinned as-of instant is a build setting instead


def test_a_relation_dropped_from_the_warehouse_is_built_again(planned):
    manifest = json.loads(json.dumps(dbt_project.manifest()))
    assert build_plan._missing_relations(planned, manifest) == []
    manifest["nodes"]["model.boxoffice.kpi_daily"]["alias"] = "kpi_daily_dropped"
    assert build_plan._missing_relations(planned, manifest) == ["model.boxoffice.kpi_daily"]


def test_a_partial_build_merges_its_results_and_keeps_the_settings_it_did_not_cover(planned, tmp_path):
    state = build_plan.state_dir(planned)
    before = {r["unique_id"]: r for r in json.loads((state / "run_results.json").read_text())["results"]}
    settings_before = (state / "settings.json").read_text()
    target = tmp_path / "target"
    target.mkdir()
    shutil.copyfile(state / "manifest.json", target / "manifest.json")
    one = {**before["model.boxoffice.kpi_daily"], "status": "error"}
    (target / "run_results.json").write_text(json.dumps({"metadata": {}, "results": [one]}))
    other = replace(planned, reporting_timezone="America/New_York")
    assert build_plan.record_build(other, target)
    after = {r["unique_id"]: r for r in json.loads((state / "run_results.json").read_text())["results"]}
    assert set(after) == set(before) and after["model.boxoffice.kpi_daily"]["status"] == "error"
    assert (state / "settings.json").read_text() == settings_before  # one model under other settings: not enough
    assert not build_plan.record_build(other, tmp_path / "crashed")  # no run_results.json: the state stays


def test_keys_rest_on_raws_primary_keys_and_the_models_unique_indexes_which_dbt_tests(
    settings, runs, warehouse, tmp_path
):
    """Staging's keys are unique and not null because raw's tables have primary keys on them, and the keys of the
    incremental models because of their unique indexes; the catalog tests fail as soon as one is missing."""
    from dbt.cli.main import dbtRunner

    from boxoffice.settings import DBT_PROJECT_DIR
    from orchestration.resources import dbt_environment

    project = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]

    def statuses(selection: str) -> list[str]:
        with dbt_environment(settings):
            run = dbtRunner().invoke(["test", "--select", selection, *project, "--target-path", str(tmp_path)])
        return [r.status for r in run.result if r.node.unique_id.startswith("test.")]

    (key,) = warehouse.execute(
        "select conname from pg_constraint where conrelid = 'raw.platform_scans'::regclass and contype = 'p'"
    ).fetchone()
    (index, definition) = warehouse.execute(
        "select i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) from pg_index as i "
        "where i.indrelid = 'support.support_ticket_lookup'::regclass and i.indisunique"
    ).fetchone()
    scans = "alter table raw.platform_scans"
    cases = [  # selection, dropping the key, restoring it
        ("source:platform.scans", f"{scans} drop constraint {key}", f"{scans} add constraint {key} primary key (id)"),
        ("support_ticket_lookup,test_name:unique_index", f"drop index {index}", definition),
    ]
    for selection, drop, restore in cases:
        assert statuses(selection) == ["pass"], selection
        warehouse.execute(drop)
        try:
            assert statuses(selection) == ["fail"], selection
        finally:
            warehouse.execute(restore)


def test_a_source_table_not_there_is_left_out_of_the_snapshot_and_the_rest_goes_on(planned, warehouse):
    """A raw table not there (a table whose first load failed) does not stop the plan: it is left out of the
    freshness snapshot, and counts as changed once it is there."""
    warehouse.execute("alter table raw.platform_scans rename to platform_scans_away")
    try:
        plan = build_plan.plan(planned)
    finally:
        warehouse.execute("alter table raw.platform_scans_away rename to platform_scans")
    assert plan.nothing, plan
    snapshot = json.loads((build_plan.snapshot_dir(planned) / build_plan.LOADED_AT_FILE).read_text())
    assert "source.boxoffice.platform.orders" in {r["unique_id"] for r in snapshot["results"]}
    assert "source.boxoffice.platform.scans" not in {r["unique_id"] for r in snapshot["results"]}
    build_plan.promote_snapshot(planned, build_plan.snapshot_dir(planned) / build_plan.LOADED_AT_FILE)
    back = build_plan.plan(planned)
    assert back.fresher_sources == ["platform.scans"] and "model.boxoffice.stg_platform__scans" in back.models


def test_the_sensor_after_each_load_requests_the_planned_build(planned, settings, runs):
    from dagster._core.events import DagsterEventType

    from orchestration.builds import build_request
    from orchestration.dashboard_assets import SPECS
    from orchestration.dbt_assets import DBT_STEP

    changed = ["model.boxoffice.stg_platform__webhook_deliveries", "model.boxoffice.health_webhook_retries"]
    request = build_request(build_plan.BuildPlan(False, "rows", changed, ["platform.webhook_deliveries"]), planned, "k")
    assert set(request.asset_selection) == {
        dg.AssetKey(["staging", "stg_platform__webhook_deliveries"]),
        dg.AssetKey(["marts", "health_webhook_retries"]),
        dg.AssetKey(["reports", "reconciliation_reports"]),
        *(spec.key for spec in SPECS),
    }
    assert {c.name for c in request.asset_check_keys if c.asset_key.path[0] == "raw"} == {
        "source_primary_key_platform_webhook_deliveries_id"
    }
    snapshot = request.run_config["ops"][DBT_STEP]["config"]["freshness_snapshot"]
    assert snapshot.endswith(f"next/{build_plan.LOADED_AT_FILE}")
    job = defs.resolve_job_def("boxoffice_build")
    subset = job.get_subset(
        asset_selection=set(request.asset_selection), asset_check_selection=set(request.asset_check_keys)
    )
    assert subset.graph.has_node_named(DBT_STEP) and not subset.graph.has_node_named("extract_sources")

    # the sensor itself, after the session's last load: nothing changed since, so it skips
    sensor = defs.resolve_sensor_def("build_what_the_load_changed")
    assert sensor.job_name == "boxoffice_build"
    with dg.DagsterInstance.get() as instance:
        (load,) = instance.get_runs(dg.RunsFilter(job_name="boxoffice_load"), limit=1)
        (success,) = instance.get_records_for_run(load.run_id, of_type=DagsterEventType.RUN_SUCCESS).records
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_event=success.event_log_entry.dagster_event,
            dagster_instance=instance,
            dagster_run=load,
            resources={"settings": BoxofficeSettings()},
        )
        result = sensor(context)
    assert isinstance(result, dg.SkipReason) and "nothing changed" in result.skip_message
