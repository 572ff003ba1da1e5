"""The platform's PostgreSQL tables -> raw.platform_<table>.

Incremental by cursor: rows are read by (updated_at, id) (scans by (created_at, id)) from the last
committed cursor minus a look-back window for late commits, in keyset-ordered chunks. Each chunk
streams with COPY from the source into a temp table in the warehouse and is merged by primary key
together with its cursor, so memory stays flat, unchanged rows are not rewritten, and a crashed run
resumes where it stopped. Columns the source has beyond the
contract are carried into raw; a missing contract column stops that table with an error naming it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from extract import contract, quarantine
from extract.raw import RAW_SCHEMA, LoadResult, ensure_table, merge

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

    Each chunk is staged as text with COPY, checked against the contract (bad rows to raw._quarantine
    with a reason), merged, and its cursor saved, in one warehouse transaction: a run killed at any
    point resumes where the last chunk committed, and re-read rows merge as no-ops.
    """
    started = time.monotonic()
    target = raw_table(table)
    order = cursor_column(table)
    read = written = quarantined = chunks = 0
    with psycopg.connect(source_dsn) as src, psycopg.connect(warehouse_dsn) as dst:
        dst.execute("set temp_buffers = '512MB'")  # keep a chunk's stage in memory (before any temp table)
        source = source_columns(src, schema, table)
        columns = raw_columns(table, source)
        names = [n for n, _ in columns]
        unique_key = key_is_unique(src, schema, table)
        ensure_table(dst, target, columns, ["id"])
        ensure_state(dst)
        quarantine.ensure_table(dst)
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
        select = sql.SQL(
            "copy (select {cols} from {table} where ({order}, id) > (cast(%s as {otype}), cast(%s as {itype})) "
            "order by {order}, id limit {n}) to stdout"
        ).format(**parts, otype=sql.SQL(types[order]), itype=sql.SQL(types["id"]), n=sql.Literal(chunk_rows))
        # A keyset never returns rows whose cursor column is null: read them apart, so they reach the rules.
        null_cursor = sql.SQL("copy (select {cols} from {table} where {order} is null) to stdout").format(**parts)
        stage = quarantine.Stage(dst, table, target, columns, dict(source), unique_key)
        while True:
            stage.create()
            with src.cursor().copy(select, position) as out:
                last_row = stage.copy_in(out)
            src.commit()
            if chunks == 0:
                before = stage.streamed
                with src.cursor().copy(null_cursor) as out:
                    stage.copy_in(out)
                src.commit()
                stage.extra = stage.streamed - before
                stage.add_retried()
            chunk_read = stage.streamed
            chunk_quarantined = stage.check(batch_id)
            # keys are unique: duplicates within the batch were quarantined
            chunk_written = merge(dst, target, names, ["id"], batch_id, stage.good_rows(), distinct=False)
            stage.release_retried()
            if last_row is not None:
                position = (last_row[names.index(order)], last_row[names.index("id")])
                _save_cursor(dst, table, position, batch_id)
            dst.commit()
            chunks += 1
            read += chunk_read
            written += chunk_written
            quarantined += chunk_quarantined
            progress(f"{table}: chunk {chunks}, {read:,} rows read, {written:,} written, {quarantined:,} quarantined")
            if stage.streamed - stage.extra < chunk_rows:
                break
        position_text = str(position[0])
    result = LoadResult(target, read, written, batch_id, time.monotonic() - started, quarantined=quarantined)
    result.cursor = f"{position_text} / {position[1]}"
    return result
