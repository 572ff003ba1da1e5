"""The platform's PostgreSQL tables -> raw.platform_<table>.

Incremental by cursor: rows are read by (updated_at, id) (scans by (created_at, id)) from the last
committed cursor minus a look-back window for late commits, in keyset-ordered chunks. Each chunk
streams with COPY from the source into a temp table in the warehouse and is merged by primary key
together with its cursor, so memory stays flat, unchanged rows are not rewritten, and a crashed run
resumes where it stopped (a table's first load appends instead and builds the key at the end, see
raw.begin_first_load). Columns the source has beyond the contract are carried into raw; a missing
contract column stops that table with an error naming it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from extract import contract, quarantine, raw
from extract.raw import RAW_SCHEMA, LoadResult, copy_rows, ensure_table, merge

STATE_TABLE = "_extract_state"
DEFAULT_LOOKBACK = timedelta(minutes=15)
DEFAULT_CHUNK_ROWS = 500_000
MIN_ID = str(-(2**63))

TABLES = contract.LOAD_ORDER


class ContractError(Exception):
    """The source table does not satisfy the contract."""


def raw_table(table: str) -> str:
    return f"platform_{table}"


def source_columns(conn: psycopg.Connection, schema: str, table: str) -> list[tuple[str, str]]:
    """(name, type) of the source table's columns, in table order."""
    rows = conn.execute(
        """
        select a.attname, format_type(a.atttypid, a.atttypmod)
        from pg_attribute a
        join pg_class c on c.oid = a.attrelid
        join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = %s and c.relname = %s and a.attnum > 0 and not a.attisdropped
        order by a.attnum
        """,
        (schema, table),
    ).fetchall()
    if not rows:
        raise ContractError(f"source table {schema}.{table} does not exist")
    missing = [c for c in contract.COLUMNS[table] if c not in {_str(name) for name, _ in rows}]
    if missing:
        raise ContractError(f"source table {schema}.{table} lacks required column(s): {', '.join(missing)}")
    # A SQL_ASCII source returns text as bytes (its COPY data stays bytes and is checked row by row).
    return [(_str(name), _str(type_)) for name, type_ in rows]


def _str(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def raw_columns(table: str, source: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Contract columns get the contract's type (the text stage is cast to it); extra columns keep theirs."""
    return [(name, contract.COLUMNS[table].get(name, type_)) for name, type_ in source]


def key_is_unique(conn: psycopg.Connection, schema: str, table: str) -> bool:
    """A primary key or unique index on id alone makes duplicate keys within a batch impossible."""
    return bool(
        conn.execute(
            """
        select 1 from pg_index i
        join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace
        join pg_attribute a on a.attrelid = c.oid and a.attnum = i.indkey[0]
        where n.nspname = %s and c.relname = %s and i.indisunique and i.indnatts = 1 and a.attname = 'id'
        """,
            (schema, table),
        ).fetchone()
    )


def _minus(value: str, lookback: timedelta) -> str:
    """The committed cursor minus the look-back, when it reads as a timestamp."""
    try:
        return (datetime.fromisoformat(value) - lookback).isoformat()
    except ValueError:
        return value


def cursor_column(table: str) -> str:
    """Scans are append-only (no updated_at): they are read by created_at."""
    return "created_at" if table == "scans" else "updated_at"


def ensure_state(conn: psycopg.Connection) -> None:
    conn.execute(
        sql.SQL(
            "create table if not exists {} (source_table text primary key, cursor_value text not null, "
            "cursor_id text not null, batch_id text not null, committed_at timestamptz not null default now())"
        ).format(sql.Identifier(RAW_SCHEMA, STATE_TABLE))
    )


def read_cursor(conn: psycopg.Connection, table: str) -> tuple[str, str] | None:
    row = conn.execute(
        sql.SQL("select cursor_value, cursor_id from {} where source_table = %s").format(
            sql.Identifier(RAW_SCHEMA, STATE_TABLE)
        ),
        (table,),
    ).fetchone()
    return (row[0], row[1]) if row else None


def _save_cursor(conn: psycopg.Connection, table: str, position: tuple[str, str], batch_id: str) -> None:
    conn.execute(
        sql.SQL(
            "insert into {} (source_table, cursor_value, cursor_id, batch_id) values (%s, %s, %s, %s) "
            "on conflict (source_table) do update set cursor_value = excluded.cursor_value, "
            "cursor_id = excluded.cursor_id, batch_id = excluded.batch_id, committed_at = now()"
        ).format(sql.Identifier(RAW_SCHEMA, STATE_TABLE)),
        (table, *position, batch_id),
    )


def load_table(
    source_dsn: str,
    schema: str,
    warehouse_dsn: str,
    table: str,
    batch_id: str,
    *,
    full_refresh: bool = False,
    lookback: timedelta = DEFAULT_LOOKBACK,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Callable[[str], None] = lambda _: None,
) -> LoadResult:
    """Load the rows changed since the committed cursor (minus `lookback`), in keyset-ordered chunks.

    Each chunk is staged with COPY, checked against the contract (bad rows to raw._quarantine with a
    reason), merged, and its cursor saved, in one warehouse transaction: a run killed at any point
    resumes where the last chunk committed, and re-read rows merge as no-ops. Two warehouse sessions
    take turns, so the next chunk streams in while the previous one is checked and merged; chunks
    still commit strictly in order, so the saved cursor never passes an uncommitted chunk.
    """
    started = time.monotonic()
    target = raw_table(table)
    order = cursor_column(table)
    totals = {"read": 0, "written": 0, "quarantined": 0}
    with (
        psycopg.connect(source_dsn) as src,
        psycopg.connect(warehouse_dsn) as dst,
        psycopg.connect(warehouse_dsn) as dst2,
        ThreadPoolExecutor(max_workers=1) as finisher,
    ):
        for conn in (dst, dst2):
            conn.execute("set temp_buffers = '512MB'")  # keep a chunk's stage in memory (before any temp table)
            conn.execute("set work_mem = '256MB'")  # the foreign-key checks hash a chunk without spilling to disk
        source = source_columns(src, schema, table)
        columns = raw_columns(table, source)
        names = [n for n, _ in columns]
        unique_key = key_is_unique(src, schema, table)
        ensure_table(dst, target, columns, ["id"])
        ensure_state(dst)
        quarantine.ensure_table(dst)
        first_load = raw.begin_first_load(dst, target)
        dst.commit()
        saved = None if full_refresh else read_cursor(dst, table)
        position = (_minus(saved[0], lookback), MIN_ID) if saved else ("0001-01-01 00:00:00+00", MIN_ID)
        types = dict(source)
        parts = {
            "cols": sql.SQL(", ").join(map(sql.Identifier, names)),
            "table": sql.Identifier(schema, table),
            "order": sql.Identifier(order),
        }
        # The cursor is compared in the source column's own type (a loose source may keep it as text).
        after = sql.SQL("({order}, id) > (cast(%s as {otype}), cast(%s as {itype}))").format(
            **parts, otype=sql.SQL(types[order]), itype=sql.SQL(types["id"])
        )
        # For progress: a whole-table read takes the planner's estimate (a count would read the table once more).
        expected = src.execute("select reltuples::bigint from pg_class where oid = %s::regclass",
                               (sql.Identifier(schema, table).as_string(src),)).fetchone()[0]  # fmt: skip
        if saved or expected < 0:
            expected = src.execute(sql.SQL("select count(*) from {table} where {after}").format(**parts, after=after),
                                   position).fetchone()[0]  # fmt: skip
        utf8 = src.execute("show server_encoding").fetchone()[0] == "UTF8"
        src.commit()
        stages = [quarantine.Stage(c, table, target, columns, types, unique_key, utf8) for c in (dst, dst2)]
        parts["format"] = sql.SQL("(format binary)" if stages[0].binary else "")
        select = sql.SQL(
            "copy (select {cols} from {table} where {after} order by {order}, id limit {n}) to stdout {format}"
        )
        select = select.format(**parts, after=after, n=sql.Literal(chunk_rows))
        # A keyset never returns rows whose cursor column is null: read them apart, so they reach the rules.
        null_cursor = sql.SQL("copy (select {cols} from {table} where {order} is null) to stdout {format}")
        null_cursor = null_cursor.format(**parts)

        def finish(stage: quarantine.Stage, position: tuple[str, str] | None) -> None:
            """Check, merge and commit one staged chunk, with its cursor."""
            if first_load:  # append what passes in one scan; only a chunk with rejects is checked again
                written = raw.append(stage.conn, target, names, batch_id, stage.passing_rows())
                quarantined = stage.check(batch_id) if written < stage.rows or stage.bad_utf8 else 0
            else:  # keys are unique: duplicates within the batch were quarantined
                stage.plan_key_lookups()
                quarantined = stage.check(batch_id)
                written = merge(stage.conn, target, names, ["id"], batch_id, stage.good_rows(), distinct=False)
            stage.release_retried()
            if position is not None:
                _save_cursor(stage.conn, table, position, batch_id)
            stage.conn.commit()
            totals["read"] += stage.streamed
            totals["written"] += written
            totals["quarantined"] += quarantined
            done = min(100, round(100 * totals["read"] / expected)) if expected else 100
            read, written = totals["read"], totals["written"]
            progress(f"{table}: {done}% ({read:,} of ~{expected:,} rows read), {written:,} written, "
                     f"{totals['quarantined']:,} quarantined")  # fmt: skip

        pending = None
        for chunk in itertools.count():
            stage = stages[chunk % 2]  # its session is free: the chunk before last has committed
            stage.create()
            last = stage.copy_in(copy_rows(src, select, position), cursor=order)
            src.commit()
            keyset_rows = stage.streamed
            if chunk == 0:
                stage.copy_in(copy_rows(src, null_cursor))
                src.commit()
                stage.add_retried()
            position = last or position
            if pending is not None:
                pending.result()  # chunks commit in order; a failed one stops the load here
            pending = finisher.submit(finish, stage, last)
            if keyset_rows < chunk_rows:
                break
        pending.result()
        if first_load:
            totals["written"] -= raw.end_first_load(dst, target, ["id"], [order])
            dst.commit()
        position_text = str(position[0])
    read, written, quarantined = totals["read"], totals["written"], totals["quarantined"]
    result = LoadResult(target, read, written, batch_id, time.monotonic() - started, quarantined=quarantined)
    result.cursor = f"{position_text} / {position[1]}"
    return result
