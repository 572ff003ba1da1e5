"""Finance's exports, against the session's pipeline run: the money movements of one organization and month
equal the ledger's figures, read back from CSV, JSON and XLSX alike; bad arguments write nothing; the journal
balances every entry and month, books the payouts on the bank, and puts a planted discrepancy on suspense."""

import csv
import json
from datetime import date
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from boxoffice import cli, exports
from expectations import financials

JANUARY = (date(2026, 1, 1), date(2026, 1, 31))
ALL_DAYS = (date(2000, 1, 1), date(2099, 12, 31))


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def busiest(warehouse):
    """The organization and local month with the most money movements other than payouts."""
    return warehouse.execute(
        "select organization_id, to_char(created_date, 'YYYY-MM') as month from marts.fct_balance_transactions "
        "where organization_id is not null group by 1, 2 order by count(*) desc, 1, 2 limit 1"
    ).fetchone()


def month_bounds(month: str) -> tuple[str, str]:
    from calendar import monthrange

    year, number = map(int, month.split("-"))
    return f"{month}-01", f"{month}-{monthrange(year, number)[1]:02d}"


def ledger_figures(warehouse, organization_id, month) -> dict[str, tuple]:
    """Per Mollie type: count, gross, fees and net of the ledger mart's lines of that organization and month."""
    rows = warehouse.execute(
        "select transaction_type, count(*), sum(initial_amount), -sum(deductions), sum(result_amount) "
        "from marts.fct_balance_transactions where organization_id = %s and to_char(created_date, 'YYYY-MM') = %s "
        "group by 1",
        (organization_id, month),
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def figures(rows: list[dict]) -> dict[str, tuple]:
    out: dict[str, list] = {}
    for r in rows:
        t = out.setdefault(r["mollie_type"], [0, Decimal(0), Decimal(0), Decimal(0)])
        t[0] += 1
        for i, column in enumerate(("gross_amount", "fees", "net_amount"), start=1):
            t[i] += Decimal(str(r[column]))
    return {k: tuple(v) for k, v in out.items()}


def read_csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_xlsx(path) -> list[dict]:
    book = load_workbook(path, read_only=True)
    rows = []
    for sheet in book.worksheets:
        values = list(sheet.iter_rows(values_only=True))
        rows += [dict(zip(values[0], r, strict=True)) for r in values[1:]]
    return rows


@pytest.mark.parametrize("fmt", exports.TRANSACTION_FORMATS)
def test_one_organizations_month_equals_the_ledger_per_type_to_the_cent(fmt, settings, warehouse, busiest, capsys):
    organization_id, month = busiest
    start, end = month_bounds(month)
    output = settings.reports_dir / "exports" / f"org.{fmt}"
    scope = ["--organization", str(organization_id), "--format", fmt, "--output", str(output)]
    code, out, _ = run_cli(capsys, "export", "transactions", "--from", start, "--to", end, *scope)
    assert code == 0, out
    if fmt == "json":
        rows = json.loads(output.read_text(), parse_float=Decimal)
    else:
        rows = read_csv(output) if fmt == "csv" else read_xlsx(output)
    expected = ledger_figures(warehouse, organization_id, month)
    assert "payment" in set(expected) and sum(v[0] for v in expected.values()) >= 5
    assert figures(rows) == expected
    assert f"{len(rows):,} money movements" in out
    assert {str(r["organization_id"]) for r in rows} == {str(organization_id)}
    assert all(str(r["booked_date"]).startswith(month) for r in rows)
    assert not [r for r in rows if "@" in str(r["buyer_key"])]  # the buyer only as the salted hash


def test_every_movement_of_a_period_once_with_its_settlement_and_status(settings, warehouse, capsys):
    (first, last, count, net) = warehouse.execute(
        "select min(created_date), max(created_date), count(*), sum(result_amount) from marts.fct_balance_transactions"
    ).fetchone()
    output = settings.reports_dir / "exports" / "all.csv"
    code, out, _ = run_cli(
        capsys, "export", "transactions", "--from", str(first), "--to", str(last), "--output", str(output)
    )
    rows = read_csv(output)
    assert code == 0 and len(rows) == count == len({r["movement_id"] for r in rows})
    assert sum(Decimal(r["net_amount"]) for r in rows) == net
    payouts = [r for r in rows if r["movement_type"] == "payout"]
    (paid_out,) = warehouse.execute("select count(*) from marts.fct_payouts where is_paid_out").fetchone()
    assert len(payouts) >= paid_out > 0 and all(r["settlement_reference"] for r in payouts)
    statuses = {r["reconciliation_status"] for r in rows if r["movement_type"] == "payment"}
    assert "matched" in statuses and statuses - {"matched"}  # the demo's planted discrepancies show


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-3-01", "--to", "2026-03-31"], "--from is not a date: '2026-3-01'"),
        (["--from", "2026-02-30", "--to", "2026-03-31"], "--from is not a date: '2026-02-30'"),
        (["--from", "2026-04-01", "--to", "2026-03-31"], "--from (2026-04-01) is after --to (2026-03-31)"),
        (["--from", "2026-03-01", "--to", "2026-03-31", "--organization", "987654"], "--organization 987654 is not"),
        (["--from", "2026-03-01", "--to", "2026-03-31", "--format", "pdf"], "--format must be one of csv, json, xlsx"),
    ],
)
def test_a_bad_argument_is_one_line_naming_it_and_writes_nothing(args, message, settings, runs, capsys, tmp_path):
    output = tmp_path / "out.csv"
    code, out, err = run_cli(capsys, "export", "transactions", *args, "--output", str(output))
    (line,) = err.strip().splitlines()
    assert code == 2 and line.startswith("boxoffice: ") and message in line
    assert list(tmp_path.iterdir()) == []


def test_an_export_that_fails_midway_leaves_the_previous_file(settings, runs, monkeypatch, tmp_path):
    output = tmp_path / "movements.csv"
    output.write_text("the previous export\n")

    def broken(path, columns, rows, title):
        path.write_text("half")
        raise RuntimeError("connection lost")

    monkeypatch.setitem(exports.WRITERS, "csv", broken)
    with pytest.raises(RuntimeError):
        exports.transactions(settings.warehouse_dsn, *JANUARY, None, "csv", output, settings.reporting_timezone)
    assert output.read_text() == "the previous export\n" and list(tmp_path.iterdir()) == [output]


def test_more_rows_than_a_worksheet_holds_go_on_to_the_next_sheet(settings, warehouse, monkeypatch, tmp_path):
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 100)
    output = tmp_path / "m.xlsx"
    done = exports.transactions(settings.warehouse_dsn, *ALL_DAYS, None, "xlsx", output, settings.reporting_timezone)
    book = load_workbook(done.path, read_only=True)
    assert done.rows > 250 and len(book.sheetnames) == -(-done.rows // 99)
    assert book.sheetnames[:2] == ["Transactions", "Transactions (2)"]
    assert len(read_xlsx(done.path)) == done.rows


def test_every_journal_entry_and_month_balances_and_the_check_passes(settings, warehouse):
    unbalanced = warehouse.execute(
        "select entry_id from marts.fct_accounting_journal group by entry_id having sum(debit) <> sum(credit) "
        "union all select to_char(entry_month, 'YYYY-MM') from marts.fct_accounting_journal group by entry_month "
        "having sum(debit) <> sum(credit)"
    ).fetchall()
    (entries, months) = warehouse.execute(
        "select count(distinct entry_id), count(distinct entry_month) from marts.fct_accounting_journal"
    ).fetchone()
    assert unbalanced == [] and entries > 20 and months > 6
    (outcome,) = financials.JOURNAL.validate(settings.warehouse_dsn)
    assert outcome.success and outcome.unexpected_count == 0


def test_the_journals_bank_lines_are_the_payouts(warehouse):
    booked = dict(
        warehouse.execute(
            "select settlement_id, sum(debit) - sum(credit) from marts.fct_accounting_journal "
            "where account_key = 'bank' group by 1"
        ).fetchall()
    )
    transferred = dict(
        warehouse.execute(
            "select settlement_id, transferred_amount from marts.fct_payouts where transfer_transaction_id is not null"
        ).fetchall()
    )
    assert booked == transferred and len(booked) > 10


def test_a_planted_discrepancy_is_on_suspense_not_balanced_away(warehouse):
    """Every booked settlement: suspense holds its difference, one line per discrepancy that moves money
    (discrepancies that cancel out still show), and nothing when all its items agree."""
    rows = warehouse.execute(
        "select s.settlement_id, s.difference, "
        "  coalesce((select sum(j.credit) - sum(j.debit) from marts.fct_accounting_journal as j "
        "   where j.settlement_id = s.settlement_id and j.account_key = 'suspense'), 0), "
        "  (select count(*) from marts.fct_settlement_items as i where i.settlement_id = s.settlement_id "
        "   and i.discrepancy_reason is not null and i.mollie_amount <> coalesce(i.platform_amount, 0)), "
        "  (select count(*) from marts.fct_accounting_journal as j where j.settlement_id = s.settlement_id "
        "   and j.account_key = 'suspense') "
        "from marts.fct_settlement_reconciliation as s where s.status <> 'open'"
    ).fetchall()
    assert [r for r in rows if r[1] != 0], "the demo plants settlements that do not reconcile"
    for settlement, difference, on_suspense, listed, suspense_lines in rows:
        assert (settlement, on_suspense) == (settlement, difference)
        assert (settlement, suspense_lines) == (settlement, listed)


def test_an_unbalanced_entry_fails_the_blocking_check_naming_it(settings, warehouse):
    (line, entry) = warehouse.execute(
        "select journal_line_id, entry_id from marts.fct_accounting_journal where debit > 0 order by 1 limit 1"
    ).fetchone()
    warehouse.execute(
        "update marts.fct_accounting_journal set debit = debit + 0.01 where journal_line_id = %s", (line,)
    )
    try:
        (outcome,) = financials.JOURNAL.validate(settings.warehouse_dsn)
    finally:
        warehouse.execute(
            "update marts.fct_accounting_journal set debit = debit - 0.01 where journal_line_id = %s", (line,)
        )
    assert not outcome.success and not outcome.errored
    named = {(r["level"], r["unit"], str(r["difference"])) for r in outcome.unexpected_rows}
    assert ("entry", entry, "0.01") in named and len(named) == 2  # the entry, and its month


def test_the_months_journal_file_is_the_marts_lines_in_the_plain_layout(settings, warehouse, capsys):
    (month,) = warehouse.execute(
        "select to_char(entry_month, 'YYYY-MM') from marts.fct_accounting_journal "
        "where account_key = 'suspense' order by 1 limit 1"
    ).fetchone()
    code, out, _ = run_cli(capsys, "export", "journal", "--month", month)
    assert code == 0
    path = settings.reports_dir / "exports" / f"journal_{month}.csv"
    rows = read_csv(path)
    assert list(rows[0]) == list(exports.JOURNAL_COLUMNS)
    assert list(exports.JOURNAL_COLUMNS)[:6] == ["date", "entry_id", "account", "account_name", "debit", "credit"]
    (count, debits) = warehouse.execute(
        "select count(*), sum(debit) from marts.fct_accounting_journal where to_char(entry_month, 'YYYY-MM') = %s",
        (month,),
    ).fetchone()
    assert len(rows) == count and sum(Decimal(r["debit"]) for r in rows) == debits == sum(
        Decimal(r["credit"]) for r in rows
    )
    assert "1990" in {r["account"] for r in rows}  # the suspense account's code from the seed
    book = read_xlsx(settings.reports_dir / "reconciliation" / month / "journal.xlsx")
    assert len(book) == count and (settings.reports_dir / "reconciliation" / month / "journal.csv").exists()
