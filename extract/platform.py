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
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from extract.raw import RAW_SCHEMA, LoadResult, ensure_table, merge_staged, staged

STATE_TABLE = "_extract_cursors"
DEFAULT_LOOKBACK = timedelta(minutes=15)
DEFAULT_CHUNK_ROWS = 500_000
MIN_ID = -(2**63)

# The source contract (extract/source_contract.sql): the columns each table must have.
CONTRACT: dict[str, list[str]] = {
    "organizations": ["id", "name", "status", "created_at", "updated_at"],
    "events": ["id", "organization_id", "name", "status", "starts_at", "ends_at", "created_at", "updated_at"],
    "customers": ["id", "email", "signup_ip", "created_at", "updated_at"],
    "orders": ["id", "order_number", "organization_id", "event_id", "customer_id", "buyer_email", "buyer_ip",
               "status", "currency", "tickets_amount_cents", "service_fee_cents", "platform_fee_cents",
               "total_cents", "ticket_count", "created_at", "paid_at", "updated_at"],
    "tickets": ["id", "order_id", "event_id", "ticket_type", "price_cents", "qr_code", "status", "created_at",
                "updated_at"],
    "payments": ["id", "order_id", "mollie_payment_id", "status", "method", "amount_cents", "currency",
                 "failure_reason", "created_at", "paid_at", "updated_at"],
    "refunds": ["id", "payment_id", "mollie_refund_id", "amount_cents", "reason", "status", "initiated_by",
                "created_at", "updated_at"],
    "webhook_deliveries": ["id", "webhook_id", "event_type", "organization_id", "payload", "attempt",
                           "max_attempts", "status", "response_status", "last_error", "next_retry_at",
                           "created_at", "updated_at"],
    "scans": ["id", "ticket_id", "event_id", "qr_code", "device_id", "result", "scanned_at", "created_at"],
}  # fmt: skip
TABLES = list(CONTRACT)


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
    missing = [c for c in CONTRACT[table] if c not in {name for name, _ in rows}]
    if missing:
        raise ContractError(f"source table {schema}.{table} lacks required column(s): {', '.join(missing)}")
    return [(name, type_) for name, type_ in rows]


def cursor_column(table: str) -> str:
    """Scans are append-only (no updated_at): they are read by created_at."""
    return "created_at" if table == "scans" else "updated_at"


def ensure_state(conn: psycopg.Connection) -> None:
    conn.execute(
        sql.SQL(
            "create table if not exists {} (source_table text primary key, cursor_value timestamptz not null, "
            "cursor_id bigint not null, batch_id text not null, committed_at timestamptz not null default now())"
        ).format(sql.Identifier(RAW_SCHEMA, STATE_TABLE))
    )


def read_cursor(conn: psycopg.Connection, table: str) -> tuple[datetime, int] | None:
    row = conn.execute(
        sql.SQL("select cursor_value, cursor_id from {} where source_table = %s").format(
            sql.Identifier(RAW_SCHEMA, STATE_TABLE)
        ),
        (table,),
    ).fetchone()
    return (row[0], row[1]) if row else None


def _save_cursor(conn: psycopg.Connection, table: str, position: tuple[datetime, int], batch_id: str) -> None:
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

    Each chunk is staged with COPY, merged, and its cursor saved in one warehouse transaction, so a
    run killed at any point resumes where the last chunk committed, and re-read rows merge as no-ops.
    """
    started = time.monotonic()
    target = raw_table(table)
    order = cursor_column(table)
    read = written = chunks = 0
    with psycopg.connect(source_dsn) as src, psycopg.connect(warehouse_dsn) as dst:
        columns = source_columns(src, schema, table)
        names = [n for n, _ in columns]
        ensure_table(dst, target, columns, ["id"])
        ensure_state(dst)
        dst.commit()
        saved = None if full_refresh else read_cursor(dst, table)
        position = (saved[0] - lookback, MIN_ID) if saved else (datetime(1, 1, 1, tzinfo=UTC), MIN_ID)
        select = sql.SQL(
            "copy (select {cols} from {table} where ({order}, id) > (%s, %s) order by {order}, id limit {n}) to stdout"
        ).format(
            cols=sql.SQL(", ").join(map(sql.Identifier, names)),
            table=sql.Identifier(schema, table),
            order=sql.Identifier(order),
            n=sql.Literal(chunk_rows),
        )
        while True:
            with src.cursor().copy(select, position) as out, staged(dst, target, names) as into:
                for data in out:
                    into.write(data)
            src.commit()
            chunk_read, chunk_written = merge_staged(dst, target, names, ["id"], batch_id)
            if chunk_read:
                last = dst.execute(
                    sql.SQL("select {o}, id from {s} order by {o} desc, id desc limit 1").format(
                        o=sql.Identifier(order), s=sql.Identifier(f"stage_{target}")
                    )
                ).fetchone()
                position = (last[0], last[1])
                _save_cursor(dst, table, position if not saved else max(position, saved), batch_id)
            dst.commit()
            chunks += 1
            read += chunk_read
            written += chunk_written
            progress(f"{table}: chunk {chunks}, {read:,} rows read, {written:,} written")
            if chunk_read < chunk_rows:
                break
    result = LoadResult(target, read, written, batch_id, time.monotonic() - started)
    result.cursor = f"{position[0].isoformat()} / {position[1]}"
    return result
