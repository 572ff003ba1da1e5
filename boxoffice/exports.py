"""Finance's exports from the marts: the money movements of a period (`boxoffice export transactions`) and a
month's accounting journal (`boxoffice export journal`).

Rows stream from a server-side cursor into the file as they come, so memory stays flat at any size. A file is
written under a temporary name beside its target and renamed when complete: a failed or interrupted export
leaves the previous file, never a partial one.
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg import sql

from boxoffice.settings import ArgumentError

TRANSACTION_COLUMNS = (
    "booked_date",
    "booked_at_local",
    "movement_type",
    "mollie_type",
    "movement_id",
    "order_number",
    "organization_id",
    "organization_name",
    "event_id",
    "event_name",
    "payment_method",
    "buyer_key",
    "mollie_payment_id",
    "mollie_object_id",
    "gross_amount",
    "fees",
    "net_amount",
    "currency",
    "settlement_reference",
    "reconciliation_status",
)
# The plain layout accounting packages import: one row per journal line.
JOURNAL_COLUMNS = {
    "date": "entry_date",
    "entry_id": "entry_id",
    "account": "account_code",
    "account_name": "account_name",
    "debit": "debit",
    "credit": "credit",
    "currency": "currency",
    "description": "description",
    "reference": "settlement_reference",
}
TRANSACTION_FORMATS = ("csv", "json", "xlsx")
JOURNAL_FORMATS = ("csv", "xlsx")
FETCH_ROWS = 5_000
XLSX_MAX_ROWS = 1_048_576  # a worksheet's limit: more rows go on to the next sheet
# A text cell starting with one of these is a formula to a spreadsheet (OWASP: CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MONEY_FORMAT = "#,##0.00"


def is_formula_like(value) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)


@dataclass(frozen=True)
class Export:
    path: Path
    rows: int


def parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text or "") else _not_a(option, text)
    except ValueError:
        return _not_a(option, text)


def parse_month(text: str) -> date:
    try:
        return date.fromisoformat(text + "-01") if re.fullmatch(r"\d{4}-\d{2}", text or "") else _not_a("--month", text)
    except ValueError:
        return _not_a("--month", text, "YYYY-MM")


def _not_a(option: str, text: str, shape: str = "YYYY-MM-DD"):
    raise ArgumentError(f"{option} is not a date: {text!r} (expected {shape})")


def check_format(fmt: str, allowed: tuple[str, ...]) -> str:
    if fmt not in allowed:
        raise ArgumentError(f"--format must be one of {', '.join(allowed)}, not {fmt!r}")
    return fmt


def transactions(
    warehouse_dsn: str,
    start: date,
    end: date,
    organization_id: int | None,
    fmt: str,
    output: Path,
    timezone: str,
    progress: Callable[[int], None] | None = None,
) -> Export:
    """The money movements booked from `start` to `end` (local days, both included), of one organization or all."""
    check_format(fmt, TRANSACTION_FORMATS)
    if start > end:
        raise ArgumentError(f"--from ({start}) is after --to ({end})")
    query = sql.SQL(
        "select {columns} from marts.fct_money_movements "
        "where booked_at >= ({start}::timestamp at time zone {tz}) and booked_at < ({end}::timestamp at time zone {tz})"
        "{organization} order by booked_at, movement_id"
    ).format(
        columns=sql.SQL(", ").join(map(sql.Identifier, TRANSACTION_COLUMNS)),
        start=sql.Literal(start),
        end=sql.Literal(end + timedelta(days=1)),
        tz=sql.Literal(timezone),
        organization=sql.SQL("")
        if organization_id is None
        else sql.SQL(" and organization_id = {}").format(sql.Literal(organization_id)),
    )
    with psycopg.connect(warehouse_dsn) as conn:
        if organization_id is not None:
            _check_organization(conn, organization_id)
        return _write(conn, query, TRANSACTION_COLUMNS, fmt, output, "Transactions", progress)


def journal(warehouse_dsn: str, month: date, fmt: str, output: Path) -> Export:
    """The month's journal lines (entry_month = `month`), in entry and line order."""
    check_format(fmt, JOURNAL_FORMATS)
    query = sql.SQL(
        "select {columns} from marts.fct_accounting_journal where entry_month = {month} "
        "order by entry_date, entry_id, journal_line_id"
    ).format(
        columns=sql.SQL(", ").join(
            sql.SQL("{} as {}").format(sql.Identifier(c), sql.Identifier(h)) for h, c in JOURNAL_COLUMNS.items()
        ),
        month=sql.Literal(month),
    )
    with psycopg.connect(warehouse_dsn) as conn:
        return _write(conn, query, tuple(JOURNAL_COLUMNS), fmt, output, "Journal")


def _check_organization(conn: psycopg.Connection, organization_id: int) -> None:
    found = conn.execute(
        "select 1 from marts.fct_revenue_by_organization where organization_id = %s", (organization_id,)
    ).fetchone()
    if found is None:
        raise ArgumentError(f"--organization {organization_id} is not an organization in the warehouse")


def _write(conn, query, columns, fmt, output: Path, title: str, progress=None) -> Export:
    writer = WRITERS[fmt]
    with _replacing(output) as partial, conn.cursor(name="boxoffice_export") as cursor:
        cursor.itersize = FETCH_ROWS
        cursor.execute(query)
        rows = writer(partial, columns, _counted(cursor, progress), title)
    return Export(output, rows)


def _counted(cursor, progress) -> Iterator[tuple]:
    for n, row in enumerate(cursor, start=1):
        if progress is not None and n % 50_000 == 0:
            progress(n)
        yield row


@contextmanager
def _replacing(output: Path) -> Iterator[Path]:
    """A temporary file beside `output`, renamed over it once complete; removed if anything fails."""
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent)
    os.close(fd)
    partial = Path(name)
    try:
        yield partial
        partial.chmod(0o666 & ~_umask())  # mkstemp's file is private; the export is a file like any other
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value)
    return "'" + text if is_formula_like(value) else text


def _write_csv(path: Path, columns, rows, title: str) -> int:
    """RFC 4180 (CRLF); text that would start a formula gets a leading quote, numbers stay numbers."""
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\r\n")
        out.writerow(columns)
        for n, row in enumerate(rows, start=1):  # noqa: B007
            out.writerow([_text(v) for v in row])
    return n


def _json_value(value) -> str:
    """Amounts as exact JSON numbers (never through float), dates as ISO text."""
    if value is None:
        return "null"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool | int):
        return json.dumps(value)
    if isinstance(value, datetime | date):
        return json.dumps(value.isoformat())
    return json.dumps(value, ensure_ascii=False)


def _write_json(path: Path, columns, rows, title: str) -> int:
    """A JSON array of objects, written row by row."""
    keys = [json.dumps(c) + ": " for c in columns]
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        f.write("[")
        for n, row in enumerate(rows, start=1):
            fields = ", ".join(k + _json_value(v) for k, v in zip(keys, row, strict=True))
            f.write(("\n{" if n == 1 else ",\n{") + fields + "}")
        f.write("\n]\n" if n else "]\n")
    return n


def _write_xlsx(path: Path, columns, rows, title: str) -> int:
    """openpyxl's write-only workbook (rows go to disk as they come); a sheet holds at most XLSX_MAX_ROWS rows,
    the rest continue on the next. Amounts are numbers with two decimals, text that looks like a formula is
    stored as text."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet, on_sheet, sheets, n = None, XLSX_MAX_ROWS, 0, 0

    def cell(value):
        if isinstance(value, Decimal):
            c = WriteOnlyCell(sheet, value=value)
            c.number_format = MONEY_FORMAT
            return c
        if is_formula_like(value):
            c = WriteOnlyCell(sheet)
            c.value, c.data_type, c.quotePrefix = value, "s", True
            return c
        return value

    for row in rows:
        n += 1
        if on_sheet == XLSX_MAX_ROWS:
            sheets += 1
            sheet, on_sheet = _sheet(book, title, sheets, columns), 1
        sheet.append([cell(v) for v in row])
        on_sheet += 1
    if sheet is None:
        _sheet(book, title, 1, columns)
    book.save(path)
    return n


def _sheet(book, title, number, columns):
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    sheet = book.create_sheet(title if number == 1 else f"{title} ({number})")
    for i, column in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = max(12, min(40, len(column) + 4))
    sheet.freeze_panes = "A2"
    header = []
    for column in columns:
        c = WriteOnlyCell(sheet, value=column)
        c.font = Font(bold=True)
        header.append(c)
    sheet.append(header)
    return sheet


WRITERS = {"csv": _write_csv, "json": _write_json, "xlsx": _write_xlsx}
