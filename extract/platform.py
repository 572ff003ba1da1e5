"""The platform's PostgreSQL tables -> raw.platform_<table>.

Rows stream with COPY from the source into a temp table in the warehouse and are merged by primary
key, so memory stays flat and unchanged rows are not rewritten. Columns the source has beyond the
contract are carried into raw; a missing contract column stops that table with an error naming it.
"""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

from extract.raw import LoadResult, ensure_table, merge_staged, staged

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


def load_table(source_dsn: str, schema: str, warehouse_dsn: str, table: str, batch_id: str) -> LoadResult:
    started = time.monotonic()
    target = raw_table(table)
    with psycopg.connect(source_dsn) as src, psycopg.connect(warehouse_dsn) as dst:
        columns = source_columns(src, schema, table)
        names = [n for n, _ in columns]
        ensure_table(dst, target, columns, ["id"])
        select = sql.SQL("copy (select {} from {}) to stdout").format(
            sql.SQL(", ").join(map(sql.Identifier, names)), sql.Identifier(schema, table)
        )
        with src.cursor().copy(select) as out, staged(dst, target, names) as into:
            for chunk in out:
                into.write(chunk)
        read, written = merge_staged(dst, target, names, ["id"], batch_id)
    return LoadResult(target, read, written, batch_id, time.monotonic() - started)
