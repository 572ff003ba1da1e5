"""Extract assets: one per platform table, and one multi-asset for the Mollie API sweep."""

from datetime import timedelta

import dagster as dg

from extract import contract, control_totals, mollie, platform
from extract.raw import new_batch_id
from orchestration.resources import BoxofficeSettings, WarehouseLock

CONTRACT_CHECK = "source_contract"


class ExtractConfig(dg.Config):
    full_refresh: bool = False
    """Ignore the committed cursor and re-read the whole table (the merge still rewrites only changes)."""


def _platform_asset(table: str) -> dg.AssetsDefinition:
    key = dg.AssetKey(["raw", platform.raw_table(table)])

    @dg.asset(
        key=key,
        group_name="extract_platform",
        kinds={"postgres"},
        # parents first: a child's foreign keys are checked against them (orphans are quarantined)
        deps=[
            dg.AssetKey(["raw", platform.raw_table(p)])
            for p in sorted({p for _, p in contract.FOREIGN_KEYS.get(table, [])})
        ],
        check_specs=[
            dg.AssetCheckSpec(
                CONTRACT_CHECK,
                asset=key,
                description=f"The source's `{table}` table has the contract's columns; a broken contract stops "
                "this table alone (raw keeps its last load), never the other tables, dbt or the reports.",
            )
        ],
        description=f"The platform's `{table}` table, incrementally merged into raw.{platform.raw_table(table)}; "
        "rows that break the source contract go to raw._quarantine.",
    )
    def _asset(
        context: dg.AssetExecutionContext,
        config: ExtractConfig,
        settings: BoxofficeSettings,
        warehouse_lock: WarehouseLock,
    ) -> dg.MaterializeResult:
        return load_platform_table(context, table, settings.load(), config.full_refresh)

    return _asset


def load_platform_table(context: dg.AssetExecutionContext, table: str, s, full_refresh: bool) -> dg.MaterializeResult:
    """Load one table and record its control totals; a broken contract fails its check, not the run."""
    try:
        result = platform.load_table(
            s.source_dsn,
            s.source_schema,
            s.warehouse_dsn,
            table,
            new_batch_id(),
            full_refresh=full_refresh,
            lookback=timedelta(minutes=s.extract_lookback_minutes),
            chunk_rows=s.extract_chunk_rows,
            progress=context.log.info,
        )
    except platform.ContractError as err:
        context.log.error(f"{table}: {err}; raw keeps its last load")
        failed = dg.AssetCheckResult(
            check_name=CONTRACT_CHECK, passed=False, severity=dg.AssetCheckSeverity.ERROR, metadata={"error": str(err)}
        )
        return dg.MaterializeResult(metadata={"loaded": False, "contract_error": str(err)}, check_results=[failed])
    totals = control_totals.record(s.source_dsn, s.source_schema, s.warehouse_dsn, table, result.table, result.batch_id)
    metadata = {
        **result.metadata(),
        "dagster/row_count": result.rows_read,
        "control_source_rows": totals["source_rows"],
        "control_raw_rows": totals["raw_rows"],
    }
    kept = dg.AssetCheckResult(
        check_name=CONTRACT_CHECK, passed=True, metadata={"rows_quarantined": result.quarantined}
    )
    return dg.MaterializeResult(metadata=metadata, check_results=[kept])


platform_assets = [_platform_asset(t) for t in platform.TABLES]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["raw", table],
            group_name="extract_mollie",
            kinds={"mollie"},
            description=f"Mollie API v2 objects in raw.{table} (payload kept whole).",
        )
        for table in mollie.TABLES
    ],
    can_subset=False,
)
def mollie_assets(
    context: dg.AssetExecutionContext, config: ExtractConfig, settings: BoxofficeSettings, warehouse_lock: WarehouseLock
):
    s = settings.load()
    client = mollie.make_client(s.mollie_api_url, s.mollie_api_token)
    results = mollie.load_all(
        client,
        s.warehouse_dsn,
        new_batch_id(),
        progress=context.log.info,
        full_refresh=config.full_refresh,
        concurrency=s.mollie_concurrency,
    )
    for table, result in results.items():
        yield dg.MaterializeResult(
            asset_key=["raw", table],
            metadata={**result.metadata(), "dagster/row_count": result.rows_read, "http_retries": client.retried},
        )
