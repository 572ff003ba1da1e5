"""What the pipeline keeps in the warehouse for dbt, apart from the loaded sources: the settings the marts are
built with (the PII salt among them)."""

import dagster as dg

from boxoffice.settings import DEMO_PII_SALT
from boxoffice.warehouse import BUILD_SETTINGS, store_build_settings
from orchestration.resources import BoxofficeSettings, WarehouseLock


@dg.asset(
    key=["raw", BUILD_SETTINGS],
    group_name="extract_platform",
    kinds={"postgres"},
    description="The settings the marts are built with: the salt of the buyer email and IP hashes (PII_SALT) and "
    "the reporting time zone, in a table only the warehouse's own user reads. dbt's pii_hash macro joins the salt, "
    "so no view definition or compiled SQL holds it; a changed value makes incremental models rebuild.",
)
def build_settings(
    context: dg.AssetExecutionContext, settings: BoxofficeSettings, warehouse_lock: WarehouseLock
) -> dg.MaterializeResult:
    s = settings.load()
    changed = store_build_settings(
        s.warehouse_dsn, {"pii_salt": s.pii_salt, "reporting_timezone": s.reporting_timezone}
    )
    if s.demo_salt_warning:
        context.log.warning(s.demo_salt_warning)
    return dg.MaterializeResult(
        metadata={
            "uses_demo_salt": s.pii_salt == DEMO_PII_SALT,
            "warning": s.demo_salt_warning or "none",
            "changed": ", ".join(changed) or "none",
        }
    )
