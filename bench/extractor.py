"""`make bench`: the extractor against the practical limit (a raw COPY stream) and dlt, in one run.

A source database is generated with SQL at any size (N orders, N payments, N/2 customers, and their
parents); every method then loads the same tables into an empty database in its own subprocess, so
its peak RSS is its own (from wait4). Last, 1% of the orders and payments change and the extractor
runs incrementally. Results are printed and written to docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from boxoffice.settings import PROJECT_DIR
from boxoffice.warehouse import EmbeddedServer

TABLES = ["organizations", "events", "customers", "orders", "payments"]

GENERATE = """
insert into organizations select i, 'Org ' || i, case when i % 20 = 0 then 'suspended' else 'active' end,
    now() - interval '700 days', now() - interval '600 days' from generate_series(1, 1000) i;
insert into events select i, 1 + i % 1000, 'Event ' || i, (array['live','ended','draft'])[1 + i % 3],
    now() - (i % 400) * interval '1 day', null, now() - interval '500 days', now() - interval '400 days'
    from generate_series(1, 10000) i;
insert into customers select i, 'buyer' || i || '@example.com', '10.0.0.1'::inet + (i % 60000),
    now() - (i % 400) * interval '1 day', now() - (i % 400) * interval '1 day' from generate_series(1, {customers}) i;
insert into orders select i, 'ORD-' || lpad(i::text, 9, '0'), 1 + i % 1000, 1 + i % 10000,
    case when i % 5 = 0 then null else 1 + i % {customers} end, 'buyer' || i || '@example.com',
    '10.1.0.1'::inet + (i % 60000), (array['paid','paid','paid','paid','failed','refunded'])[1 + i % 6], 'EUR',
    1000 + (i % 90) * 100, 99 * (1 + i % 4), 50 + i % 300, 1000 + (i % 90) * 100 + 99 * (1 + i % 4), 1 + i % 4,
    now() - (i % 395) * interval '1 day' - (i % 86400) * interval '1 second',
    now() - (i % 395) * interval '1 day' - (i % 86400) * interval '1 second' + interval '40 seconds',
    now() - (i % 395) * interval '1 day' - (i % 86400) * interval '1 second' + interval '40 seconds'
    from generate_series(1, {orders}) i;
insert into payments select i, i, 'tr_' || lpad(to_hex(i), 10, '0'),
    (array['paid','paid','paid','paid','failed','paid'])[1 + i % 6], 'ideal',
    1000 + (i % 90) * 100 + 99 * (1 + i % 4), 'EUR', null, o.created_at, o.paid_at, o.updated_at
    from generate_series(1, {orders}) i join orders o on o.id = i;
"""

COPY_STREAM = """
import sys, psycopg
from extract.raw import copy_rows, write_blocks
src, dst, tables = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
fmt = " (format binary)" if len(sys.argv) > 4 and sys.argv[4] == "binary" else ""
with psycopg.connect(src) as s, psycopg.connect(dst) as d:
    for t in tables:
        d.execute(f"create table {t} (like platform_template.{t} including all)")
        with d.cursor().copy(f"copy {t} from stdin{fmt}") as into:
            write_blocks(copy_rows(s, f"copy {t} to stdout{fmt}"), into)
        d.commit()
"""

EXTRACTOR = """
import sys
from extract import platform
from extract.raw import new_batch_id
src, dst, tables = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
for t in tables:
    platform.load_table(src, "public", dst, t, new_batch_id())
"""

DLT = """
import sys, dlt
from dlt.sources.sql_database import sql_table
src, dst, tables = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
url = "postgresql+psycopg2://" + src.split("://", 1)[1]
# dlt insists on a password; the embedded server trusts local connections, so any will do
if "@" in dst and ":" not in dst.split("://", 1)[1].split("@", 1)[0]:
    dst = dst.replace("@", ":trust@", 1)
pipeline = dlt.pipeline(pipeline_name="bench", destination=dlt.destinations.postgres(credentials=dst),
                        dataset_name="raw", pipelines_dir=sys.argv[4], progress=None)
for t in tables:
    pipeline.run(sql_table(credentials=url, table=t, backend="pyarrow"), table_name=t, write_disposition="replace")
"""


@dataclass
class Measurement:
    method: str
    rows: int
    seconds: float
    peak_rss_mb: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


def measure(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run a command in a fresh process; returns (wall seconds, peak RSS in MB) of that process alone."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=PROJECT_DIR, env=env or os.environ)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"benchmark step failed: {' '.join(argv[:4])}")
    return seconds, usage.ru_maxrss / 1024


def _run(script: str, *args: str) -> tuple[float, float]:
    """A script in a fresh Python (dlt's telemetry off)."""
    env = {**os.environ, "DLT_TELEMETRY_DISABLED": "1", "RUNTIME__DLTHUB_TELEMETRY": "false"}
    return measure([sys.executable, "-c", script, *args], env)


def generate_source(server: EmbeddedServer, orders: int) -> str:
    server.drop_database("bench_source")
    dsn = server.ensure_database("bench_source")
    from boxoffice.demo.platform import contract_ddl

    with psycopg.connect(dsn) as conn:
        conn.execute(contract_ddl())
        conn.execute(GENERATE.format(orders=orders, customers=max(1, orders // 2)))
        for t in ("orders", "payments", "customers", "events"):
            conn.execute(f"create index on {t} (updated_at, id)")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("vacuum analyze")
    return dsn


def fresh_target(server: EmbeddedServer, name: str, source_dsn: str) -> str:
    server.drop_database(name)
    dsn = server.ensure_database(name)
    if name == "bench_copy":  # the COPY stream needs the template tables to copy the shape from
        with psycopg.connect(dsn) as conn, psycopg.connect(source_dsn) as src:
            conn.execute("create schema platform_template")
            for t in TABLES:
                ddl = src.execute(
                    "select 'create table platform_template.' || %s || ' (' || string_agg(quote_ident(attname) "
                    "|| ' ' || format_type(atttypid, atttypmod), ', ' order by attnum) || ', primary key (id))' "
                    "from pg_attribute where attrelid = ('public.' || %s)::regclass and attnum > 0 "
                    "and not attisdropped",
                    (t, t),
                ).fetchone()[0]
                conn.execute(ddl)
    return dsn


def _median_run(rounds: list[tuple[float, float]]) -> tuple[float, float]:
    """The median wall time of the rounds, and the highest peak RSS among them."""
    return statistics.median(r[0] for r in rounds), max(r[1] for r in rounds)


def run(orders: int, skip_dlt: bool = False, rounds: int = 3) -> dict[str, Measurement]:
    """Measurements by kind: copy, binary, extractor, dlt (unless skipped), incremental."""
    from boxoffice.settings import home_dir

    server = EmbeddedServer(home_dir())
    print(f"Generating {orders:,} orders in bench_source ...", flush=True)
    source = generate_source(server, orders)
    with psycopg.connect(source) as conn:
        rows = sum(conn.execute(f"select count(*) from {t}").fetchone()[0] for t in TABLES)
    tables = ",".join(TABLES)
    results: dict[str, Measurement] = {}

    # The two are interleaved, round after round, so a slow spell of the machine hits both alike.
    copy_rounds, binary_rounds, extract_rounds = [], [], []
    for i in range(rounds):
        copy_rounds.append(_run(COPY_STREAM, source, fresh_target(server, "bench_copy", source), tables, "text"))
        binary_rounds.append(_run(COPY_STREAM, source, fresh_target(server, "bench_copy", source), tables, "binary"))
        target = fresh_target(server, "bench_extract", source)
        extract_rounds.append(_run(EXTRACTOR, source, target, tables))
        print(
            f"  round {i + 1}: raw COPY stream {copy_rounds[-1][0]:.1f}s (binary {binary_rounds[-1][0]:.1f}s), "
            f"extractor {extract_rounds[-1][0]:.1f}s",
            flush=True,
        )
    results["copy"] = Measurement("raw COPY stream (psycopg 3)", rows, *_median_run(copy_rounds))
    results["binary"] = Measurement("raw COPY stream, binary format", rows, *_median_run(binary_rounds))
    results["extractor"] = Measurement("boxoffice extractor, full load", rows, *_median_run(extract_rounds))

    if not skip_dlt:
        dlt_target = fresh_target(server, "bench_dlt", source)
        pipelines_dir = str(server.home / "dlt_pipelines")
        seconds, rss = _run(DLT, source, dlt_target, tables, pipelines_dir)
        results["dlt"] = Measurement('dlt sql_table(backend="pyarrow")', rows, seconds, rss)
        print(f"  {results['dlt'].method}: {seconds:.1f}s", flush=True)

    with psycopg.connect(source) as conn:
        changed = 0
        for t, new_status in (("orders", "refunded"), ("payments", "canceled")):  # valid statuses: nothing quarantined
            changed += conn.execute(
                f"update {t} set status = {new_status!r}, updated_at = now() where id % 100 = 7"
            ).rowcount
    seconds, rss = _run(EXTRACTOR, source, target, tables)
    results["incremental"] = Measurement(
        f"boxoffice extractor, incremental after changing {changed:,} rows (1%)", changed, seconds, rss
    )
    print(f"  {results['incremental'].method}: {seconds:.1f}s", flush=True)
    for name in ("bench_copy", "bench_extract", "bench_dlt", "bench_source"):
        server.drop_database(name)
    return results


def machine(dsn: str) -> str:
    """The machine the numbers were measured on, read off it: cores, CPU model, memory, PostgreSQL."""
    cpu = "unknown CPU"
    memory = ""
    with contextlib.suppress(OSError):
        models = [
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = models[0] if models else cpu
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    with psycopg.connect(dsn) as conn:
        version = conn.execute("show server_version").fetchone()[0].split()[0]
    return f"{os.cpu_count()} cores ({cpu}){memory}, PostgreSQL {version}"


def report(results: dict[str, Measurement], orders: int, command: str, rounds: int, where: str) -> str:
    copy, binary, full, inc = results["copy"], results["binary"], results["extractor"], results["incremental"]
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d}: {orders:,} orders ({full.rows:,} rows in {len(TABLES)} tables)",
        "",
        f"Command: `{command}` on {where}, source and target in the same server. "
        f"Raw COPY streams and extractor: median of {rounds} interleaved rounds; dlt and the incremental run: one. "
        "The COPY streams and the extractor relay rows with the same code (extract.raw.copy_rows, write_blocks).",
        "",
        "| method | rows | seconds | rows/s | peak RSS (MB) |",
        "|---|---|---|---|---|",
    ]
    for m in results.values():
        lines.append(f"| {m.method} | {m.rows:,} | {m.seconds:.1f} | {m.rows_per_second:,.0f} | {m.peak_rss_mb:.0f} |")
    lines += ["", "Ratios (same run, same data):", ""]
    lines.append(
        f"- full load vs raw COPY stream: **{full.rows_per_second / copy.rows_per_second:.2f}x** "
        "the throughput (target >= 0.6x)"
    )
    to_binary = full.rows_per_second / binary.rows_per_second
    lines.append(
        f"- full load vs the binary-format COPY stream: **{to_binary:.2f}x** (for reference: the extractor "
        "copies in binary when the source is well typed)"
    )
    if dlt := results.get("dlt"):
        lines.append(
            f"- full load vs dlt: **{full.rows_per_second / dlt.rows_per_second:.1f}x** (for reference; dlt's "
            "own time varies too much between runs for a target)"
        )
    lines.append(f"- 1% incremental run: **{inc.seconds / full.seconds:.1%}** of the full run's time (target <= 10%)")
    lines.append(f"- extractor peak RSS: **{max(full.peak_rss_mb, inc.peak_rss_mb):.0f} MB** (target <= 150 MB)")
    return "\n".join(lines) + "\n"


def main(orders: int, skip_dlt: bool, rounds: int = 3) -> None:
    from boxoffice.settings import home_dir

    results = run(orders, skip_dlt, rounds)
    command = f"make bench BENCH_ARGS='--orders {orders} --rounds {rounds}{' --skip-dlt' if skip_dlt else ''}'"
    text = report(results, orders, command, rounds, machine(EmbeddedServer(home_dir()).url()))
    print("\n" + text)
    prepend_to_benchmarks(text)


def prepend_to_benchmarks(text: str) -> None:
    """docs/benchmarks.md keeps the newest results first."""
    path = PROJECT_DIR / "docs" / "benchmarks.md"
    existing = path.read_text() if path.exists() else "# Benchmarks\n\nNewest first. Produced by `make bench`.\n\n"
    head, _, rest = existing.partition("\n## ")
    path.write_text(head.rstrip() + "\n\n" + text + ("\n## " + rest if rest else ""))
