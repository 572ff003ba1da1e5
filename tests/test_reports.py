"""Finance's files, read back the way finance reads them: the HTML rendered by a real browser, the
workbooks opened with a spreadsheet library. Totals are checked against the marts."""

import shutil
import subprocess
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from PIL import Image

CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def bad_month(warehouse, runs):
    """The first month with a settlement that does not reconcile, and that settlement's reference."""
    return warehouse.execute(
        "select to_char(settlement_date, 'YYYY-MM'), settlement_reference from marts.fct_settlement_reconciliation "
        "where not is_reconciled order by settlement_date limit 1"
    ).fetchone()


def month_totals(warehouse, month):
    return warehouse.execute(
        "select count(*), sum(reported_amount), sum(expected_amount) from marts.fct_settlement_reconciliation "
        "where to_char(settlement_date, 'YYYY-MM') = %s",
        (month,),
    ).fetchone()


def cents(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def test_the_workbook_has_a_sheet_per_section_with_amounts_as_currency_numbers(settings, warehouse, bad_month):
    month, reference = bad_month
    count, reported, expected = month_totals(warehouse, month)
    book = load_workbook(settings.reports_dir / "reconciliation" / month / "reconciliation.xlsx")
    assert book.sheetnames == ["Summary", "Settlements", "Discrepancies", "Daily"]
    sheet = book["Settlements"]
    header = [c.value for c in sheet[1]]
    rows = [dict(zip(header, (c.value for c in r), strict=True)) for r in sheet.iter_rows(min_row=2)]
    assert len(rows) == count
    assert all(isinstance(r["reported_amount"], int | float) for r in rows)  # numbers, not text
    assert cents(sum(Decimal(str(r["reported_amount"])) for r in rows)) == reported
    assert cents(sum(Decimal(str(r["expected_amount"])) for r in rows)) == expected
    amount_cell = sheet.cell(row=2, column=header.index("reported_amount") + 1)
    assert "EUR" in amount_cell.number_format and sheet.freeze_panes == "A2" and sheet.auto_filter.ref
    assert [r["is_reconciled"] for r in rows if r["settlement_reference"] == reference] == [False]
    summary = {r[0].value: r[1].value for r in book["Summary"].iter_rows(min_row=2)}
    assert cents(summary["Paid out by Mollie"]) == reported and summary["Reconciled"] == "no"
    listed = warehouse.execute(
        "select count(*) from marts.fct_payment_reconciliation p left join marts.fct_settlement_reconciliation s "
        "on s.settlement_id = p.settlement_id where p.match_status <> 'matched' and to_char(coalesce("
        "s.settlement_date, cast(p.paid_at at time zone 'Europe/Amsterdam' as date)), 'YYYY-MM') = %s",
        (month,),
    ).fetchone()[0]
    assert book["Discrepancies"].max_row - 1 == listed > 0
    daily = book["Daily"]
    settled = sum(Decimal(str(r[2].value)) for r in daily.iter_rows(min_row=2))
    assert cents(settled) == reported  # every settlement lands on one day of its month


def test_revenue_by_organization_files_add_up_to_the_mart_and_sort_by_gmv(settings, warehouse):
    folder = settings.reports_dir / "revenue"
    (gmv, net, orgs) = warehouse.execute(
        "select sum(gmv), sum(net_revenue), count(*) from marts.fct_revenue_by_organization"
    ).fetchone()
    sheet = load_workbook(folder / "revenue_by_organization.xlsx")["Revenue by organization"]
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["organization_id", "organization_name", "currency"]
    rows = [dict(zip(header, (c.value for c in r), strict=True)) for r in sheet.iter_rows(min_row=2)]
    assert len(rows) == orgs
    assert cents(sum(Decimal(str(r["gmv"])) for r in rows)) == gmv
    assert cents(sum(Decimal(str(r["net_revenue"])) for r in rows)) == net
    assert [r["gmv"] for r in rows] == sorted((r["gmv"] for r in rows), reverse=True)
    assert sheet.auto_filter.ref == sheet.dimensions  # sortable and filterable in the spreadsheet
    csv_lines = (folder / "revenue_by_organization.csv").read_text().splitlines()
    assert len(csv_lines) == orgs + 1 and csv_lines[0].startswith("organization_id,organization_name")


def test_the_html_report_renders_in_chromium_with_totals_and_the_discrepancy_highlighted(
    settings, warehouse, bad_month, tmp_path
):
    assert CHROMIUM, "Debian's chromium is missing: `make browser` (part of `make test`) installs it"
    month, reference = bad_month
    _, reported, expected = month_totals(warehouse, month)
    page = (settings.reports_dir / "reconciliation" / month / "reconciliation.html").as_uri()
    browser = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    subprocess.run(
        [*browser, "--no-pdf-header-footer", f"--print-to-pdf={tmp_path / 'r.pdf'}", page],
        check=True,
        capture_output=True,
        timeout=120,
    )
    text = subprocess.run(
        ["pdftotext", "-layout", str(tmp_path / "r.pdf"), "-"], check=True, capture_output=True, text=True
    ).stdout
    # what a reader of the printed report sees
    assert f"reconciliation — {month}" in text
    assert f"{reported:,.2f}" in text and f"{expected:,.2f}" in text
    assert " ".join(text.split("Reconciled", 1)[1].split()[:1]) == "no"
    assert reference in text and "GMV paid per day" in text and "Settled by Mollie per day" in text
    subprocess.run(
        [*browser, "--window-size=1200,2400", f"--screenshot={tmp_path / 'r.png'}", page],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pixels = Image.open(tmp_path / "r.png").convert("RGB").getdata()
    highlighted = sum(1 for p in pixels if p == (253, 236, 234))  # tr.discrepant's background
    chart_bars = sum(1 for p in pixels if p == (156, 184, 217))  # the GMV bars
    assert highlighted > 5_000 and chart_bars > 1_000


def test_reports_that_fail_midway_leave_the_previous_ones_whole(settings, runs, monkeypatch, tmp_path):
    """Reports were written in place: a kill left old and new months mixed. Now they are written aside and
    swapped in whole, so a failure (or a kill) midway leaves the previous reports untouched."""
    from boxoffice import reports

    reports.write_all(settings.warehouse_dsn, tmp_path, settings.reporting_timezone)
    snapshot = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file()}
    assert len(snapshot) > 10

    def fail(*args, **kwargs):
        raise RuntimeError("killed while writing the revenue files")

    monkeypatch.setattr(reports, "write_revenue", fail)
    with pytest.raises(RuntimeError):
        reports.write_all(settings.warehouse_dsn, tmp_path, settings.reporting_timezone)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file()} == snapshot
    assert {p.name for p in tmp_path.iterdir()} == {"reconciliation", "revenue"}  # nothing half-written left
