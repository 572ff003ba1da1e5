"""The analysts' Metabase dashboards as an asset downstream of the marts they read: a sync after the marts are
built (dashboards/publish.py), skipped, never failed, where no Metabase is configured."""

import dagster as dg

from dashboards import catalog
from dashboards.exposures import relations
from dashboards.publish import publish
from orchestration.resources import BoxofficeSettings

SKIPPED = "METABASE_URL is not set"
READS = sorted({dg.AssetKey([schema, table]) for d in catalog.dashboards() for schema, table in relations(d)}, key=str)


@dg.asset(
    key=["dashboards", "metabase"],
    group_name="dashboards",
    kinds={"metabase"},
    deps=READS,
    description="Metabase's connections, groups and permissions, collections, questions and dashboards, published "
    "from dashboards/catalog.py (boxoffice metabase sync); skipped where METABASE_URL is not set.",
)
def metabase_dashboards(context: dg.AssetExecutionContext, settings: BoxofficeSettings) -> dg.MaterializeResult:
    s = settings.load()
    if not s.metabase.url:
        context.log.info(f"skipped: {SKIPPED}")
        return dg.MaterializeResult(metadata={"skipped": SKIPPED})
    summary, mb = publish(s)
    metadata = {"metabase": dg.MetadataValue.url(mb.url), "calls": len(mb.calls), "writes": mb.writes()}
    metadata |= {f"{kind}s {what}": n for (kind, what), n in sorted(summary.done.items())}
    return dg.MaterializeResult(metadata=metadata)
