"""The extract step: one asset per platform table and per Mollie table, loaded by one multi-asset that runs
the platform tables and the Mollie sweep side by side (the command line runs jobs in process, one step at
a time, so the overlap has to live inside a step)."""

import contextlib
import queue
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import dagster as dg

from extract import contract, control_totals, mollie, platform
from extract.raw import ensure_schema, new_batch_id
from orchestration.resources import BoxofficeSettings, WarehouseLock

CONTRACT_CHECK = "source_contract"
EXTRACT_STEP = "extract_sources"


class ExtractConfig(dg.Config):
    full_refresh: bool = False
    """Ignore the committed cursor and re-read the whole table (the merge still rewrites only changes)."""


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
            asset_key=platform_key(table),
            check_name=CONTRACT_CHECK,
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"error": str(err)},
        )
        return dg.MaterializeResult(
            asset_key=platform_key(table),
            metadata={"loaded": False, "contract_error": str(err)},
            check_results=[failed],
        )
    totals = control_totals.record(s.source_dsn, s.source_schema, s.warehouse_dsn, table, result.table, result.batch_id)
    metadata = {
        **result.metadata(),
        "dagster/row_count": result.rows_read,
        "control_source_rows": totals["source_rows"],
        "control_raw_rows": totals["raw_rows"],
    }
    kept = dg.AssetCheckResult(
        asset_key=platform_key(table),
        check_name=CONTRACT_CHECK,
        passed=True,
        metadata={"rows_quarantined": result.quarantined},
    )
    return dg.MaterializeResult(asset_key=platform_key(table), metadata=metadata, check_results=[kept])


def platform_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", platform.raw_table(table)])


PLATFORM_SPECS = [
    dg.AssetSpec(
        platform_key(table),
        group_name="extract_platform",
        kinds={"postgres"},
        # parents first: a child's foreign keys are checked against them (orphans are quarantined)
        deps=[platform_key(p) for p in contract.parents(table)],
        description=f"The platform's `{table}` table, incrementally merged into raw.{platform.raw_table(table)}; "
        "rows that break the source contract go to raw._quarantine.",
    )
    for table in platform.TABLES
]
MOLLIE_SPECS = [
    dg.AssetSpec(
        ["raw", table],
        group_name="extract_mollie",
        kinds={"mollie"},
        description=f"Mollie API v2 objects in raw.{table} (payload kept whole; one sweep loads every Mollie table).",
    )
    for table in mollie.TABLES
]
CONTRACT_SPECS = [
    dg.AssetCheckSpec(
        CONTRACT_CHECK,
        asset=platform_key(table),
        description=f"The source's `{table}` table has the contract's columns; a broken contract stops "
        "this table alone (raw keeps its last load), never the other tables, dbt or the reports.",
    )
    for table in platform.TABLES
]


@dg.multi_asset(
    name=EXTRACT_STEP,
    specs=[*PLATFORM_SPECS, *MOLLIE_SPECS],
    check_specs=CONTRACT_SPECS,
    can_subset=True,
    description="The platform tables (in foreign-key order) and the Mollie sweep, side by side: the Mollie API "
    "makes us wait on the network while the platform's COPY keeps the databases busy.",
)
def extract_sources(
    context: dg.AssetExecutionContext, config: ExtractConfig, settings: BoxofficeSettings, warehouse_lock: WarehouseLock
) -> Iterator[dg.MaterializeResult]:
    s = settings.load()
    selected = context.selected_asset_keys
    tables = [t for t in platform.TABLES if platform_key(t) in selected]
    with_mollie = any(spec.key in selected for spec in MOLLIE_SPECS)
    done: queue.Queue = queue.Queue()  # results as they come, so Dagster records each table when it is loaded

    def platform_tables() -> None:
        failed: dict[str, Exception] = {}
        for table in tables:
            failed_parents = [p for p in contract.parents(table) if p in failed]
            if failed_parents:
                failed[table] = RuntimeError(f"not loaded: its parent {failed_parents[0]} failed")
                continue
            try:
                done.put(load_platform_table(context, table, s, config.full_refresh))
            except Exception as err:  # the other tables go on; the step fails at the end, naming each table
                context.log.error(f"{table}: {err}")
                failed[table] = err
        if failed:
            raise RuntimeError("; ".join(f"{table}: {err}" for table, err in failed.items()))

    ensure_schema(s.warehouse_dsn)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="extract") as pool:
        futures = [pool.submit(platform_tables)] if tables else []
        if with_mollie:
            futures.append(pool.submit(_mollie_sweep, context, s, config.full_refresh, done))
        while not all(f.done() for f in futures) or not done.empty():
            with contextlib.suppress(queue.Empty):
                result = done.get(timeout=0.2)
                if result.asset_key in selected:  # the Mollie sweep loads every Mollie table, selected or not
                    yield result
    for future in futures:
        future.result()  # a failure in either raises here, after the other has finished its work


def _mollie_sweep(context: dg.AssetExecutionContext, s, full_refresh: bool, done: queue.Queue) -> None:
    client = mollie.make_client(s.mollie_api_url, s.mollie_api_token)
    results = mollie.load_all(
        client,
        s.warehouse_dsn,
        new_batch_id(),
        progress=context.log.info,
        full_refresh=full_refresh,
        concurrency=s.mollie_concurrency,
    )
    for table, result in results.items():
        metadata = {**result.metadata(), "dagster/row_count": result.rows_read, "http_retries": client.retried}
        done.put(dg.MaterializeResult(asset_key=dg.AssetKey(["raw", table]), metadata=metadata))
