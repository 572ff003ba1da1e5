"""Every incremental model does work in proportion to what changed, never to the size of its tables.

At the test's small scale a sequential scan is often the cheapest plan, so timing says nothing. Instead each
incremental model is compiled as its next run would be (is_incremental(), a watermark), and planned with
sequential scans discouraged: a scan of a table that grows with the orders left in that plan means no index
can serve the query, so its cost would grow with the table. (It failed on int_orders when the staging views
were written with CTEs: PostgreSQL never flattens such a view into the query, so keys could not reach raw's
indexes.)
"""

import os
import subprocess
import sys

import psycopg

from boxoffice.settings import DBT_PROJECT_DIR
from orchestration.resources import dbt_env

# Tables that grow with the dimensions (organizations, events) or hold a handful of rows may be scanned.
SMALL = {"platform_organizations", "platform_events", "mollie_settlements", "mollie_balances", "_build_settings"}


def seq_scans(plan: dict) -> set[str]:
    found = {plan["Relation Name"]} if plan["Node Type"] in ("Seq Scan", "Parallel Seq Scan") else set()
    for child in plan.get("Plans", []):
        found |= seq_scans(child)
    return found


def incremental_tables() -> list[tuple[str, str]]:
    """(schema, table) of every incremental model, from dbt's manifest."""
    from boxoffice import dbt_project

    nodes = dbt_project.manifest()["nodes"].values()
    return sorted((n["schema"], n["alias"]) for n in nodes if n.get("config", {}).get("materialized") == "incremental")


def test_incremental_models_read_only_through_indexes(settings, runs, tmp_path):
    dbt = os.path.join(os.path.dirname(sys.executable), "dbt")
    command = [dbt, "compile", "--quiet", "--select", "config.materialized:incremental"]
    command += ["--indirect-selection", "empty"]  # the models alone, not their tests
    command += ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    command += ["--target-path", str(tmp_path)]
    subprocess.run(command, check=True, cwd=DBT_PROJECT_DIR, env={**os.environ, **dbt_env(settings)})
    compiled = {p.stem: p.read_text() for p in (tmp_path / "compiled").rglob("*.sql")}
    assert {"int_orders", "fct_balance_transactions", "fct_payment_reconciliation", "support_order_search"} <= set(
        compiled
    )
    scanned = {}
    with psycopg.connect(settings.warehouse_dsn) as conn:
        conn.execute("set enable_seqscan = off")
        for model, query in compiled.items():
            assert "cast('" in query and "as timestamptz)" in query, f"{model} was not compiled incrementally"
            plan = conn.execute("explain (format json) " + query).fetchone()[0][0]["Plan"]
            scanned[model] = seq_scans(plan) - SMALL
    assert scanned == {model: set() for model in compiled}


def test_every_incremental_model_indexes_its_watermark(settings, runs, warehouse):
    """An incremental run starts with max(_loaded_at) of its model: without an index led by _loaded_at that is a
    scan of the whole table (1.5 s on two million tickets), whatever changed."""
    incremental = incremental_tables()
    assert len(incremental) >= 9
    unindexed = [
        (schema, table)
        for schema, table in incremental
        if not warehouse.execute(
            "select 1 from pg_indexes where schemaname = %s and tablename = %s and indexdef like '%%(_loaded_at)'",
            (schema, table),
        ).fetchone()
    ]
    assert unindexed == []


def test_statistics_are_refreshed_after_each_load(settings, runs, warehouse):
    """The watermark filters are planned from statistics: after a run, every raw table and every incremental
    model that holds rows was analyzed after its newest row was written. (Without it the planner saw no row
    newer than the watermark, planned for one, and nested loops over thousands: int_orders took 34 s instead
    of 0.6 s after 1% of a million orders changed.)"""
    incremental = incremental_tables()
    raw = warehouse.execute(
        "select table_schema, table_name from information_schema.columns "
        "where table_schema = 'raw' and column_name = '_loaded_at'"
    ).fetchall()
    assert len(incremental) >= 9 and len(raw) >= 15
    for schema, table in [*raw, *incremental]:
        newest = warehouse.execute(f'select max(_loaded_at) from "{schema}"."{table}"').fetchone()[0]
        analyzed = warehouse.execute(
            "select last_analyze from pg_stat_user_tables where schemaname = %s and relname = %s", (schema, table)
        ).fetchone()[0]
        if newest is not None:
            assert analyzed is not None and analyzed >= newest, (
                f"{schema}.{table}: analyzed {analyzed}, newest {newest}"
            )
