"""Great Expectations suites as Dagster asset checks; failing rows go into the check's metadata."""

from pathlib import Path

import dagster as dg

from expectations import financials, settlements
from expectations.runner import ExpectationOutcome, RowExpectation, Suite
from orchestration.resources import BoxofficeSettings, WarehouseLock

SUITES = (settlements.SUITE, *financials.SUITES)


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


def to_check_result(outcome: ExpectationOutcome, expectation: RowExpectation, asset: dg.AssetKey):
    metadata = {
        "description": outcome.description,
        "status": "could not run" if outcome.errored else ("passed" if outcome.success else "failed"),
        "unexpected_count": outcome.unexpected_count,
        "errored": outcome.errored,
        "disagreeing_rows": dg.MetadataValue.md(_markdown_table(outcome.unexpected_rows)),
    }
    if outcome.error:
        metadata["error"] = outcome.error_line
        metadata["error_detail"] = dg.MetadataValue.text(outcome.error)
    blocking = expectation.blocking or outcome.errored
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=outcome.name,
        passed=outcome.success,
        severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )


def _suite_checks(suite: Suite) -> dg.AssetChecksDefinition:
    asset = dg.AssetKey(list(suite.asset))
    by_name = {e.name: e for e in suite.expectations}

    @dg.multi_asset_check(
        name=f"{suite.name}_checks",
        specs=[
            dg.AssetCheckSpec(e.name, asset=asset, blocking=e.blocking, description=e.description)
            for e in suite.expectations
        ],
    )
    def _checks(settings: BoxofficeSettings, warehouse_lock: WarehouseLock):
        s = settings.load()
        for outcome in suite.validate(s.warehouse_dsn, s.reporting_timezone, data_docs_dir(s.reports_dir)):
            yield to_check_result(outcome, by_name[outcome.name], asset)

    return _checks


suite_checks = [_suite_checks(s) for s in SUITES]
