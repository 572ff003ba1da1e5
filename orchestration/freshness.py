"""Source freshness, the Dagster way: each extracted raw table's dbt source freshness (its `loaded_at_field`
against the `warn_after` and `error_after` of dbt_project.yml and the sources' YAML) as the check
`source_freshness` on its extract asset, run with every load. A stale source warns; it never stops a run.
(The marts' freshness is a Dagster freshness policy from their dbt meta: orchestration/dbt_assets.py.)"""

from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg

from boxoffice import dbt_project
from orchestration.extract_assets import MOLLIE_SPECS, PLATFORM_SPECS
from orchestration.resources import BoxofficeSettings

SOURCE_CHECK = "source_freshness"
PERIODS = {"minute": "minutes", "hour": "hours", "day": "days"}
EXTRACTED = {spec.key for spec in (*PLATFORM_SPECS, *MOLLIE_SPECS)}


def _after(rule: dict | None) -> timedelta | None:
    if not rule or rule.get("count") is None:
        return None
    return timedelta(**{PERIODS[rule["period"]]: rule["count"]})


def extracted_sources() -> dict[dg.AssetKey, dict]:
    """The dbt sources behind the extract's assets (raw/<identifier>), as the manifest describes them."""
    sources = dbt_project.manifest()["sources"].values()
    by_key = {dg.AssetKey(["raw", s["identifier"]]): s for s in sources}
    return {key: source for key, source in by_key.items() if key in EXTRACTED}


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            SOURCE_CHECK,
            asset=key,
            blocking=False,
            description="dbt source freshness: the newest row loaded is younger than warn_after (stale warns).",
        )
        for key in sorted(extracted_sources(), key=str)
    ],
    can_subset=True,
)
def source_freshness(context: dg.AssetCheckExecutionContext, settings: BoxofficeSettings):
    s, sources, now = settings.load(), extracted_sources(), datetime.now(UTC)
    with psycopg.connect(s.warehouse_dsn) as conn:
        for check in context.selected_asset_check_keys:
            source = sources[check.asset_key]
            config = source.get("freshness") or {}
            newest = dbt_project.newest_loaded_at(conn, source)
            age = now - newest if newest else None
            warn, error = _after(config.get("warn_after")), _after(config.get("error_after"))
            # an empty table is not stale: the source has no such rows (e.g. no Klarna captures at Mollie)
            stale = age is not None and ((warn is not None and age > warn) or (error is not None and age > error))
            yield dg.AssetCheckResult(
                asset_key=check.asset_key,
                check_name=SOURCE_CHECK,
                passed=not stale,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "newest_loaded_at": newest.isoformat() if newest else "no rows",
                    "age_hours": round(age.total_seconds() / 3600, 2) if age else -1,
                    "warn_after": str(warn),
                },
            )
