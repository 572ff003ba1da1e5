"""What the pipeline keeps in the warehouse for dbt, apart from the loaded sources: the PII salt."""

import dagster as dg

from boxoffice.settings import DEMO_PII_SALT
from boxoffice.warehouse import store_pii_salt
from orchestration.resources import BoxofficeSettings, WarehouseLock


@dg.asset(
    key=["raw", "_pii_salt"],
    group_name="extract_platform",
    kinds={"postgres"},
    description="The salt of the buyer email and IP hashes (PII_SALT), in a table only the warehouse's own user "
    "reads; dbt's pii_hash macro joins it, so no view definition or compiled SQL holds it.",
)
def pii_salt(
    context: dg.AssetExecutionContext, settings: BoxofficeSettings, warehouse_lock: WarehouseLock
) -> dg.MaterializeResult:
    s = settings.load()
    store_pii_salt(s.warehouse_dsn, s.pii_salt)
    if s.demo_salt_warning:
        context.log.warning(s.demo_salt_warning)
    return dg.MaterializeResult(
        metadata={"uses_demo_salt": s.pii_salt == DEMO_PII_SALT, "warning": s.demo_salt_warning or "none"}
    )
