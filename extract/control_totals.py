"""Control totals: the source's row count and money sum, recorded when a table is extracted, beside raw's.

A GX check later proves raw kept them (and the marts after it): nothing lost, nothing fanned out. The
source is counted in the same breath as raw, right after the load, so a change in between is the only
way they can differ (and it shows as a difference, never silently). Rows held in quarantine now are left
out on both sides: the bad version at the source, and any older good version still in raw.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from extract import contract
from extract.quarantine import TABLE as QUARANTINE
from extract.raw import RAW_SCHEMA

TABLE = "_control_totals"
INTEGER_TYPES = ("bigint", "integer", "smallint", "numeric")
COLUMNS = (
    "source_table text not null, raw_table text not null, batch_id text not null, "
    "measured_at timestamptz not null default now(), amount_column text, source_rows bigint not null, "
    "source_amount_cents numeric not null, raw_rows bigint not null, raw_amount_cents numeric not null, "
    "quarantined_rows bigint not null, source_kept_rows bigint, raw_kept_rows bigint, "
    "source_kept_cents numeric, raw_kept_cents numeric"
)


def amount_column(table: str) -> str | None:
    """The money column a table's control sum is taken over (the total the buyer pays, for orders)."""
    amounts = contract.AMOUNTS.get(table, [])
    return "total_cents" if "total_cents" in amounts else (amounts[0] if amounts else None)


def _totals(column: str | None, column_type: str | None, held: list[str]) -> sql.Composable:
    """count(*), the sum of the money column and the same two over the rows not held (`%(held)s` keys)."""
    if column is None:
        amount = sql.SQL("0")
    elif column_type in INTEGER_TYPES:
        amount = sql.Identifier(column)
    else:  # a loose source keeps amounts as text: only well-formed ones can have been loaded
        amount = sql.SQL("case when trim({c}::text) ~ '^[-+]?[0-9]+$' then trim({c}::text)::numeric end").format(
            c=sql.Identifier(column)
        )
    # with nothing held, no row pays for the key's cast to text (a second per million rows)
    kept = sql.SQL("id is not null and not (id::text = any(%(held)s))" if held else "id is not null")
    return sql.SQL(
        "count(*), coalesce(sum({a}), 0), count(*) filter (where {k}), coalesce(sum({a}) filter (where {k}), 0)"
    ).format(a=amount, k=kept)


def _ensure_table(conn: psycopg.Connection) -> None:
    ident = sql.Identifier(RAW_SCHEMA, TABLE)
    conn.execute(sql.SQL("create table if not exists {} ({})").format(ident, sql.SQL(COLUMNS)))
    for name in (
        "source_kept_rows bigint",
        "raw_kept_rows bigint",
        "source_kept_cents numeric",
        "raw_kept_cents numeric",
    ):
        conn.execute(sql.SQL("alter table {} add column if not exists {}").format(ident, sql.SQL(name)))


def _held_keys(conn: psycopg.Connection, table: str) -> list[str]:
    held = sql.SQL(
        "select distinct record_key from {} where source_table = %s and released_at is null and record_key is not null"
    ).format(sql.Identifier(RAW_SCHEMA, QUARANTINE))
    return [k for (k,) in conn.execute(held, (table,))]


def _column_type(conn: psycopg.Connection, schema: str, table: str, column: str | None) -> str | None:
    if column is None:
        return None
    row = conn.execute(
        "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = %s::regclass and attname = %s",
        (sql.Identifier(schema, table).as_string(conn), column),
    ).fetchone()
    return row[0] if row else None


def record(source_dsn: str, schema: str, warehouse_dsn: str, table: str, raw_table: str, batch_id: str) -> dict:
    column = amount_column(table)
    with psycopg.connect(warehouse_dsn) as dst:
        _ensure_table(dst)
        held = {"held": _held_keys(dst, table)}
        with psycopg.connect(source_dsn) as src:
            totals = _totals(column, _column_type(src, schema, table, column), held["held"])
            source = src.execute(sql.SQL("select {} from {}").format(totals, sql.Identifier(schema, table)), held)
            source = source.fetchone()
        raw_totals = _totals(column, "bigint", held["held"])
        raw = dst.execute(
            sql.SQL("select {} from {}").format(raw_totals, sql.Identifier(RAW_SCHEMA, raw_table)), held
        ).fetchone()
        values = {
            "source_table": table,
            "raw_table": raw_table,
            "batch_id": batch_id,
            "amount_column": column,
            "source_rows": source[0],
            "source_amount_cents": source[1],
            "raw_rows": raw[0],
            "raw_amount_cents": raw[1],
            "quarantined_rows": source[0] - source[2],  # source rows held back: bad, orphaned, duplicated
            "source_kept_rows": source[2],
            "source_kept_cents": source[3],
            "raw_kept_rows": raw[2],
            "raw_kept_cents": raw[3],
        }
        dst.execute(
            sql.SQL("insert into {} ({}) values ({})").format(
                sql.Identifier(RAW_SCHEMA, TABLE),
                sql.SQL(", ").join(map(sql.Identifier, values)),
                sql.SQL(", ").join(sql.Placeholder() * len(values)),
            ),
            list(values.values()),
        )
    return values
