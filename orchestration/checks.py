"""Great Expectations suites as Dagster asset checks; failing rows go into the check's metadata."""

from pathlib import Path

import dagster as dg

from expectations import financials, settlements
from expectations.runner import ExpectationOutcome
from orchestration.resources import BoxofficeSettings

SETTLEMENTS = dg.AssetKey(["marts", "fct_settlement_reconciliation"])
# A settlement that differs is finance's work list, not a reason to stop publishing; money that no
# discrepancy explains, or a settlement that breaks Mollie's own identity, is.
BLOCKING = {"settlement_differences_explained", "settlement_identity"}


def data_docs_dir(reports_dir: Path) -> Path:
    """GX Data Docs of every suite, beside finance's reports (readable offline)."""
    return reports_dir / "data_docs"


def _markdown_table(rows: list[dict], limit: int = 50) -> str:
    if not rows:
        return "(none)"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"\n... and {len(rows) - limit} more")
    return "\n".join(lines)


def to_check_result(outcome: ExpectationOutcome, asset: dg.AssetKey = SETTLEMENTS) -> dg.AssetCheckResult:
    metadata = {
        "description": outcome.description,
        "unexpected_count": outcome.unexpected_count,
        "errored": outcome.errored,
        "disagreeing_rows": dg.MetadataValue.md(_markdown_table(outcome.unexpected_rows)),
    }
    if outcome.error:
        metadata["error"] = outcome.error
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=outcome.name,
        passed=outcome.success,
        severity=dg.AssetCheckSeverity.ERROR
        if blocking_for(outcome.name) or outcome.errored
        else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(e.name, asset=SETTLEMENTS, blocking=e.name in BLOCKING, description=e.description)
        for e in settlements.SUITE
    ],
)
def settlement_reconciliation_checks(settings: BoxofficeSettings):
    s = settings.load()
    for outcome in settlements.validate(s.warehouse_dsn, data_docs_dir(s.reports_dir)):
        yield to_check_result(outcome)


def _financial_checks(suite: financials.Suite) -> dg.AssetChecksDefinition:
    """Every expectation of these suites is blocking: a ledger, payout, GMV or control total that does not
    hold means the numbers must not be published."""
    asset = dg.AssetKey(list(suite.asset))

    @dg.multi_asset_check(
        name=f"{suite.name}_checks",
        specs=[
            dg.AssetCheckSpec(e.name, asset=asset, blocking=True, description=e.description) for e in suite.expectations
        ],  # fmt: skip
    )
    def _checks(settings: BoxofficeSettings):
        s = settings.load()
        for outcome in suite.validate(s.warehouse_dsn, s.reporting_timezone, data_docs_dir(s.reports_dir)):
            yield to_check_result(outcome, asset)

    return _checks


def blocking_for(name: str) -> bool:
    return name in BLOCKING or any(name == e.name for s in financials.SUITES for e in s.expectations)


financial_checks = [_financial_checks(s) for s in financials.SUITES]
