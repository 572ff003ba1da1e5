"""Monthly reconciliation reports for finance: CSV files and a print-ready HTML page per month.

Reads only the marts. A month is the reporting-time-zone month of the settlement date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from jinja2 import Environment, FileSystemLoader, select_autoescape

from expectations.runner import sqlalchemy_url

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
    settlements.to_csv(folder / "settlements.csv", index=False)
    discrepancies.to_csv(folder / "discrepancies.csv", index=False)
    daily.to_csv(folder / "daily.csv", index=False)

    reported = sum(settlements["reported_amount"], Decimal(0))
    expected = sum(settlements["expected_amount"], Decimal(0))
    report = MonthlyReport(month, folder, len(settlements), int(settlements["is_reconciled"].sum()),
                           reported, expected, len(discrepancies))  # fmt: skip
    summary = pd.DataFrame([
        {"item": "Settlements", "value": report.settlements},
        {"item": "Paid out by Mollie", "value": report.reported_amount},
        {"item": "Expected from platform records", "value": report.expected_amount},
        {"item": "Difference", "value": report.reported_amount - report.expected_amount},
        {"item": "Reconciled", "value": "yes" if report.reconciled == report.settlements else "no"},
        {"item": "Discrepancies", "value": report.discrepancies},
    ])  # fmt: skip
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
    for column, title, css in (("gmv", "GMV paid per day", "gmv"), ("settled_amount", "Settled by Mollie per day",
                                                                       "settled")):  # fmt: skip
        top = max([Decimal(1), *daily[column]])
        bars = [
            {"x": round(i * step, 1), "width": round(step * 0.7, 1), "label": r.date_day.day, "date": r.date_day,
             "value": getattr(r, column), "h": round(float(Decimal(getattr(r, column)) / top) * height, 1)}
            for i, r in enumerate(daily.itertuples())
        ]  # fmt: skip
        panels.append({"title": title, "css": css, "top": top, "total": sum(daily[column], Decimal(0)),
                       "bars": bars, "width": width, "height": height})  # fmt: skip
    return panels


def write_workbook(path: Path, sheets: dict[str, pd.DataFrame]) -> None:
    """One sheet per section; amounts are numbers in a currency format, headers frozen, columns filterable."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    for title, frame in sheets.items():
        sheet = book.create_sheet(title)
        sheet.append(list(frame.columns))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in frame.itertuples(index=False):
            sheet.append([_cell(v) for v in row])
            for cell, value in zip(sheet[sheet.max_row], row, strict=True):
                if isinstance(value, Decimal):
                    cell.number_format = MONEY_FORMAT
        for i, column in enumerate(frame.columns, start=1):
            sheet.column_dimensions[get_column_letter(i)].width = max(12, min(40, len(str(column)) + 4))
        sheet.freeze_panes = "A2"
        if len(frame):
            sheet.auto_filter.ref = sheet.dimensions
    book.save(path)


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
    revenue.to_csv(folder / "revenue_by_organization.csv", index=False)
    write_workbook(folder / "revenue_by_organization.xlsx", {"Revenue by organization": revenue})
    return folder


def write_all(warehouse_dsn: str, reports_dir: Path, timezone: str) -> list[MonthlyReport]:
    written = [write_month(warehouse_dsn, m, reports_dir, timezone) for m in months(warehouse_dsn)]
    write_revenue(warehouse_dsn, reports_dir)
    return written
