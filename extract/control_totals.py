"""Control totals: the source's row count and money sum, recorded when a table is extracted, beside raw's.

A GX check later proves raw kept them (and staging and the marts after it): nothing lost, nothing
fanned out. The source is counted in the same breath as raw, right after the load, so a change in
between is the only way they can differ (and it shows as a difference, never silently).
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from extract import contract, quarantine
from extract.raw import RAW_SCHEMA

TABLE = "_control_totals"


def amount_column(table: str) -> str | None:
    """The money column a table's control sum is taken over (the total the buyer pays, for orders)."""
    amounts = contract.AMOUNTS.get(table, [])
    return "total_cents" if "total_cents" in amounts else (amounts[0] if amounts else None)


def record(source_dsn: str, schema: str, warehouse_dsn: str, table: str, raw_table: str, batch_id: str) -> dict:
    column = amount_column(table)
    total = sql.SQL("coalesce(sum({}), 0)").format(sql.Identifier(column)) if column else sql.SQL("0")

    def count(table_ident: sql.Identifier) -> sql.Composed:
        return sql.SQL("select count(*), {} from {}").format(total, table_ident)

    with psycopg.connect(source_dsn) as src:
        source_rows, source_sum = src.execute(count(sql.Identifier(schema, table))).fetchone()
    with psycopg.connect(warehouse_dsn) as dst:
        dst.execute(sql.SQL(
            "create table if not exists {} (source_table text not null, raw_table text not null, "
            "batch_id text not null, measured_at timestamptz not null default now(), amount_column text, "
            "source_rows bigint not null, source_amount_cents numeric not null, raw_rows bigint not null, "
            "raw_amount_cents numeric not null, quarantined_rows bigint not null)"
        ).format(sql.Identifier(RAW_SCHEMA, TABLE)))  # fmt: skip
        raw_rows, raw_sum = dst.execute(count(sql.Identifier(RAW_SCHEMA, raw_table))).fetchone()
        quarantined = quarantine.held(dst, table)
        values = {"source_table": table, "raw_table": raw_table, "batch_id": batch_id, "amount_column": column,
                  "source_rows": source_rows, "source_amount_cents": source_sum, "raw_rows": raw_rows,
                  "raw_amount_cents": raw_sum, "quarantined_rows": quarantined}  # fmt: skip
        dst.execute(
            sql.SQL("insert into {} ({}) values ({})").format(
                sql.Identifier(RAW_SCHEMA, TABLE),
                sql.SQL(", ").join(map(sql.Identifier, values)),
                sql.SQL(", ").join(sql.Placeholder() * len(values)),
            ),
            list(values.values()),
        )
    return values
