"""`make bench-pipeline`: the whole pipeline at scale, as a user would run it, in a home of its own.

Measures, each in a fresh process (its peak RSS from wait4): generating the demo sources, the first run
(by step), two runs with no source change, a run after 1% of the orders and payments changed, the 5-minute
micro-batch job after another 1% changed, and finance's export of every money movement as CSV, JSON and XLSX.
Reports dbt's ten slowest models and tests, and the Mollie extract's requests per second against a plain page
walk of the same endpoints, in the same run. Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import requests

from boxoffice.settings import DBT_PROJECT_DIR


@dataclass
class Step:
    name: str
    seconds: float
    peak_rss_mb: float
    steps: dict[str, float] = field(default_factory=dict)


def _boxoffice(home: Path, *args: str) -> tuple[float, float]:
    """A boxoffice command in a fresh process, in the bench's home; (wall seconds, peak RSS in MB)."""
    from bench.extractor import measure

    env = {k: v for k, v in os.environ.items() if k not in ("WAREHOUSE_DSN", "SOURCE_DSN", "BOXOFFICE_AS_OF")}
    env.update(BOXOFFICE_HOME=str(home), REPORTS_DIR=str(home / "reports"))
    return measure([sys.executable, "-m", "boxoffice.cli", *args], env)


def step_seconds(home: Path, since: float) -> dict[str, float]:
    """The steps of the Dagster runs started since `since` (a `boxoffice run` is a load and a build) and how long
    each took."""
    import dagster as dg

    from boxoffice.warehouse import DAGSTER_DB, DAGSTER_STORAGE_ENV, EmbeddedServer, dagster_storage_url

    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    os.environ[DAGSTER_STORAGE_ENV] = dagster_storage_url(EmbeddedServer(home).ensure_database(DAGSTER_DB))
    seconds = {}
    with dg.DagsterInstance.get() as instance:
        for record in instance.get_run_records(dg.RunsFilter(created_after=datetime.fromtimestamp(since, UTC))):
            for s in instance.get_run_step_stats(record.dagster_run.run_id):
                seconds[s.step_key] = (s.end_time or 0) - (s.start_time or 0)
    return seconds


def slowest_dbt_nodes(since: float, limit: int = 10) -> list[tuple[str, float]]:
    """dbt's slowest models and tests in the dbt steps since `since` (dagster-dbt writes a folder per invocation:
    the main step, the marts by day); none when the run built nothing."""
    runs = [p for p in (DBT_PROJECT_DIR / "target").glob("*/run_results.json") if p.stat().st_mtime >= since]
    nodes = [node for run in runs for node in json.loads(run.read_text())["results"]]
    ranked = sorted(((n["unique_id"].split(".", 1)[1], n["execution_time"]) for n in nodes), key=lambda r: -r[1])
    return ranked[:limit]


def demo_env(home: Path) -> dict[str, str]:
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(home / "demo.env").items() if v}


def change_one_percent(source_dsn: str) -> int:
    """1% of the orders and of the payments change the way a day of refunds and retries changes them: the paid
    orders first in line (a bench on the same sources again refunds the next ones) and every hundredth payment."""
    with psycopg.connect(source_dsn) as conn:
        orders = conn.execute(
            "update orders set status = 'refunded', updated_at = now() where id in ("
            "select id from orders where status = 'paid' order by id limit (select count(*) / 100 from orders))"
        ).rowcount
        payments = conn.execute("update payments set updated_at = now() where id % 100 = 7").rowcount
    return orders + payments


def page_walk(api_url: str, token: str) -> tuple[int, float]:
    """Every page of the endpoints the extract reads, one request after another, nothing written."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    count, started = 0, time.monotonic()

    def walk(url: str) -> list[dict]:
        nonlocal count
        items = []
        while url:
            body = session.get(url, timeout=60).json()
            count += 1
            items += next(iter(body.get("_embedded", {}).values()), [])
            url = (body.get("_links", {}).get("next") or {}).get("href")
        return items

    for name in ("payments", "refunds", "chargebacks"):
        walk(f"{api_url}/v2/{name}?limit=250")
    for settlement in walk(f"{api_url}/v2/settlements?limit=250"):
        for sub in ("payments", "refunds", "chargebacks", "captures"):
            walk(f"{api_url}/v2/settlements/{settlement['id']}/{sub}?limit=250")
    for balance in walk(f"{api_url}/v2/balances?limit=250"):
        walk(f"{api_url}/v2/balances/{balance['id']}/transactions?limit=250")
    return count, time.monotonic() - started


def mollie_rates(home: Path) -> dict[str, float]:
    """Requests per second: the extract (concurrent, writing raw) against the plain walk, same endpoints."""
    from boxoffice.settings import DEFAULT_MOLLIE_CONCURRENCY
    from boxoffice.warehouse import EmbeddedServer
    from extract import mollie
    from extract.raw import new_batch_id

    env = demo_env(home)
    server = EmbeddedServer(home)
    server.drop_database("bench_mollie")
    dsn = server.ensure_database("bench_mollie")
    client = mollie.make_client(env["MOLLIE_API_URL"], env["MOLLIE_API_TOKEN"])
    started = time.monotonic()
    mollie.load_all(client, dsn, new_batch_id(), full_refresh=True, concurrency=DEFAULT_MOLLIE_CONCURRENCY)
    extract_seconds = time.monotonic() - started
    server.drop_database("bench_mollie")
    walked, walk_seconds = page_walk(env["MOLLIE_API_URL"], env["MOLLIE_API_TOKEN"])
    return {
        "extract_requests": client.requests,
        "extract_rps": client.requests / extract_seconds,
        "walk_requests": walked,
        "walk_rps": walked / walk_seconds,
        "concurrency": DEFAULT_MOLLIE_CONCURRENCY,
    }


def run(orders: int, home: Path, reuse_sources: bool = False) -> tuple[list[Step], int, dict, dict]:
    from boxoffice.warehouse import WAREHOUSE_DB, EmbeddedServer

    server = EmbeddedServer(home)
    if reuse_sources:  # the sources of the last bench (after its 1% change), a warehouse built from nothing
        server.drop_database(WAREHOUSE_DB)
        shutil.rmtree(home / "dbt_state", ignore_errors=True)  # what the dropped warehouse was built from
        measured = []
    else:  # a home of its own, from nothing (a warehouse of earlier sources would hold their rows)
        server.down()
        shutil.rmtree(home, ignore_errors=True)
        print(f"Generating {orders:,} orders in {home} ...", flush=True)
        measured = [Step("generate the demo sources", *_boxoffice(home, "demo", "--orders", str(orders), "--no-run"))]
    slowest = {}
    runs = (
        ("first run", None),
        ("run with no source change", None),  # right after the first run wrote millions of rows
        ("again, nothing changed", None),
        ("run after 1% changed", True),
    )
    for name, prepare in runs:
        changed = change_one_percent(demo_env(home)["SOURCE_DSN"]) if prepare else 0
        print(f"{name} ...", flush=True)
        started = time.time()
        step = Step(name, *_boxoffice(home, "run"))
        step.steps = step_seconds(home, started)
        measured.append(step)
        slowest[name] = slowest_dbt_nodes(started)
    # the 5-minute job on another 1% change (the fraud and health marts, not the rest)
    change_one_percent(demo_env(home)["SOURCE_DSN"])
    print("micro-batch after 1% changed ...", flush=True)
    started = time.time()
    step = Step("micro-batch job after 1% changed", *_boxoffice(home, "run", "--job", "micro_batch"))
    step.steps = step_seconds(home, started)
    measured.append(step)
    measured += export_steps(home)
    return measured, changed, slowest, mollie_rates(home)


EXPORT_FORMATS = ("csv", "json", "xlsx")


def export_steps(home: Path) -> list[Step]:
    """Finance's export of every money movement, one fresh process per format (its peak RSS is the export's)."""
    every_day = ("--from", "2000-01-01", "--to", "2099-12-31")
    steps = []
    for fmt in EXPORT_FORMATS:
        print(f"export transactions ({fmt}) ...", flush=True)
        steps.append(
            Step(
                f"export every money movement ({fmt})",
                *_boxoffice(home, "export", "transactions", *every_day, "--format", fmt),
            )
        )
    return steps


def movements(home: Path) -> int:
    from boxoffice.warehouse import WAREHOUSE_DB, EmbeddedServer

    with psycopg.connect(EmbeddedServer(home).url(WAREHOUSE_DB)) as conn:
        return conn.execute("select count(*) from marts.fct_money_movements").fetchone()[0]


def report(
    orders: int, measured: list[Step], changed: int, slowest: dict, rates: dict, where: str, args: str, home: Path
) -> str:
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d}: the pipeline at {orders:,} orders",
        "",
        f"Command: `make bench-pipeline BENCH_ARGS='{args}'` on {where}. Each step is a fresh "
        "process in a home of its own; peak RSS is that process's.",
        "",
        "| step | seconds | peak RSS (MB) |",
        "|---|---|---|",
    ]
    lines += [f"| {m.name} | {m.seconds:.1f} | {m.peak_rss_mb:.0f} |" for m in measured]
    lines += ["", f"The 1% change: {changed:,} rows of orders and payments."]
    lines += [f"The exports wrote every money movement: {movements(home):,} rows.", "", "Dagster steps (seconds):", ""]
    runs = [m for m in measured if m.steps]
    lines += ["| step | " + " | ".join(m.name for m in runs) + " |", "|---|" + "---|" * len(runs)]
    for key in sorted({k for m in runs for k in m.steps}, key=lambda k: -runs[0].steps.get(k, 0)):
        cells = (f"{m.steps[key]:.1f}" if key in m.steps else "not run" for m in runs)
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    for name, nodes in slowest.items():
        lines += ["", f"dbt's ten slowest models and tests, {name}:", ""]
        lines += [f"- {node}: {seconds:.2f} s" for node, seconds in nodes] or ["- dbt did not run: nothing to build"]
    lines += [
        "",
        f"Mollie: the extract made {rates['extract_requests']:,} requests at **{rates['extract_rps']:.1f}/s** "
        f"({rates['concurrency']} at a time, writing raw); a plain page walk of the same endpoints "
        f"({rates['walk_requests']:,} requests, one after another, nothing written) ran at "
        f"{rates['walk_rps']:.1f}/s: **{rates['extract_rps'] / rates['walk_rps']:.2f}x**.",
    ]
    return "\n".join(lines) + "\n"


def main(orders: int, reuse_sources: bool = False) -> None:
    from bench.extractor import machine, prepend_to_benchmarks
    from boxoffice.settings import home_dir
    from boxoffice.warehouse import EmbeddedServer

    home = home_dir() / "bench_pipeline"
    measured, changed, slowest, rates = run(orders, home, reuse_sources)
    args = f"--orders {orders}" + (" --reuse-sources" if reuse_sources else "")
    text = report(orders, measured, changed, slowest, rates, machine(EmbeddedServer(home).url()), args, home)
    print("\n" + text)
    prepend_to_benchmarks(text)
    EmbeddedServer(home).down()
