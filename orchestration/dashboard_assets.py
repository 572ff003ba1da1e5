"""The analysts' Metabase dashboards as assets downstream of the marts they read: dashboards/metabase (the sync:
connections, permissions, data model, collections) and one asset per dashboard with the marts its cards read, all
materialized by one sync after the marts are built (dashboards/publish.py); skipped, never failed, where no
Metabase is configured."""

from collections.abc import Iterator

import dagster as dg

from dashboards import catalog
from dashboards.exposures import relations, slug
from dashboards.publish import publish
from orchestration.resources import BoxofficeSettings

SKIPPED = "METABASE_URL is not set"
SYNC_KEY = dg.AssetKey(["dashboards", "metabase"])


def _reads(dashboard) -> list[dg.AssetKey]:
    return [dg.AssetKey([schema, table]) for schema, table in relations(dashboard)]


DASHBOARDS = {dg.AssetKey(["dashboards", slug(d.name)]): d for d in catalog.dashboards()}
SPECS = [
    dg.AssetSpec(
        SYNC_KEY,
        deps=sorted({key for d in DASHBOARDS.values() for key in _reads(d)}, key=str),
        group_name="dashboards",
        kinds={"metabase"},
        description="Metabase's connections, groups and permissions, data model and collections, and every "
        "dashboard of dashboards/catalog.py (boxoffice metabase sync); skipped where METABASE_URL is not set.",
    ),
    *(
        dg.AssetSpec(
            key,
            deps=_reads(d),
            group_name="dashboards",
            kinds={"metabase"},
            description=f"{d.name}: {d.description}",
            metadata={"collection": d.collection, "cards": len(d.cards), "connection": d.connection.name},
        )
        for key, d in DASHBOARDS.items()
    ),
]


@dg.multi_asset(specs=SPECS, name="metabase_dashboards")
def metabase_dashboards(
    context: dg.AssetExecutionContext, settings: BoxofficeSettings
) -> Iterator[dg.MaterializeResult]:
    s = settings.load()
    if not s.metabase.url:
        context.log.info(f"skipped: {SKIPPED}")
        for spec in SPECS:
            yield dg.MaterializeResult(asset_key=spec.key, metadata={"skipped": SKIPPED})
        return
    summary, mb = publish(s)
    metadata = {"metabase": dg.MetadataValue.url(mb.url), "calls": len(mb.calls), "writes": mb.writes()}
    metadata |= {f"{kind}s {what}": n for (kind, what), n in sorted(summary.done.items())}
    yield dg.MaterializeResult(asset_key=SYNC_KEY, metadata=metadata)
    for key in DASHBOARDS:
        yield dg.MaterializeResult(asset_key=key, metadata={"metabase": dg.MetadataValue.url(mb.url)})
