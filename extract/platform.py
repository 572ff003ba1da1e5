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
# A source clock this far ahead of its own now() is a row dated in the future, not clock skew.
FUTURE_ALLOWANCE = timedelta(minutes=5)

TABLES = contract.LOAD_ORDER


class ContractError(Exception):
    """The source table does not satisfy the contract."""


def raw_table(table: str) -> str:
    return f"platform_{table}"


def raw_indexes(table: str) -> list[str]:
    """What raw.platform_<table> is indexed on besides its key: when rows were loaded (for incremental
    models), its foreign keys and lookup columns (for the joins that find what a change touches)."""
    foreign = [column for column, _ in contract.FOREIGN_KEYS.get(table, [])]
    return ["_loaded_at", *foreign, *contract.LOOKUP_COLUMNS.get(table, [])]


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
    still commit strictly in order, so the saved cursor never passes an uncommitted chunk. The saved
    cursor never passes the source's clock either: a row dated in the future is loaded and counted, and
    cannot hide the changes that come after it.
    """
    started = time.monotonic()
    with (
        psycopg.connect(source_dsn) as src,
        psycopg.connect(warehouse_dsn) as dst,
        psycopg.connect(warehouse_dsn) as dst2,
        ThreadPoolExecutor(max_workers=1) as finisher,
    ):
        load = _TableLoad(src, (dst, dst2), schema, table, batch_id, progress)
        load.prepare(full_refresh, lookback, chunk_rows)
        load.run(finisher, chunk_rows)
        load.settle()
    return load.result(time.monotonic() - started)


class _TableLoad:
    """One table's load: what to read, the chunks, and what is settled at the end."""

    def __init__(self, src, sessions, schema: str, table: str, batch_id: str, progress: Callable[[str], None]):
        self.src, self.sessions = src, sessions
        self.schema, self.table, self.batch_id, self.progress = schema, table, batch_id, progress
        self.target = raw_table(table)
        self.order = cursor_column(table)
        self.totals = {"read": 0, "written": 0, "quarantined": 0}
        self.rows_in_future = 0

    def prepare(self, full_refresh: bool, lookback: timedelta, chunk_rows: int) -> None:
        src, dst = self.src, self.sessions[0]
        for conn in self.sessions:
            conn.execute("set temp_buffers = '512MB'")  # keep a chunk's stage in memory (before any temp table)
            conn.execute("set work_mem = '256MB'")  # the foreign-key checks hash a chunk without spilling to disk
        source = source_columns(src, self.schema, self.table)
        self.columns = raw_columns(self.table, source)
        self.names = [n for n, _ in self.columns]
        self.types = dict(source)
        ensure_table(dst, self.target, self.columns, ["id"])
        ensure_state(dst)
        quarantine.ensure_table(dst)
        self.first_load = raw.begin_first_load(dst, self.target)
        dst.commit()
        saved = None if full_refresh else read_cursor(dst, self.table)
        self.position = (_minus(saved[0], lookback), MIN_ID) if saved else ("0001-01-01 00:00:00+00", MIN_ID)
        self.source_now = src.execute("select now()").fetchone()[0]
        utf8 = src.execute("show server_encoding").fetchone()[0] == "UTF8"
        unique = key_is_unique(src, self.schema, self.table)
        self.stages = [
            quarantine.Stage(c, self.table, self.target, self.columns, self.types, unique, utf8) for c in self.sessions
        ]
        self._statements(chunk_rows)
        self.expected = self._expected(whole_table=saved is None)
        src.commit()

    def _statements(self, chunk_rows: int) -> None:
        parts = {
            "cols": sql.SQL(", ").join(map(sql.Identifier, self.names)),
            "table": sql.Identifier(self.schema, self.table),
            "order": sql.Identifier(self.order),
            "format": sql.SQL("(format binary)" if self.stages[0].binary else ""),
        }
        # The cursor is compared in the source column's own type (a loose source may keep it as text).
        self.after = sql.SQL("({order}, id) > (cast(%s as {otype}), cast(%s as {itype}))").format(
            **parts, otype=sql.SQL(self.types[self.order]), itype=sql.SQL(self.types["id"])
        )
        select = "copy (select {cols} from {table} where {after} order by {order}, id limit {n}) to stdout {format}"
        self.select = sql.SQL(select).format(**parts, after=self.after, n=sql.Literal(chunk_rows))
        # A keyset never returns rows whose cursor column is null: read them apart, so they reach the rules.
        self.null_cursor = sql.SQL("copy (select {cols} from {table} where {order} is null) to stdout {format}")
        self.null_cursor = self.null_cursor.format(**parts)

    def _expected(self, whole_table: bool) -> int:
        """For progress: a whole-table read takes the planner's estimate (a count would read it once more)."""
        table = sql.Identifier(self.schema, self.table)
        if whole_table:
            estimate = self.src.execute(
                "select reltuples::bigint from pg_class where oid = %s::regclass", (table.as_string(self.src),)
            ).fetchone()[0]
            if estimate >= 0:
                return estimate
        count = sql.SQL("select count(*) from {} where {}").format(table, self.after)
        return self.src.execute(count, self.position).fetchone()[0]

    def run(self, finisher: ThreadPoolExecutor, chunk_rows: int) -> None:
        pending = None
        for chunk in itertools.count():
            stage = self.stages[chunk % 2]  # its session is free: the chunk before last has committed
            stage.create()
            last = stage.copy_in(copy_rows(self.src, self.select, self.position), cursor=self.order)
            self.src.commit()
            keyset_rows = stage.streamed
            if chunk == 0:
                stage.copy_in(copy_rows(self.src, self.null_cursor))
                self.src.commit()
                stage.add_retried()
            self.position = last or self.position
            if pending is not None:
                pending.result()  # chunks commit in order; a failed one stops the load here
            pending = finisher.submit(self.finish, stage, last)
            if keyset_rows < chunk_rows:
                break
        pending.result()

    def finish(self, stage: quarantine.Stage, position: tuple[str, str] | None) -> None:
        """Check, merge and commit one staged chunk, with its cursor."""
        if self.first_load:  # append what passes in one scan; only a chunk with rejects is checked again
            written = raw.append(stage.conn, self.target, self.names, self.batch_id, stage.passing_rows())
            quarantined = stage.check(self.batch_id) if written < stage.rows or stage.bad_utf8 else 0
        else:  # keys are unique: duplicates within the batch were quarantined
            stage.plan_key_lookups()
            quarantined = stage.check(self.batch_id)
            written = merge(
                stage.conn, self.target, self.names, ["id"], self.batch_id, stage.good_rows(), distinct=False
            )
        stage.release_passed()
        if position is not None:
            _save_cursor(stage.conn, self.table, self._capped(position), self.batch_id)
        stage.conn.commit()
        totals = self.totals
        totals["read"] += stage.streamed
        totals["written"] += written
        totals["quarantined"] += quarantined
        done = min(100, round(100 * totals["read"] / self.expected)) if self.expected else 100
        self.progress(
            f"{self.table}: {done}% ({totals['read']:,} of ~{self.expected:,} rows read), "
            f"{totals['written']:,} written, {totals['quarantined']:,} quarantined"
        )

    def _capped(self, position: tuple[str, str]) -> tuple[str, str]:
        """The cursor to commit: never past the source's now(), so a row dated in the future (a wrong clock,
        a typo) is re-read each run instead of hiding every change made after it."""
        try:
            at = datetime.fromisoformat(position[0])
        except ValueError:
            return position
        if at.tzinfo is not None and at > self.source_now:
            return self.source_now.isoformat(), MIN_ID
        return position

    def settle(self) -> None:
        """After the last chunk: the key of a first load, held keys whose row is gone, rows dated ahead."""
        dst = self.sessions[0]
        if self.first_load:
            self.totals["written"] -= raw.end_first_load(dst, self.target, ["id"], [self.order])
        raw.ensure_indexes(dst, self.target, raw_indexes(self.table))
        quarantine.release_gone(dst, self.src, self.schema, self.table)
        if self.totals["written"]:
            raw.analyze(dst, self.target)
        dst.commit()
        if self.types[self.order] in (contract.TS, "timestamp without time zone"):
            ahead = sql.SQL("select count(*) from {} where {} > now() + %s").format(
                sql.Identifier(self.schema, self.table), sql.Identifier(self.order)
            )
            self.rows_in_future = self.src.execute(ahead, (FUTURE_ALLOWANCE,)).fetchone()[0]
            self.src.commit()
        if self.rows_in_future:
            self.progress(self.future_message)

    @property
    def future_message(self) -> str:
        n = self.rows_in_future
        rows, have = ("row", "has") if n == 1 else ("rows", "have")
        return f"{n:,} {rows} in {self.table} {have} {self.order} in the future"

    def result(self, seconds: float) -> LoadResult:
        t = self.totals
        result = LoadResult(self.target, t["read"], t["written"], self.batch_id, seconds, quarantined=t["quarantined"])
        result.cursor = f"{self.position[0]} / {self.position[1]}"
        result.rows_in_future = self.rows_in_future
        result.rows_in_future_note = self.future_message
        return result
