"""Resources configured from the environment (see boxoffice.settings)."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlparse

import dagster as dg

from boxoffice.settings import Settings


class BoxofficeSettings(dg.ConfigurableResource):
    """Settings resolved at run time: env > .env > .boxoffice/demo.env; the embedded server by default."""

    def load(self) -> Settings:
        return Settings.load()

    def warehouse_dsn(self) -> str:
        return self.load().warehouse_dsn


def dbt_env(dsn: str) -> dict[str, str]:
    """The profile variables of dbt_project/profiles.yml for a PostgreSQL DSN."""
    url = urlparse(dsn)
    return {
        "BOXOFFICE_DBT_HOST": url.hostname or "127.0.0.1",
        "BOXOFFICE_DBT_PORT": str(url.port or 5432),
        "BOXOFFICE_DBT_USER": unquote(url.username or "postgres"),
        "BOXOFFICE_DBT_PASSWORD": unquote(url.password or ""),
        "BOXOFFICE_DBT_DBNAME": url.path.lstrip("/"),
    }


def export_dbt_env(dsn: str) -> None:
    os.environ.update(dbt_env(dsn))
