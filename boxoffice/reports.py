"""Monthly reconciliation reports for finance: CSV files and a print-ready HTML page per month.

Reads only the marts. A month is the reporting-time-zone month of the settlement date.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from jinja2 import Environment, FileSystemLoader, select_autoescape

from boxoffice import exports
from boxoffice.exports import is_formula_like
from boxoffice.warehouse import sqlalchemy_url

TEMPLATES = Path(__file__).parent / "templates"

SETTLEMENTS_SQL = """
    select settlement_reference, settlement_id, status, settlement_date, currency, reported_amount,
           expected_amount, difference, is_reconciled, discrepancy_count, payment_count, refund_count,
           chargeback_count, costs_amount
    from marts.fct_settlement_reconciliation
    where to_char(settlement_date, 'YYYY-MM') = :month
    order by settlement_date, settlement_reference
"""
DISCREPANCIES_SQL = """
    select p.mollie_payment_id, p.order_number, s.settlement_reference, p.match_status, p.mismatch_reason,
           p.platform_amount, p.mollie_amount, p.platform_refunded_amount, p.mollie_refunded_amount,
           p.mollie_charged_back_amount, p.platform_status, p.mollie_status, p.paid_at
    from marts.fct_payment_reconciliation as p
    left join marts.fct_settlement_reconciliation as s on s.settlement_id = p.settlement_id
    where p.match_status <> 'matched'
      and to_char(coalesce(s.settlement_date, cast(p.paid_at at time zone :tz as date)), 'YYYY-MM') = :month
    order by p.match_status, p.mollie_payment_id
"""
MONTHS_SQL = "select distinct to_char(settlement_date, 'YYYY-MM') from marts.fct_settlement_reconciliation order by 1"
# Every local day of the month: the GMV paid that day next to what Mollie settled that day.
DAILY_SQL = """
    select d::date as date_day,
           coalesce((select sum(k.gmv) from marts.kpi_daily as k where k.date_day = d::date), 0) as gmv,
           coalesce((select sum(s.reported_amount) from marts.fct_settlement_reconciliation as s
                     where s.settlement_date = d::date), 0) as settled_amount
    from generate_series(to_date(:month, 'YYYY-MM'), to_date(:month, 'YYYY-MM') + interval '1 month' - interval '1 day',
                         interval '1 day') as d
    order by 1
"""
REVENUE_SQL = """
    select organization_id, organization_name, currency, paid_orders, gmv, service_fees, platform_fees,
           mollie_fees, net_revenue, refunded_amount, last_payment_at
    from marts.fct_revenue_by_organization
    order by gmv desc, organization_id
"""
# Amounts stay numbers in the workbook, shown with their currency. Every amount the marts give is a
# Decimal (read with coerce_float=False) and every count an int, so the type says which is which.
MONEY_FORMAT = '#,##0.00 "EUR";-#,##0.00 "EUR"'


@dataclass
class MonthlyReport:
    month: str
    folder: Path
    settlements: int
    reconciled: int
    reported_amount: Decimal
    expected_amount: Decimal
    discrepancies: int

    @property
    def files(self) -> list[Path]:
        return sorted(self.folder.iterdir())


def months(warehouse_dsn: str) -> list[str]:
    engine = sa.create_engine(sqlalchemy_url(warehouse_dsn))
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.text(MONTHS_SQL))]


def write_month(warehouse_dsn: str, month: str, reports_dir: Path, timezone: str) -> MonthlyReport:
    engine = sa.create_engine(sqlalchemy_url(warehouse_dsn))
    with engine.connect() as conn:
        settlements = pd.read_sql(sa.text(SETTLEMENTS_SQL), conn, params={"month": month}, coerce_float=False)
        discrepancies = pd.read_sql(
            sa.text(DISCREPANCIES_SQL), conn, params={"month": month, "tz": timezone}, coerce_float=False
        )
        daily = pd.read_sql(sa.text(DAILY_SQL), conn, params={"month": month}, coerce_float=False)
    engine.dispose()
    folder = reports_dir / "reconciliation" / month
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(settlements, folder / "settlements.csv")
    write_csv(discrepancies, folder / "discrepancies.csv")
    write_csv(daily, folder / "daily.csv")
    for fmt in exports.JOURNAL_FORMATS:  # the month's accounting journal, as `boxoffice export journal` writes it
        exports.journal(warehouse_dsn, exports.parse_month(month), fmt, folder / f"journal.{fmt}")

    reported = sum(settlements["reported_amount"], Decimal(0))
    expected = sum(settlements["expected_amount"], Decimal(0))
    report = MonthlyReport(
        month, folder, len(settlements), int(settlements["is_reconciled"].sum()), reported, expected, len(discrepancies)
    )
    summary = pd.DataFrame(
        [
            {"item": "Settlements", "value": report.settlements},
            {"item": "Paid out by Mollie", "value": report.reported_amount},
            {"item": "Expected from platform records", "value": report.expected_amount},
            {"item": "Difference", "value": report.reported_amount - report.expected_amount},
            {"item": "Reconciled", "value": "yes" if report.reconciled == report.settlements else "no"},
            {"item": "Discrepancies", "value": report.discrepancies},
        ]
    )
    sheets = {"Summary": summary, "Settlements": settlements, "Discrepancies": discrepancies, "Daily": daily}
    write_workbook(folder / "reconciliation.xlsx", sheets)
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape())
    html = env.get_template("reconciliation.html").render(
        report=report,
        settlements=settlements.to_dict("records"),
        discrepancies=discrepancies.to_dict("records"),
        chart=daily_chart(daily),
        timezone=timezone,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    (folder / "reconciliation.html").write_text(html)
    return report


def daily_chart(daily: pd.DataFrame, width: int = 720, height: int = 110) -> list[dict]:
    """Two inline SVG panels (no script, no CDN) on one day axis, each on its own scale: Mollie pays a
    half-month at once, so on a shared scale the daily GMV would be a flat line."""
    step = width / max(1, len(daily))
    panels = []
    for column, title, css in (
        ("gmv", "GMV paid per day", "gmv"),
        ("settled_amount", "Settled by Mollie per day", "settled"),
    ):
        top = max([Decimal(1), *daily[column]])
        bars = [
            {
                "x": round(i * step, 1),
                "width": round(step * 0.7, 1),
                "label": r.date_day.day,
                "date": r.date_day,
                "value": getattr(r, column),
                "h": round(float(Decimal(getattr(r, column)) / top) * height, 1),
            }
            for i, r in enumerate(daily.itertuples())
        ]
        panels.append(
            {
                "title": title,
                "css": css,
                "top": top,
                "total": sum(daily[column], Decimal(0)),
                "bars": bars,
                "width": width,
                "height": height,
            }
        )
    return panels


def write_workbook(path: Path, sheets: dict[str, pd.DataFrame]) -> None:
    """One sheet per section; amounts are numbers in a currency format, headers frozen, columns filterable.
    Written in openpyxl's write-only mode: rows stream to the file (a normal workbook looks its last row up
    for every row appended, quadratic in the rows)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    def header(sheet, column):
        cell = WriteOnlyCell(sheet, value=str(column))
        cell.font = Font(bold=True)
        return cell

    def body(sheet, value):
        if isinstance(value, Decimal):
            cell = WriteOnlyCell(sheet, value=value)
            cell.number_format = MONEY_FORMAT
        elif is_formula_like(value):  # text, never a formula: stored as a string, shown with a quote prefix
            cell = WriteOnlyCell(sheet)
            cell.value, cell.data_type, cell.quotePrefix = value, "s", True
        else:
            return _cell(value)
        return cell

    book = Workbook(write_only=True)
    for title, frame in sheets.items():
        sheet = book.create_sheet(title)
        for i, column in enumerate(frame.columns, start=1):
            sheet.column_dimensions[get_column_letter(i)].width = max(12, min(40, len(str(column)) + 4))
        sheet.freeze_panes = "A2"
        if len(frame):
            sheet.auto_filter.ref = f"A1:{get_column_letter(len(frame.columns))}{len(frame) + 1}"
        sheet.append([header(sheet, column) for column in frame.columns])
        for row in frame.itertuples(index=False):
            sheet.append([body(sheet, value) for value in row])
    book.save(path)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """A CSV finance can open in a spreadsheet: text that would start a formula gets a leading quote, so it is
    shown as the text it is (numbers, Decimals included, are left as numbers)."""
    # RFC 4180 line ends (CRLF): the writer then quotes any field holding a CR or LF of its own
    frame.map(lambda v: "'" + v if is_formula_like(v) else v).to_csv(path, index=False, lineterminator="\r\n")


def _cell(value):
    """Decimals stay exact in the file (openpyxl writes them as numbers); timestamps lose their zone (UTC)."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def write_revenue(warehouse_dsn: str, reports_dir: Path) -> Path:
    """Revenue by organization, as CSV and as a filterable, sortable XLSX, for accounting software."""
    engine = sa.create_engine(sqlalchemy_url(warehouse_dsn))
    with engine.connect() as conn:
        revenue = pd.read_sql(sa.text(REVENUE_SQL), conn, coerce_float=False)
    engine.dispose()
    folder = reports_dir / "revenue"
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(revenue, folder / "revenue_by_organization.csv")
    write_workbook(folder / "revenue_by_organization.xlsx", {"Revenue by organization": revenue})
    return folder


def _swap_in(new: Path, final: Path) -> None:
    """Put a folder written aside in place of the old one: a reader (or a kill) sees the old or the new,
    never a mix of months from two runs."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = final.parent / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
    if final.exists():
        final.rename(old)
    new.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _writing_area(reports_dir: Path) -> Path:
    """A folder beside the reports (same file system, so the swap is a rename); leftovers of killed runs go."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    for leftover in [*reports_dir.glob(".writing-*"), *reports_dir.rglob(".old-*")]:
        shutil.rmtree(leftover, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=".writing-", dir=reports_dir))


def write_all(warehouse_dsn: str, reports_dir: Path, timezone: str) -> list[MonthlyReport]:
    """Every month's reconciliation report and the revenue files, written aside and swapped in whole."""
    area = _writing_area(reports_dir)
    try:
        written = [write_month(warehouse_dsn, m, area, timezone) for m in months(warehouse_dsn)]
        write_revenue(warehouse_dsn, area)
        for folder in ("reconciliation", "revenue"):
            _swap_in(area / folder, reports_dir / folder)
    finally:
        shutil.rmtree(area, ignore_errors=True)
    return [replace(r, folder=reports_dir / "reconciliation" / r.month) for r in written]


def write_one_month(warehouse_dsn: str, month: str, reports_dir: Path, timezone: str) -> MonthlyReport:
    """One month on demand, written aside and swapped in whole."""
    area = _writing_area(reports_dir)
    try:
        report = write_month(warehouse_dsn, month, area, timezone)
        _swap_in(report.folder, reports_dir / "reconciliation" / month)
    finally:
        shutil.rmtree(area, ignore_errors=True)
    return replace(report, folder=reports_dir / "reconciliation" / month)
