"""`boxoffice bench executors`: the build job under Dagster's in-process executor against the multiprocess one, on
the same warehouse, each a full rebuild (dbt --full-refresh, every check, the reports). Step times come from
Dagster's own event log. Results go to docs/deployment.md (see there what runs in parallel, and why)."""

from __future__ import annotations

import time

BUILD_JOB = "boxoffice_build"
PROCESSES = 2  # this machine's cores


def build_job_multiprocess():
    """The build job with the multiprocess executor; module-level so that each step's process can rebuild it."""
    import dagster as dg

    from orchestration.definitions import defs

    return defs.resolve_job_def(BUILD_JOB).with_executor_def(dg.multiprocess_executor)


def _run_config(multiprocess: bool) -> dict:
    from orchestration.dbt_assets import DBT_STEPS
    from orchestration.resources import LOCK

    config: dict = {
        "ops": {step: {"config": {"full_refresh": True}} for step in DBT_STEPS},
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
    }
    if multiprocess:  # each step in a process of its own: they share the warehouse lock (resources.WarehouseLock)
        config["execution"] = {"config": {"max_concurrent": PROCESSES}}
        config["resources"] = {LOCK: {"config": {"shared": True}}}
    return config


def _steps(instance, run_id: str) -> dict[str, float]:
    return {s.step_key: (s.end_time or 0) - (s.start_time or 0) for s in instance.get_run_step_stats(run_id)}


def measure(settings) -> list[tuple[str, float, bool, dict[str, float]]]:
    """(executor, wall seconds, success, seconds per step), in-process first."""
    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.pipeline import prepare_dagster_home

    prepare_dagster_home(settings)
    results = []
    with dg.DagsterInstance.get() as instance:
        started = time.monotonic()
        run = defs.resolve_job_def(BUILD_JOB).execute_in_process(
            instance=instance, run_config=_run_config(False), raise_on_error=False
        )
        results.append(("in_process", time.monotonic() - started, run.success, _steps(instance, run.run_id)))
        started = time.monotonic()
        with dg.execute_job(
            dg.reconstructable(build_job_multiprocess), instance, run_config=_run_config(True), raise_on_error=False
        ) as run:
            results.append(("multiprocess", time.monotonic() - started, run.success, _steps(instance, run.run_id)))
    return results


def report(results, orders: int, machine: str) -> str:
    lines = [
        f"Build job, full rebuild, {orders:,} orders, {machine}:",
        "",
        "| executor | wall seconds | success |",
        "|---|---|---|",
        *(f"| {name} | {seconds:.1f} | {ok} |" for name, seconds, ok, _ in results),
        "",
        "| step | " + " | ".join(name for name, *_ in results) + " |",
        "|---|" + "---|" * len(results),
    ]
    steps = sorted({s for *_, per in results for s in per}, key=lambda s: -results[0][3].get(s, 0))
    for step in steps:
        lines.append(f"| {step} | " + " | ".join(f"{per.get(step, 0):.1f}" for *_, per in results) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    import psycopg

    from bench.extractor import machine
    from boxoffice.settings import Settings

    settings = Settings.load()
    with psycopg.connect(settings.warehouse_dsn) as conn:
        (orders,) = conn.execute("select count(*) from raw.platform_orders").fetchone()
    print(report(measure(settings), orders, machine(settings.warehouse_dsn)))
