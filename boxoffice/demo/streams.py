"""What lets the demo generator stream: COPY streams into several tables at once, compact columns for
the few facts a later pass needs, and a spill file for rows a later pass finishes.

Rows go to PostgreSQL as they are generated, so memory holds no table; 1,000,000 orders fit in a few
hundred megabytes where lists of dicts took gigabytes.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
from psycopg import sql
from psycopg.adapt import Dumper
from psycopg.postgres import types as pg_types
from psycopg.pq import Format

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
NONE_US = -(2**63)  # "no timestamp" in a column of microseconds


def to_us(ts: datetime | None) -> int:
    """Microseconds since the epoch: exact, unlike a float timestamp."""
    return NONE_US if ts is None else (ts - EPOCH) // MICROSECOND


def from_us(us: int) -> datetime | None:
    return None if us == NONE_US else EPOCH + timedelta(microseconds=us)


class InetTextBinaryDumper(Dumper):
    """An address written as text ('192.0.2.1') in inet's binary form: family, bits, is_cidr, length, bytes."""

    format = Format.BINARY
    oid = pg_types.get("inet").oid

    def dump(self, obj: str) -> bytes:
        if ":" not in obj:
            return b"\x02\x20\x00\x04" + socket.inet_aton(obj)
        return b"\x03\x80\x00\x10" + ipaddress.IPv6Address(obj).packed


class JsonbBinaryDumper(Dumper):
    """A document in jsonb's binary form (version 1, then its text): a str is taken as JSON text already
    written, anything else is written by orjson (the standard library's json was about a quarter of writing
    the Mollie sandbox)."""

    format = Format.BINARY
    oid = pg_types.get("jsonb").oid

    def dump(self, obj) -> bytes:
        return b"\x01" + (obj.encode() if isinstance(obj, str) else orjson.dumps(obj))


# the type each column's values are sent as, in COPY's binary format (what PostgreSQL parses fastest: a row
# costs a fifth of the text format's formatting here); text is received by text, varchar and char alike
BINARY_TYPE = {
    "bigint": "int8",
    "integer": "int4",
    "smallint": "int2",
    "boolean": "bool",
    "text": "text",
    "character": "text",
    "character varying": "text",
    "timestamp with time zone": "timestamptz",
    "inet": "inet",
    "jsonb": "jsonb",
}


def binary_types(conn: psycopg.Connection, table: str, columns: Sequence[str]) -> list[str]:
    """The binary COPY type of each of `columns` of `table` (on the connection's search path)."""
    rows = conn.execute(
        "select attname, format_type(atttypid, null) from pg_attribute"
        " where attrelid = %s::regclass and attnum > 0 and not attisdropped",
        (table,),
    ).fetchall()
    declared = dict(rows)
    unknown = sorted({declared[c] for c in columns} - BINARY_TYPE.keys())
    if unknown:
        raise ValueError(f"{table}: no binary COPY type for {', '.join(unknown)}")
    return [BINARY_TYPE[declared[c]] for c in columns]


class TableCopy:
    """`COPY table (columns) FROM STDIN` in binary format over a connection of its own, so several tables
    stream at once. Text columns of type inet and jsonb take their values as text.

    The COPY starts at the first row; `commit()` ends it (a later row starts another), and `close()`
    commits for good. Nothing is visible to other sessions before a commit."""

    def __init__(self, dsn: str, schema: str, table: str, columns: Sequence[str]):
        self.conn = psycopg.connect(dsn)
        self.conn.execute(sql.SQL("set search_path to {}").format(sql.Identifier(schema)))
        for dumper in (InetTextBinaryDumper, JsonbBinaryDumper):
            self.conn.adapters.register_dumper(None, dumper)
        self.types = binary_types(self.conn, table, columns)
        self.statement = sql.SQL("copy {} ({}) from stdin (format binary)").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        self.rows = 0
        self._copy = self._context = None

    def write(self, row: Sequence) -> None:
        if self._copy is None:
            self._context = self.conn.cursor().copy(self.statement)
            self._copy = self._context.__enter__()
            self._copy.set_types(self.types)
        self._copy.write_row(row)
        self.rows += 1

    def commit(self) -> psycopg.Connection:
        if self._context is not None:
            self._context.__exit__(None, None, None)
            self._copy = self._context = None
        self.conn.commit()
        return self.conn

    def close(self) -> None:
        try:
            self.commit()
        finally:
            self.conn.close()

    def abort(self) -> None:
        self.conn.close()


class Spill:
    """Fixed-layout records in a temporary file, read back in the order written."""

    def __init__(self, layout: str):
        self.record = struct.Struct(layout)
        self.file = tempfile.TemporaryFile(prefix="boxoffice-demo-")  # noqa: SIM115 (closed by close())

    def write(self, *values) -> None:
        self.file.write(self.record.pack(*values))

    def __iter__(self) -> Iterator[tuple]:
        self.file.seek(0)
        while chunk := self.file.read(self.record.size * 8192):
            yield from self.record.iter_unpack(chunk)

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Codes:
    """A text column stored as one byte per row: the index of its value in a fixed vocabulary."""

    def __init__(self, values: Sequence[str | None]):
        self.values = tuple(values)
        self.code = {v: i for i, v in enumerate(self.values)}
        self.column = bytearray()

    def append(self, value: str | None) -> None:
        self.column.append(self.code[value])

    def __getitem__(self, i: int) -> str | None:
        return self.values[self.column[i]]

    def __setitem__(self, i: int, value: str | None) -> None:
        self.column[i] = self.code[value]

    def __len__(self) -> int:
        return len(self.column)
