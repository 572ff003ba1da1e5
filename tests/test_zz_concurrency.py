"""Two runs at once: the second waits a bounded time and says which run holds the warehouse. A run killed
mid-way stays STARTED in Dagster only until the next start, which marks it failed and completes the work.
Runs late: it runs the pipeline."""

import os
import signal
import subprocess
import sys
import time

import dagster as dg
import psycopg

from boxoffice.cli import main
from boxoffice.settings import PROJECT_DIR
from boxoffice.warehouse import run_lock_holder
from orchestration.pipeline import PID_TAG


def wait_until_it_holds_the_warehouse(child: subprocess.Popen, dsn: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while f"pid {child.pid} " not in (holder := run_lock_holder(conn)):
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, holder
            time.sleep(0.2)
    return holder


def run_of(pid: int, timeout: float = 60, started: bool = False) -> dg.DagsterRun:
    """The Dagster run a `boxoffice run` process created (it takes the lock first, then creates its load run);
    with `started`, once that run has started (a run is created NOT_STARTED, then starts)."""
    deadline = time.monotonic() + timeout
    with dg.DagsterInstance.get() as instance:
        while not (runs := instance.get_runs(filters=dg.RunsFilter(tags={PID_TAG: str(pid)}))) or (
            started and runs[0].status == dg.DagsterRunStatus.NOT_STARTED
        ):
            assert time.monotonic() < deadline, f"process {pid} started no Dagster run"
            time.sleep(0.2)
    (run,) = runs
    return run


def test_a_second_run_is_told_who_holds_the_warehouse_and_a_killed_run_is_marked_failed(
    runs, settings, source, monkeypatch, capfd
):
    child = subprocess.Popen(
        [sys.executable, "-m", "boxoffice.cli", "run"], cwd=PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        holder = wait_until_it_holds_the_warehouse(child, settings.warehouse_dsn)
        monkeypatch.setenv("RUN_LOCK_WAIT_SECONDS", "1")
        assert main(["run"]) == 1
        err = capfd.readouterr().err
        assert err.count("\n") == 1, err
        assert err.startswith("boxoffice: the run did not start: another run holds the warehouse: boxoffice run ")
        assert (
            f"pid {child.pid} " in err and "waited 1s (RUN_LOCK_WAIT_SECONDS)" in err and holder.split(" (")[0] in err
        )
        run_of(child.pid, started=True)  # its load has started
    finally:
        os.kill(child.pid, signal.SIGKILL)  # mid-run, as a crash or an impatient operator would
        child.wait(timeout=30)
    assert run_of(child.pid).status == dg.DagsterRunStatus.STARTED  # what a kill leaves behind

    monkeypatch.setenv("RUN_LOCK_WAIT_SECONDS", "60")
    # a change in the source meanwhile, so the next run has a build to show (whatever the killed run loaded)
    source.execute("update orders set updated_at = now() where id = (select min(id) from orders)")
    assert main(["run"]) == 0  # the next start finishes the work the killed run left
    killed = run_of(child.pid)
    assert killed.status == dg.DagsterRunStatus.FAILURE
    # and while it ran, a person could follow it: a line for each step as it ends, with its time
    out = capfd.readouterr().out.splitlines()
    steps = [line for line in out if line.endswith("s]") and " done  [" in line]
    assert any(line.strip().startswith("dbt build") for line in steps)
    assert any(line.strip().startswith("extract: platform and Mollie") for line in steps)
    assert any(line.strip().startswith("reports/reconciliation_reports") for line in steps)
    assert out.index(next(line for line in out if line.strip().startswith("dbt build"))) < out.index(
        next(line for line in out if line.startswith("Rows per table"))
    )
