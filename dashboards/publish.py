"""`boxoffice metabase sync` and the asset dashboards/metabase: the settings turned into a sync (dashboards/sync.py),
with the reader roles given their login first where a password for Metabase is set."""

from __future__ import annotations

from urllib.parse import urlparse

import psycopg
from psycopg import sql

from boxoffice import dbt_project
from boxoffice.settings import Settings, SettingsError
from dashboards import catalog
from dashboards.client import Credentials, Metabase
from dashboards.spec import check
from dashboards.sync import Summary, Warehouse, sync


def warehouse_for_metabase(settings: Settings) -> Warehouse:
    """The warehouse as Metabase reaches it: METABASE_WAREHOUSE_HOST/PORT where Metabase runs elsewhere (a
    container), else the warehouse's own host and port."""
    url, m = urlparse(settings.warehouse_dsn), settings.metabase
    return Warehouse(
        host=m.warehouse_host or url.hostname or "127.0.0.1",
        port=m.warehouse_port or url.port or 5432,
        dbname=url.path.lstrip("/"),
        roles={"analytics": settings.analytics_role, "support": settings.support_role},
        passwords={"analytics": m.analytics_db_password, "support": m.support_db_password},
    )


def grant_logins(settings: Settings) -> list[str]:
    """The reader roles Metabase connects as get LOGIN and their password, each only when its password is set."""
    m, granted = settings.metabase, []
    with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
        for role, password in (
            (settings.analytics_role, m.analytics_db_password),
            (settings.support_role, m.support_db_password),
        ):
            if password:
                conn.execute(
                    sql.SQL("alter role {} login password {}").format(sql.Identifier(role), sql.Literal(password))
                )
                granted.append(role)
    return granted


def credentials(settings: Settings) -> Credentials:
    m = settings.metabase
    if not m.url:
        raise SettingsError("METABASE_URL is not set: the Metabase to publish the dashboards to")
    if not (m.api_key or (m.user and m.password)):
        raise SettingsError("METABASE_API_KEY, or METABASE_USER and METABASE_PASSWORD, must be set for METABASE_URL")
    return Credentials(m.url, m.api_key, m.user, m.password)


def publish(settings: Settings) -> tuple[Summary, Metabase]:
    dashboards = catalog.dashboards()
    check(dashboards)
    mb = Metabase(credentials(settings))
    grant_logins(settings)
    return sync(mb, warehouse_for_metabase(settings), dashboards, dbt_project.ensure_manifest()), mb
