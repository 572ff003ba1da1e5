"""The Dagster definitions load the way `make ui` (dagster dev) loads them, and are wired as designed."""

import subprocess

import dagster as dg

from boxoffice.cli import dagster_command, dagster_env
from boxoffice.settings import PROJECT_DIR


def test_definitions_load_like_dagster_dev(runs, tmp_path):
    env = {**dagster_env(), "DAGSTER_IS_DEV_CLI": "1", "DAGSTER_HOME": str(tmp_path)}
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    result = subprocess.run(
        [dagster_command(), "definitions", "validate", "-m", "orchestration.definitions"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_lineage_runs_from_raw_through_marts_to_reports(runs):
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    report = dg.AssetKey(["reports", "reconciliation_reports"])
    upstream = graph.get(report).parent_keys
    assert dg.AssetKey(["marts", "fct_settlement_reconciliation"]) in upstream
    stg = graph.get(dg.AssetKey(["staging", "stg_platform__orders"]))
    assert stg.parent_keys == {dg.AssetKey(["raw", "platform_orders"])}
    settlements = graph.get(dg.AssetKey(["staging", "stg_mollie__settlements"]))
    assert settlements.parent_keys == {dg.AssetKey(["raw", "mollie_settlements"])}
    blocking = {spec.name: spec.blocking for checks in defs.asset_checks or [] for spec in checks.check_specs}
    assert blocking == {
        "settlement_matches_platform": False,
        "settlement_differences_explained": True,
        "settlement_identity": True,
        "balance_transaction_identity": True,
        "transfer_equals_settlement": True,
        "paid_gmv_matches_mollie": True,
        "control_totals_kept": True,
        "journal_entries_balance": True,
        "source_freshness": False,  # a stale source warns
    }
