"""Rows that break the source contract go to raw._quarantine with the table, key, raw row and reason.

A chunk is staged (as text where the source's type is not the contract's, so no value can fail the
COPY), checked with set-based SQL in one scan (foreign keys as hash joins to the loaded parents), and
only the good rows are cast and merged. Rows whose
bytes are not UTF-8 are caught in the COPY stream before they reach the warehouse. Quarantined
orphans are re-checked on every run; a held key is released once a version of its row passes (fixed at
the source, or its parent arrived) or once the row is gone from the source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cached_property

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from extract import contract
from extract.raw import RAW_SCHEMA, write_blocks

TABLE = "_quarantine"
SMALL_CHUNK_ROWS = 50_000  # a chunk this small checks its foreign keys by index lookups
# A timestamp as text must end in a time with its zone: "2026-10-01 10:00:00+00", "...T10:00Z", "... 10:00 +02:00"
ZONED_TIMESTAMP = r"[0-9]:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)? ?([+-][0-9]{2}(:?[0-9]{2})?|Z)$"


# pg_input_is_valid is new in PostgreSQL 16; on 15 a temp function of the session answers the same question
# by trying the cast (slower, a subtransaction a value, but only loose sources' text columns need it).
PG15_INPUT_IS_VALID = """
create or replace function pg_temp.input_is_valid(value text, type_name text) returns boolean
language plpgsql strict stable as $$
begin
    execute format('select cast(%L as %s)', value, type_name);
    return true;
exception when others then
    return false;
end $$"""


def input_is_valid(conn: psycopg.Connection) -> Callable[[sql.Composable, str], sql.Composable]:
    """`valid(value, type)`: SQL that is true when the text `value` casts to `type` (null for null)."""
    if conn.info.server_version >= 160000:
        function = sql.SQL("pg_input_is_valid")
    else:
        conn.execute(PG15_INPUT_IS_VALID)
        function = sql.SQL("pg_temp.input_is_valid")
    return lambda value, type_: sql.SQL("{}({}, {})").format(function, value, sql.Literal(type_))


def ensure_table(conn: psycopg.Connection) -> None:
    conn.execute(
        sql.SQL(
            "create table if not exists {} (id bigserial primary key, source_table text not null, record_key text, "
            "record jsonb not null, reason text not null, batch_id text not null, "
            "quarantined_at timestamptz not null default now(), released_at timestamptz, "
            "fingerprint text generated always as (md5(source_table || coalesce(record_key, '') || reason "
            "|| record::text)) stored unique)"
        ).format(sql.Identifier(RAW_SCHEMA, TABLE))
    )


def held(conn: psycopg.Connection, table: str) -> int:
    """Rows of a platform table held in quarantine now (by key; a row may break several rules)."""
    if conn.execute("select to_regclass(%s)", (f"{RAW_SCHEMA}.{TABLE}",)).fetchone()[0] is None:
        return 0
    return conn.execute(
        sql.SQL("select count(distinct record_key) from {} where source_table = %s and released_at is null").format(
            _ident(RAW_SCHEMA, TABLE)
        ),
        (table,),
    ).fetchone()[0]


def release_gone(conn: psycopg.Connection, source: psycopg.Connection, schema: str, table: str) -> int:
    """Release the held keys whose row no longer exists at the source (deleted or re-keyed there)."""
    q = _ident(RAW_SCHEMA, TABLE)
    held_sql = sql.SQL("select distinct record_key from {} where source_table = %s and released_at is null")
    held_keys = [k for (k,) in conn.execute(held_sql.format(q), (table,))]
    if not held_keys:
        return 0
    source_table = _ident(schema, table)
    keyed = [k for k in held_keys if k is not None]
    present_sql = sql.SQL("select id::text from {} where id::text = any(%s)").format(source_table)
    present: set[str | None] = {k for (k,) in source.execute(present_sql, (keyed,))}
    null_sql = sql.SQL("select exists (select 1 from {} where id is null)").format(source_table)
    if None in held_keys and source.execute(null_sql).fetchone()[0]:
        present.add(None)
    gone = [k for k in held_keys if k not in present]
    if not gone:
        return 0
    release = sql.SQL(
        "update {} set released_at = now() where source_table = %s and released_at is null "
        "and (record_key = any(%s) or (record_key is null and %s))"
    ).format(q)
    return conn.execute(release, (table, [k for k in gone if k is not None], None in gone)).rowcount


def _ident(*parts: str) -> sql.Identifier:
    return sql.Identifier(*parts)


class Stage:
    """One chunk of one platform table, staged and checked against the contract.

    A column is staged in the source's own type when that already is the contract's type (no value can
    break it, and no cast is needed later); otherwise as text, so the checks see every value.
    """

    def __init__(
        self,
        conn: psycopg.Connection,
        table: str,
        target: str,
        columns: list[tuple[str, str]],
        source_types: dict[str, str],
        key_is_unique: bool,
        source_is_utf8: bool = False,
    ):
        self.conn = conn
        self.table = table
        self.target = target
        self.columns = columns  # (name, raw type)
        self.names = [n for n, _ in columns]
        self.typed = {n: source_types.get(n) == t for n, t in columns}
        self.staged_as = {n: t if self.typed[n] else "text" for n, t in columns}
        self.key_is_unique = key_is_unique
        self.source_is_utf8 = source_is_utf8
        self.stage = _ident(f"stage_{target}")
        self.bad = _ident(f"bad_{target}")
        self.streamed = self.retried = 0
        self.bad_utf8: list[bytes] = []

    def create(self) -> None:
        cols = sql.SQL(", ").join(sql.SQL("{} {}").format(_ident(n), sql.SQL(t)) for n, t in self.staged_as.items())
        self.conn.execute(sql.SQL("create temp table {} ({}) on commit drop").format(self.stage, cols))
        self.conn.execute(sql.SQL("create temp table {} (row_ctid tid, reason text) on commit drop").format(self.bad))
        self.streamed = self.retried = 0
        self.bad_utf8 = []

    @property
    def binary(self) -> bool:
        """Binary COPY skips formatting and parsing every value, but needs every column in its own type
        and a source whose text is known to be UTF-8."""
        return self.source_is_utf8 and all(self.typed.values())

    def copy_in(self, rows_in: Iterable, cursor: str | None = None) -> tuple[str, str] | None:
        """Stream the rows of a COPY TO STDOUT (see raw.copy_rows) into the stage; returns the last row's
        (`cursor`, id), as text.

        A UTF8 source cannot send invalid UTF-8, so its rows pass straight through; any other source
        (SQL_ASCII accepts any byte) is checked a block at a time."""
        statement = sql.SQL("copy {} ({}) from stdin {}").format(
            self.stage, sql.SQL(", ").join(map(_ident, self.names)), sql.SQL("(format binary)" if self.binary else "")
        )
        with self.conn.cursor().copy(statement) as into:
            rows, last = write_blocks(rows_in, into, None if self.source_is_utf8 else self._utf8_only)
        self.streamed += rows - (self.binary and rows > 0)  # binary: the trailer is an item too
        if last is None or cursor is None:
            return None
        if self.binary:  # the keyset's last row is the stage's greatest (cursor, id)
            row = self.conn.execute(
                sql.SQL("select {c}::text, id::text from {s} order by {c} desc, id desc limit 1").format(
                    c=_ident(cursor), s=self.stage
                )
            ).fetchone()
            return row[0], row[1]
        fields = bytes(last).rstrip(b"\n").decode("utf-8", errors="replace").split("\t")
        return fields[self.names.index(cursor)], fields[self.names.index("id")]

    def _utf8_only(self, block: list) -> list:
        """The rows of a block that are valid UTF-8; the others are set aside for the quarantine."""
        try:
            b"".join(block).decode("utf-8")
            return block
        except UnicodeDecodeError:  # rare: find the offending rows, pass the rest
            good = []
            for row in map(bytes, block):
                try:
                    row.decode("utf-8")
                    good.append(row)
                except UnicodeDecodeError:
                    self.bad_utf8.append(row)
            return good

    def plan_key_lookups(self) -> None:
        """Give the planner what it needs for a chunk's foreign-key checks: a temp table has no statistics,
        so without them a small chunk hashes the whole parent table instead of looking its keys up in raw's
        (cached) indexes. Lasts for the chunk's transaction."""
        self.conn.execute(sql.SQL("analyze {}").format(self.stage))
        if self.rows < SMALL_CHUNK_ROWS:
            self.conn.execute("set local random_page_cost = 1.1")

    def add_retried(self) -> None:
        """Re-stage the quarantined orphans of this table whose key is not in this chunk already."""
        cols = sql.SQL(", ").join(map(_ident, self.names))
        values = sql.SQL(", ").join(
            sql.SQL("cast(q.record->>{} as {})").format(sql.Literal(n), sql.SQL(t)) for n, t in self.staged_as.items()
        )
        self.retried = self.conn.execute(
            sql.SQL(
                "insert into {stage} ({cols}) select {values} from {q} as q where q.source_table = %s "
                "and q.released_at is null and q.reason like 'orphan%%' "
                "and not exists (select 1 from {stage} as s where s.id::text = q.record_key)"
            ).format(stage=self.stage, cols=cols, values=values, q=_ident(RAW_SCHEMA, TABLE)),
            (self.table,),
        ).rowcount

    @property
    def rows(self) -> int:
        """Rows in the stage: those streamed in and the re-staged orphans."""
        return self.streamed + self.retried

    def release_passed(self) -> None:
        """Release what is held of every key that passed in this chunk: the source row was fixed (or its
        parent arrived), and its good version is now in raw. A key held for a newer, bad version stays held."""
        self.conn.execute(
            sql.SQL(
                "update {q} as q set released_at = now() where q.source_table = %s and q.released_at is null "
                "and exists (select 1 from {stage} as s where s.id::text = q.record_key "
                "and not exists (select 1 from {bad} as b where b.row_ctid = s.ctid))"
            ).format(q=_ident(RAW_SCHEMA, TABLE), stage=self.stage, bad=self.bad),
            (self.table,),
        )

    # -- the checks ------------------------------------------------------------------------------------
    @cached_property
    def rules(self) -> tuple[list[sql.Composable], list[sql.Composable]]:
        """CASE branches, first match wins, and the parent joins they need. Checks that the staged types
        already guarantee are left out: a well-typed source pays only for the business rules."""
        valid = input_is_valid(self.conn)
        orphans, joins = self._foreign_key_rules(valid)
        rules = [*self._key_rules(valid), *self._value_rules(valid), *orphans]
        return [sql.SQL("when {} then {}").format(cond, reason) for cond, reason in rules], joins

    def _col(self, column: str) -> sql.Composable:
        return sql.SQL("s.{}").format(_ident(column))

    def _key_rules(self, valid) -> list[tuple[sql.Composable, sql.Composable]]:
        rules = [(sql.SQL("s.id is null"), sql.Literal("null key"))]
        if self.staged_as["id"] == "text":
            rules.append((sql.SQL("not {}").format(valid(self._col("id"), "bigint")), sql.Literal("malformed key")))
        if not self.key_is_unique:
            duplicated = sql.SQL("s.id in (select id from {} group by id having count(*) > 1)").format(self.stage)
            rules.append((duplicated, sql.Literal("duplicate key in batch")))
        return rules

    def _value_rules(self, valid) -> list[tuple[sql.Composable, sql.Composable]]:
        table, s = self.table, self._col
        missing = [(c, sql.SQL("{} is null").format(s(c))) for c in contract.NOT_NULL[table]]
        rules = [(cond, sql.Literal(f"missing required value: {c}")) for c, cond in missing]
        amounts = contract.AMOUNTS.get(table, [])
        for col, type_ in self.columns:  # only text-staged contract columns can hold a value of the wrong type
            if col not in contract.COLUMNS[table] or type_ == "text" or self.staged_as[col] != "text":
                continue
            label = "malformed amount" if col in amounts else "malformed value"
            rules.append((sql.SQL("not {}").format(valid(s(col), type_)), sql.Literal(f"{label}: {col}")))
            if type_ == contract.TS:
                zoned = sql.SQL("{} !~ {}").format(s(col), sql.Literal(ZONED_TIMESTAMP))
                rules.append((zoned, sql.Literal(f"timestamp without zone: {col}")))
        for col in amounts:
            rules.append((sql.SQL("{}::bigint < 0").format(s(col)), sql.Literal(f"negative amount: {col}")))
        for col in contract.CURRENCY_COLUMNS.get(table, []):
            unknown = sql.SQL("upper({}) <> all({})").format(s(col), sql.Literal(contract.CURRENCIES))
            rules.append((unknown, sql.SQL("'unknown currency: ' || {}").format(s(col))))
        for col, allowed in ((c, a) for (t, c), a in contract.STATUSES.items() if t == table):
            unknown = sql.SQL("{} <> all({})").format(s(col), sql.Literal(allowed))
            rules.append(
                (unknown, sql.SQL("'unknown status: ' || {} || ' in ' || {}").format(s(col), sql.Literal(col)))
            )
        for columns, condition, reason in contract.ROW_RULES.get(table, []):
            values = {c: sql.SQL("cast({} as bigint)").format(s(c)) for c in columns}
            rules.append((sql.SQL("not (" + condition + ")").format(**values), sql.Literal(reason)))
        for col, limit in contract.MAX_PAYLOAD_BYTES.get(table, {}).items():
            oversized = sql.SQL("octet_length({}::text) > {}").format(s(col), sql.Literal(limit))
            rules.append((oversized, sql.Literal(f"oversized payload: {col} over {limit} bytes")))
        return rules

    def _foreign_key_rules(self, valid) -> tuple[list[tuple[sql.Composable, sql.Composable]], list[sql.Composable]]:
        """Orphan rules and their joins to the loaded parents (hash joins, or index lookups for small chunks)."""
        rules, joins = [], []
        for i, (col, parent) in enumerate(contract.FOREIGN_KEYS.get(self.table, [])):
            parent_raw = f"platform_{parent}"
            if not self.conn.execute("select to_regclass(%s)", (f"{RAW_SCHEMA}.{parent_raw}",)).fetchone()[0]:
                continue  # the parent was never loaded: nothing to check against
            alias = sql.Identifier(f"p{i}")
            value = self._col(col)
            if self.staged_as[col] == "text":  # a malformed value is its own rule; it must not break the join
                value = sql.SQL("case when {ok} then {v}::bigint end").format(ok=valid(value, "bigint"), v=value)
            join = sql.SQL("left join {parent} as {a} on {a}.id = {v}")
            joins.append(join.format(parent=_ident(RAW_SCHEMA, parent_raw), a=alias, v=value))
            orphan = sql.SQL("{} is not null and {}.id is null").format(self._col(col), alias)
            rules.append((orphan, sql.Literal(f"orphan foreign key: {col} -> {parent}")))
        return rules, joins

    def check(self, batch_id: str) -> int:
        """One scan finds the rows that break a rule; they are copied to the quarantine. Returns how many."""
        branches, joins = self.rules  # built once per load, not per chunk
        self.conn.execute(
            sql.SQL(
                "insert into {bad} select row_ctid, reason from (select s.ctid as row_ctid, case {branches} end "
                "as reason from {stage} as s {joins}) as r where reason is not null"
            ).format(
                bad=self.bad, branches=sql.SQL(" ").join(branches), stage=self.stage, joins=sql.SQL(" ").join(joins)
            )
        )
        q = _ident(RAW_SCHEMA, TABLE)
        self.conn.execute(
            sql.SQL(
                "insert into {q} (source_table, record_key, record, reason, batch_id) "
                "select %s, s.id::text, to_jsonb(s), b.reason, %s from {bad} as b "
                "join {stage} as s on s.ctid = b.row_ctid on conflict (fingerprint) do nothing"
            ).format(q=q, stage=self.stage, bad=self.bad),
            (self.table, batch_id),
        )
        marked = self.conn.execute(sql.SQL("select count(*) from {}").format(self.bad)).fetchone()[0]
        for row in self.bad_utf8:
            fields = row.rstrip(b"\n").split(b"\t")
            record = {"raw_bytes_escaped": row.decode("utf-8", errors="backslashreplace")}
            self.conn.execute(
                sql.SQL(
                    "insert into {} (source_table, record_key, record, reason, batch_id) values (%s, %s, %s, %s, %s) "
                    "on conflict (fingerprint) do nothing"
                ).format(q),
                (self.table, fields[0].decode("ascii", errors="replace"), Jsonb(record), "invalid UTF-8", batch_id),
            )
        return marked + len(self.bad_utf8)

    def _casts(self) -> sql.Composable:
        """The stage's columns cast to raw's types (a no-op for columns staged in their own type)."""
        return sql.SQL(", ").join(
            sql.SQL("cast(s.{c} as {t}) as {c}").format(c=_ident(c), t=sql.SQL(t))
            if self.staged_as[c] == "text"
            else sql.SQL("s.{c}").format(c=_ident(c))
            for c, t in self.columns
        )

    def good_rows(self) -> sql.Composable:
        """The rows `check` did not quarantine, cast to raw's types."""
        return sql.SQL(
            "select {} from {} as s where not exists (select 1 from {} as b where b.row_ctid = s.ctid)"
        ).format(self._casts(), self.stage, self.bad)

    def passing_rows(self) -> sql.Composable:
        """The rows no rule rejects, found in the same scan that reads them (no `check` needed first).
        When they are all the stage holds, nothing is left to quarantine."""
        branches, joins = self.rules
        return sql.SQL("select {} from {} as s {} where (case {} end) is null").format(
            self._casts(), self.stage, sql.SQL(" ").join(joins), sql.SQL(" ").join(branches)
        )
