"""Incremental, idempotent platform extraction against real PostgreSQL databases."""

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from boxoffice.demo import platform as demo_platform
from extract import platform
from extract.raw import new_batch_id

from .conftest import AS_OF


@pytest.fixture
def dbs(server):
    """A fresh platform source (300 generated orders) and an empty warehouse."""
    suffix = uuid.uuid4().hex[:8]
    src, wh = f"src_{suffix}", f"wh_{suffix}"
    source_dsn, warehouse_dsn = server.ensure_database(src), server.ensure_database(wh)
    demo_platform.write(source_dsn, orders=300, seed=11, as_of=AS_OF, fraud=False)
    yield source_dsn, warehouse_dsn
    server.drop_database(src)
    server.drop_database(wh)


def load(source_dsn, warehouse_dsn, table="orders", **kwargs):
    return platform.load_table(source_dsn, "public", warehouse_dsn, table, new_batch_id(), **kwargs)


def fingerprint(dsn, table="orders"):
    """md5 of raw's data columns in key order (load metadata excluded)."""
    with psycopg.connect(dsn) as conn:
        cols = [
            r[0]
            for r in conn.execute(
                "select column_name from information_schema.columns where table_schema = 'raw' "
                "and table_name = %s and column_name not like '\\_%%' order by ordinal_position",
                (platform.raw_table(table),),
            )
        ]
        query = f"select count(*), md5(string_agg(t::text, '|' order by t.id)) from (select {', '.join(cols)} from raw.platform_{table}) t"  # noqa: E501
        return conn.execute(query).fetchone()


def test_second_run_with_no_source_change_writes_nothing(dbs):
    source_dsn, warehouse_dsn = dbs
    first = load(source_dsn, warehouse_dsn)
    assert first.rows_read == first.rows_written == 300
    second = load(source_dsn, warehouse_dsn, lookback=timedelta(0))
    assert second.rows_written == 0
    assert second.rows_read <= 1  # only the cursor row itself is at the boundary, and it is not after it
    assert fingerprint(warehouse_dsn)[0] == 300


def test_late_commit_inside_the_lookback_window_is_caught_and_outside_needs_full_refresh(dbs):
    source_dsn, warehouse_dsn = dbs
    load(source_dsn, warehouse_dsn)
    with psycopg.connect(warehouse_dsn) as conn:
        cursor_at = datetime.fromisoformat(platform.read_cursor(conn, "orders")[0])
    with psycopg.connect(source_dsn) as src:
        # two transactions that committed late, with updated_at before the committed cursor
        src.execute(
            "update orders set status = 'refunded', updated_at = %s where id = 10", (cursor_at - timedelta(minutes=5),)
        )
        src.execute(
            "update orders set status = 'refunded', updated_at = %s where id = 11", (cursor_at - timedelta(hours=2),)
        )
    result = load(source_dsn, warehouse_dsn, lookback=timedelta(minutes=15))
    assert result.rows_written == 1
    with psycopg.connect(warehouse_dsn) as conn:
        statuses = dict(conn.execute("select id, status from raw.platform_orders where id in (10, 11)").fetchall())
    assert statuses[10] == "refunded" and statuses[11] != "refunded"
    full = load(source_dsn, warehouse_dsn, full_refresh=True)
    assert (full.rows_read, full.rows_written) == (300, 1)
    assert fingerprint(warehouse_dsn) == fingerprint_of_fresh_load(source_dsn)


def fingerprint_of_fresh_load(source_dsn):
    with psycopg.connect(source_dsn) as src:
        return src.execute(
            "select count(*), md5(string_agg(t::text, '|' order by t.id)) from (select * from orders) t"
        ).fetchone()


CRASHING_LOADER = textwrap.dedent("""
    import sys, time
    from extract import platform, quarantine
    from extract.raw import new_batch_id

    real_release = quarantine.Stage.release_passed
    chunks = 0

    def report_then_go_on(self, *args, **kwargs):
        global chunks
        chunks += 1
        print(f"staged {chunks}", flush=True)  # the chunk is written to raw, not yet committed
        time.sleep(0.2)
        return real_release(self, *args, **kwargs)

    quarantine.Stage.release_passed = report_then_go_on
    platform.load_table(sys.argv[1], "public", sys.argv[2], "orders", new_batch_id(), chunk_rows=40)
""")


def test_resume_after_a_kill_mid_table_is_identical_to_an_uninterrupted_load(dbs, server):
    source_dsn, warehouse_dsn = dbs
    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING_LOADER, source_dsn, warehouse_dsn],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    for line in child.stdout:
        if line.strip() == "staged 4":  # three chunks committed, the fourth in flight
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    with psycopg.connect(warehouse_dsn) as conn:
        assert conn.execute("select count(*) from raw.platform_orders").fetchone()[0] == 120
    resumed = load(source_dsn, warehouse_dsn, chunk_rows=40)
    assert resumed.rows_written == 180

    reference = server.ensure_database(f"ref_{uuid.uuid4().hex[:8]}")
    load(source_dsn, reference)
    assert fingerprint(warehouse_dsn) == fingerprint(reference)
    assert fingerprint(warehouse_dsn)[0] == 300
    server.drop_database(reference.rsplit("/", 1)[1])


def test_a_new_source_column_is_carried_into_raw(dbs):
    source_dsn, warehouse_dsn = dbs
    load(source_dsn, warehouse_dsn)
    with psycopg.connect(source_dsn) as src:
        src.execute("alter table orders add column sales_channel text")
        src.execute("update orders set sales_channel = 'app', updated_at = now() where id <= 5")
    result = load(source_dsn, warehouse_dsn)
    assert result.rows_written == 5
    with psycopg.connect(warehouse_dsn) as conn:
        rows = conn.execute("select count(*) from raw.platform_orders where sales_channel = 'app'").fetchone()[0]
    assert rows == 5


def test_a_dropped_required_column_stops_that_table_naming_it_and_others_still_load(dbs):
    source_dsn, warehouse_dsn = dbs
    with psycopg.connect(source_dsn) as src:
        src.execute("alter table tickets rename column qr_code to qr")
    with pytest.raises(platform.ContractError, match=r"public\.tickets lacks required column\(s\): qr_code"):
        load(source_dsn, warehouse_dsn, table="tickets")
    assert load(source_dsn, warehouse_dsn, table="orders").rows_written == 300


def primary_key(dsn, table="orders"):
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "select pg_get_constraintdef(oid) from pg_constraint where conrelid = %s::regclass and contype = 'p'",
            (f"raw.platform_{table}",),
        ).fetchone()


def test_a_row_updated_during_a_first_load_keeps_its_latest_version_and_the_key_comes_back(dbs):
    """A first load appends without the key index; a row read twice (updated between two chunks) is
    settled when the key is rebuilt: one row per id, the newer version."""
    source_dsn, warehouse_dsn = dbs
    with psycopg.connect(source_dsn) as src:
        first_id = src.execute("select id from orders order by updated_at, id limit 1").fetchone()[0]
    updated = []

    def update_a_committed_row(message):
        if not updated:  # after the first chunk committed: the row moves to the end of the keyset
            with psycopg.connect(source_dsn) as src:
                src.execute("update orders set status = 'refunded', updated_at = now() where id = %s", (first_id,))
            updated.append(message)

    result = load(source_dsn, warehouse_dsn, chunk_rows=40, progress=update_a_committed_row)
    assert updated and updated[0].startswith("orders: 13% (40 of ~300 rows read)")
    assert (result.rows_read, result.rows_written) == (301, 300)
    assert primary_key(warehouse_dsn) == ("PRIMARY KEY (id)",)
    assert fingerprint(warehouse_dsn) == fingerprint_of_fresh_load(source_dsn)
    with psycopg.connect(warehouse_dsn) as conn:
        assert conn.execute("select status from raw.platform_orders where id = %s", (first_id,)).fetchone() == (
            "refunded",
        )


def test_a_resumed_first_load_that_rereads_committed_rows_has_no_duplicates(dbs, server):
    source_dsn, warehouse_dsn = dbs
    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING_LOADER, source_dsn, warehouse_dsn],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    for line in child.stdout:
        if line.strip() == "staged 3":
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait(timeout=30)
    assert primary_key(warehouse_dsn) is None  # interrupted mid first load: still appending
    resumed = load(source_dsn, warehouse_dsn, chunk_rows=40, lookback=timedelta(days=36500))  # re-reads all
    assert resumed.rows_read == 300 and resumed.rows_written == 300 - 80
    assert primary_key(warehouse_dsn) == ("PRIMARY KEY (id)",)
    assert fingerprint(warehouse_dsn) == fingerprint_of_fresh_load(source_dsn)


def test_a_row_dated_in_the_future_is_loaded_counted_and_hides_no_later_change(dbs):
    """One row dated 2030 moved the cursor there, and every later update was missed (even by a full refresh)."""
    source_dsn, warehouse_dsn = dbs
    load(source_dsn, warehouse_dsn)
    with psycopg.connect(source_dsn) as src:
        src.execute("update orders set status = 'refunded', updated_at = '2030-01-01 00:00+00' where id = 5")
    for full_refresh in (False, True):
        result = load(source_dsn, warehouse_dsn, full_refresh=full_refresh)
        assert result.rows_in_future == 1
        assert result.metadata()["rows_in_future_note"] == "1 row in orders has updated_at in the future"
        with psycopg.connect(warehouse_dsn) as conn:
            cursor = datetime.fromisoformat(platform.read_cursor(conn, "orders")[0])
        assert cursor <= datetime.now(UTC) + timedelta(seconds=5)
    with psycopg.connect(source_dsn) as src:
        src.execute("update orders set status = 'cancelled', updated_at = now() where id = 6")
    load(source_dsn, warehouse_dsn)
    with psycopg.connect(warehouse_dsn) as conn:
        statuses = dict(conn.execute("select id, status from raw.platform_orders where id in (5, 6)").fetchall())
    assert statuses == {5: "refunded", 6: "cancelled"}


def test_a_broken_contract_stops_that_table_alone(dbs, monkeypatch):
    """A missing contract column fails that table's source_contract check with one line naming it; the
    tables after it (its children included) still load, where before the whole run stopped."""
    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.extract_assets import PLATFORM_SPECS, extract_sources
    from orchestration.pipeline import read_outcome

    source_dsn, warehouse_dsn = dbs
    monkeypatch.setenv("SOURCE_DSN", source_dsn)
    monkeypatch.setenv("WAREHOUSE_DSN", warehouse_dsn)
    with psycopg.connect(source_dsn) as src:
        src.execute("alter table orders drop column total_cents")
    platform_only = [spec.key for spec in PLATFORM_SPECS]
    result = dg.materialize([extract_sources], selection=platform_only, resources=defs.resources, raise_on_error=False)
    outcome = read_outcome(result)
    assert outcome.tables_not_loaded == [
        "platform_orders: source table public.orders lacks required column(s): total_cents"
    ]
    assert not outcome.ok and outcome.failed_steps == []
    loaded = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert loaded == {f"platform_{t}" for t in platform.TABLES}
    with psycopg.connect(warehouse_dsn) as conn:
        assert conn.execute("select to_regclass('raw.platform_orders')").fetchone()[0] is None
        assert conn.execute("select count(*) from raw.platform_tickets").fetchone()[0] > 0


def test_a_table_whose_load_fails_stops_its_children_alone(dbs, monkeypatch):
    """A database error while reading one table (here a division by zero in the source) fails the extract step
    naming it, and its children (through foreign keys) with it; the tables that do not depend on it load."""
    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.extract_assets import PLATFORM_SPECS, extract_sources

    source_dsn, warehouse_dsn = dbs
    monkeypatch.setenv("SOURCE_DSN", source_dsn)
    monkeypatch.setenv("WAREHOUSE_DSN", warehouse_dsn)
    with psycopg.connect(source_dsn) as src:
        src.execute("alter table events rename to events_data")
        src.execute("create view events as select * from events_data where 1 / (id - id) = 0")
    platform_only = [spec.key for spec in PLATFORM_SPECS]
    result = dg.materialize([extract_sources], selection=platform_only, resources=defs.resources, raise_on_error=False)
    assert not result.success
    loaded = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert loaded == {"platform_organizations", "platform_customers", "platform_webhook_deliveries"}
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = str(failure.event_specific_data.error)
    assert "events: division by zero" in message
    for child in ("orders", "tickets", "payments", "refunds", "scans"):
        assert f"{child}: not loaded: its parent" in message
