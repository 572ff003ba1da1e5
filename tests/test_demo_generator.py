"""The demo generator: a seed gives the same sources as before it streamed, and its memory does not grow
with a table.

The digests below were taken from the in-memory generator that the streaming one replaced (commit
3000fb4, `boxoffice demo --orders 300 --seed 11`): a change to the draws, the rows or the Mollie
objects shows here as the table or kind it touched.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import requests

from boxoffice.demo import build, mollie, platform, sandbox
from boxoffice.settings import PROJECT_DIR
from boxoffice.warehouse import WAREHOUSE_DB, EmbeddedServer

AS_OF = datetime(2026, 11, 1, 12, tzinfo=UTC)
DIGESTS = {  # rows : md5 of the rows' text in id order (platform) or list order (sandbox)
    "organizations": "9:6ff79eafd591518c7e0e200df434957f",
    "events": "33:76e85ef8eb32eaf52937d14ed6aa0d4a",
    "customers": "171:cceaea7bf5f57a6e888f29fff0ef5998",
    "orders": "330:12a195980cf1743bc93639809133702e",
    "tickets": "734:50ce92fb88944bba4c6b9081b5c26375",
    "payments": "340:4fa9cc8ed8fb3ec1e477f2ef1c9bd815",
    "refunds": "28:63904fadf21ef1ec34cabb852326892f",
    "webhook_deliveries": "367:d9a0b1d9dc4ee0fcb9436d56e84a39d7",
    "scans": "412:5bfc55eeb13469cf3264244366db4612",
    "mollie.balance": "1:70b90fd791a81f22cd42af0a24e5468b",
    "mollie.balance_transaction": "354:11e9e98bf98a8de90f61a77b78ea7e1d",
    "mollie.chargeback": "1:be3c139df754cb4a53c8780a99875594",
    "mollie.payment": "341:df44fdf9d9d82eb0422c4773a3733955",
    "mollie.refund": "28:5557f455d91616dcf2ef9999103ae4ae",
    "mollie.settlement": "25:ccf21242114790199f7df4fb93ba3135",
    "planted": "7:5b0e41dfed0e3127b9d8fa960a8c0240",
}


def digests(source_dsn: str, sandbox_dsn: str) -> dict[str, str]:
    found = {}
    with psycopg.connect(source_dsn) as conn:
        conn.execute("set timezone = 'UTC'")
        for table in platform.TABLES:
            found[table] = conn.execute(
                f"select count(*) || ':' || md5(string_agg(t::text, E'\\n' order by id)) from {table} t"
            ).fetchone()[0]
    with psycopg.connect(sandbox_dsn) as conn:
        for (kind,) in conn.execute("select distinct kind from objects order by 1").fetchall():
            found[f"mollie.{kind}"] = conn.execute(
                "select count(*) || ':' || md5(string_agg(kind || id || seq || coalesce(parent_id, '') "
                "|| coalesce(settlement_id, '') || coalesce(reference, '') || body::text, E'\\n' order by seq)) "
                "from objects where kind = %s",
                (kind,),
            ).fetchone()[0]
        found["planted"] = conn.execute(
            "select count(*) || ':' || md5(string_agg(t::text, E'\\n' order by t::text)) from planted t"
        ).fetchone()[0]
    return found


def test_a_seed_gives_the_sources_it_gave_before_the_generator_streamed(server):
    sources = build.generate(server, 300, 11, AS_OF, 0.0005, databases=("golden_platform", "golden_sandbox"))
    assert digests(sources.source_dsn, sources.sandbox_dsn) == DIGESTS
    assert sources.platform_counts["orders"] == 330 and sources.mollie_counts["payment"] == 341


def traced_peak(server, orders: int) -> int:
    """Peak bytes Python allocated to generate the platform and the Mollie account and write both."""
    source_dsn, sandbox_dsn = server.ensure_database("traced_platform"), server.ensure_database("traced_sandbox")
    tracemalloc.start()
    try:
        with platform.PlatformSink(source_dsn) as sink:
            data = platform.generate(sink, orders=orders, seed=5, as_of=AS_OF)
            sandbox.store(mollie.build(data), sandbox_dsn)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_grows_by_a_few_hundred_bytes_per_order_not_by_the_rows(server):
    """Lists of row dicts took about 8 KB per order (7.7 GB at 1,000,000); the streaming generator keeps a
    few compact columns per order."""
    small, large = traced_peak(server, 1_000), traced_peak(server, 5_000)
    per_order = (large - small) / 4_000
    assert per_order < 500, f"{per_order:.0f} bytes per order"  # 330 when written


def test_a_new_demo_starts_the_embedded_warehouse_over():
    """The warehouse's raw rows came from the sources a new demo replaces (a demo an hour later draws other
    rows under the same ids): kept, they would hold both and fail the unique keys."""
    home = Path(tempfile.mkdtemp(prefix="bxd-", dir="/tmp"))  # short: it holds the server's socket
    server = EmbeddedServer(home)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAREHOUSE_", "SOURCE_", "MOLLIE_"))}
    try:
        with psycopg.connect(server.ensure_database(WAREHOUSE_DB)) as conn:
            conn.execute("create schema raw; create table raw.rows_of_earlier_sources (id int)")
        cli = [sys.executable, "-m", "boxoffice.cli", "demo", "--orders", "200", "--no-run"]
        subprocess.run(cli, env={**env, "BOXOFFICE_HOME": str(home)}, cwd=PROJECT_DIR, check=True, capture_output=True)
        with psycopg.connect(server.ensure_database(WAREHOUSE_DB)) as conn:
            assert conn.execute("select count(*) from pg_namespace where nspname = 'raw'").fetchone()[0] == 0
        with psycopg.connect(server.url(build.PLATFORM_DB)) as conn:
            assert conn.execute("select count(*) from orders").fetchone()[0] == 230  # 200 and the fraud patterns'
        # a demo again: its Mollie sandbox replaces the running one (which used to die with the old one's exit)
        first = sandbox.daemon_status(home)
        subprocess.run(cli, env={**env, "BOXOFFICE_HOME": str(home)}, cwd=PROJECT_DIR, check=True, capture_output=True)
        second = sandbox.daemon_status(home)
        assert first and second and second["pid"] != first["pid"] and second["port"] == first["port"]
        assert requests.get(second["url"] + "/v2/balances", timeout=10).status_code == 401  # serving: wants a token
    finally:
        sandbox.daemon_down(home)
        server.down()
        shutil.rmtree(home, ignore_errors=True)
