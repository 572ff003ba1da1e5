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
    engine.dispose()
    folder = reports_dir / "reconciliation" / month
    folder.mkdir(parents=True, exist_ok=True)
    settlements.to_csv(folder / "settlements.csv", index=False)
    discrepancies.to_csv(folder / "discrepancies.csv", index=False)

    reported = sum(settlements["reported_amount"], Decimal(0))
    expected = sum(settlements["expected_amount"], Decimal(0))
    report = MonthlyReport(month, folder, len(settlements), int(settlements["is_reconciled"].sum()),
                           reported, expected, len(discrepancies))  # fmt: skip
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape())
    html = env.get_template("reconciliation.html").render(
        report=report,
        settlements=settlements.to_dict("records"),
        discrepancies=discrepancies.to_dict("records"),
        timezone=timezone,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    (folder / "reconciliation.html").write_text(html)
    return report


def write_all(warehouse_dsn: str, reports_dir: Path, timezone: str) -> list[MonthlyReport]:
    return [write_month(warehouse_dsn, m, reports_dir, timezone) for m in months(warehouse_dsn)]
