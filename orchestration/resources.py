"""Resources configured from the environment (see boxoffice.settings)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import unquote, urlparse

import dagster as dg

from boxoffice.settings import Settings
from boxoffice.warehouse import run_lock

LOCK = "warehouse_lock"  # the resource key every asset that writes the warehouse requires


class BoxofficeSettings(dg.ConfigurableResource):
    """Settings resolved at run time: env > .env > .boxoffice/demo.env; the embedded server by default."""

    def load(self) -> Settings:
        return Settings.load()

    def warehouse_dsn(self) -> str:
        return self.load().warehouse_dsn


class WarehouseLock(dg.ConfigurableResource):
    """Holds the warehouse for the whole run: two runs at once would race on raw's cursors and on dbt's
    relations. The jobs run in process, so this is set up once per run, before the first step, and let go
    after the last (a killed run lets go with its connection)."""

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[WarehouseLock]:
        settings = Settings.load()
        holder = f"boxoffice run {(context.run_id or '')[:8]} pid {os.getpid()} on {socket.gethostname()}"
        with run_lock(settings.warehouse_dsn, holder, settings.run_lock_wait_seconds):
            yield self


def dbt_env(settings: Settings) -> dict[str, str]:
    """What dbt reads from its environment (profiles.yml and dbt_project.yml), from the settings: the
    connection and its work_mem, the reporting time zone, the as-of instant (normalised to ISO with its
    offset) and the roles.
    The PII salt is not among them: it never enters SQL text (see the build_settings asset)."""
    url = urlparse(settings.warehouse_dsn)
    return {
        "BOXOFFICE_DBT_HOST": url.hostname or "127.0.0.1",
        "BOXOFFICE_DBT_PORT": str(url.port or 5432),
        "BOXOFFICE_DBT_USER": unquote(url.username or "postgres"),
        "BOXOFFICE_DBT_PASSWORD": unquote(url.password or ""),
        "BOXOFFICE_DBT_DBNAME": url.path.lstrip("/"),
        "REPORTING_TIMEZONE": settings.reporting_timezone,
        "BOXOFFICE_AS_OF": settings.as_of.isoformat() if settings.as_of else "",
        "ANALYTICS_ROLE": settings.analytics_role,
        "SUPPORT_ROLE": settings.support_role,
        # libpq's session options (dbt-postgres has no setting for them), after any the user set
        "PGOPTIONS": f"{os.environ.get('PGOPTIONS', '')} -c work_mem={settings.dbt_work_mem_mb}MB".strip(),
    }


def export_dbt_env(settings: Settings) -> None:
    os.environ.update(dbt_env(settings))
