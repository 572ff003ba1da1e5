"""Finance's monthly reconciliation reports, written to REPORTS_DIR after the checks pass."""

import dagster as dg

from boxoffice import reports
from orchestration.resources import BoxofficeSettings, WarehouseLock


@dg.asset(
    key=["reports", "reconciliation_reports"],
    group_name="reports",
    kinds={"html", "csv", "xlsx"},
    deps=[
        dg.AssetKey(["marts", "fct_settlement_reconciliation"]),
        dg.AssetKey(["marts", "fct_payment_reconciliation"]),
        # their blocking checks (ledger, payouts, paid GMV, control totals) stop the reports too
        dg.AssetKey(["marts", "fct_balance_transactions"]),
        dg.AssetKey(["marts", "fct_payouts"]),
        dg.AssetKey(["marts", "fct_financial_monthly"]),
    ],
    description="Monthly reconciliation reports (print-ready HTML with a daily chart, an XLSX workbook and CSV) "
    "and revenue by organization (CSV, XLSX) for finance, in REPORTS_DIR.",
)
def reconciliation_reports(
    context: dg.AssetExecutionContext, settings: BoxofficeSettings, warehouse_lock: WarehouseLock
) -> dg.MaterializeResult:
    s = settings.load()
    written = reports.write_all(s.warehouse_dsn, s.reports_dir, s.reporting_timezone)
    for r in written:
        context.log.info(f"{r.month}: {r.settlements} settlements, {r.discrepancies} discrepancies -> {r.folder}")
    return dg.MaterializeResult(
        metadata={
            "months": len(written),
            "reports_dir": dg.MetadataValue.path(str(s.reports_dir / "reconciliation")),
            "latest": dg.MetadataValue.path(str(written[-1].folder / "reconciliation.html")) if written else "",
        }
    )
