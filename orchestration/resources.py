"""Resources configured from the environment (see boxoffice.settings)."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from importlib.metadata import version
from pathlib import Path
from urllib.parse import unquote, urlparse

import dagster as dg
from dagster_dbt import DbtCliResource
from packaging.version import Version
from pydantic import Field

from boxoffice.settings import Settings
from boxoffice.warehouse import run_lock

LOCK = "warehouse_lock"  # the resource key every asset that writes the warehouse requires


class BoxofficeSettings(dg.ConfigurableResource):
    """Boxoffice's settings (boxoffice/settings.py), each field named after its environment variable in lower case.
    `from_environment()` binds a field to its variable (dg.EnvVar, read when a run starts) where that is set; a
    field left empty falls back to `.env`, `.boxoffice/demo.env` and the default: the embedded server for the
    warehouse. Values are checked when a run loads them, and a bad one is a one-line error naming it."""

    warehouse_dsn: str | None = Field(default=None, description="The warehouse; empty: the embedded server")
    source_dsn: str | None = Field(default=None, description="The platform's PostgreSQL database")
    source_schema: str | None = Field(default=None, description="Its schema (public)")
    mollie_api_url: str | None = Field(default=None, description="Mollie's API base URL, without /v2")
    mollie_api_token: str | None = Field(default=None, description="An organization access token (access_...)")
    mollie_concurrency: str | None = Field(default=None, description="Mollie lists fetched at once (4)")
    reporting_timezone: str | None = Field(default=None, description="IANA time zone of the reports and marts")
    reports_dir: str | None = Field(default=None, description="Where finance's reports are written")
    pii_salt: str | None = Field(default=None, description="Salt of the buyers' hashes; a secret of your own")
    boxoffice_as_of: str | None = Field(default=None, description="The marts' 'now' (ISO); empty: the build time")
    analytics_role: str | None = Field(default=None, description="The analysts' role (analytics)")
    support_role: str | None = Field(default=None, description="The support desk's role (support)")
    extract_lookback_minutes: str | None = Field(default=None, description="Overlap of incremental extracts (15)")
    extract_chunk_rows: str | None = Field(default=None, description="Rows per extract transaction (500000)")
    run_lock_wait_seconds: str | None = Field(default=None, description="Wait for another run's lock (60)")
    dbt_work_mem_mb: str | None = Field(default=None, description="PostgreSQL work_mem of dbt's sessions (64)")
    as_of_max_age_minutes: str | None = Field(default=None, description="Rebuild clock-reading marts this often")
    partitions_start_date: str | None = Field(default=None, description="First day of the daily partitions")
    dagster_postgres_url: str | None = Field(default=None, description="Dagster's storage; empty: beside the warehouse")
    alert_webhook_url: str | None = Field(default=None, description="Slack-compatible webhook for notifications")
    alert_smtp_host: str | None = Field(default=None, description="SMTP server for notifications by email")
    alert_smtp_port: str | None = Field(default=None, description="Its port (587)")
    alert_smtp_user: str | None = Field(default=None, description="Its user")
    alert_smtp_password: str | None = Field(default=None, description="Its password")
    alert_smtp_from: str | None = Field(default=None, description="The sender")
    alert_smtp_to: str | None = Field(default=None, description="Comma-separated recipients")
    alert_smtp_starttls: str | None = Field(default=None, description="STARTTLS (true)")
    alert_cooldown_minutes: str | None = Field(default=None, description="A lasting condition alerts once per this")
    dagster_url: str | None = Field(default=None, description="The Dagster UI the notifications link to")
    metabase_url: str | None = Field(default=None, description="The Metabase the dashboards are published to")
    metabase_api_key: str | None = Field(default=None, description="Its API key (or METABASE_USER and _PASSWORD)")
    metabase_user: str | None = Field(default=None, description="Its admin's email")
    metabase_password: str | None = Field(default=None, description="Its admin's password")
    metabase_analytics_db_password: str | None = Field(default=None, description="The analytics role's login")
    metabase_support_db_password: str | None = Field(default=None, description="The support role's login")
    metabase_warehouse_host: str | None = Field(default=None, description="The warehouse's host as Metabase sees it")
    metabase_warehouse_port: str | None = Field(default=None, description="And its port")

    @classmethod
    def from_environment(cls) -> BoxofficeSettings:
        """Each field whose variable is set, bound to it: Dagster reads it when a run starts, and the UI shows
        the variable's name, never its value."""
        return cls(**{name: dg.EnvVar(name.upper()) for name in cls.model_fields if name.upper() in os.environ})

    def load(self) -> Settings:
        fields = {name.upper(): value for name, value in self.model_dump().items() if value}
        return Settings.load(fields)


class WarehouseLock(dg.ConfigurableResource):
    """Holds the warehouse for the whole run: two runs at once would race on raw's cursors and on dbt's
    relations. The jobs run in process, so this is set up once per run, before the first step, and let go
    after the last (a killed run lets go with its connection). Under a multiprocess executor every step sets it
    up in its own process: `shared` lets those hold it together (docs/deployment.md)."""

    shared: bool = Field(
        default=False,
        description="Each step holds the lock shared with the run's other steps (multiprocess executors); the run "
        "queue's limit on the tag boxoffice/warehouse keeps two runs apart, the command line's exclusive lock waits.",
    )

    settings: BoxofficeSettings

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[WarehouseLock]:
        settings = self.settings.load()
        holder = f"boxoffice run {(context.run_id or '')[:8]} pid {os.getpid()} on {socket.gethostname()}"
        with run_lock(settings.warehouse_dsn, holder, settings.run_lock_wait_seconds, shared=self.shared):
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


@contextmanager
def dbt_environment(settings: Settings) -> Iterator[None]:
    """dbt reads its settings from the environment, and dagster-dbt (like dbt's own runner) builds dbt's
    environment from os.environ with no way to pass one: the settings are there while dbt starts, then the
    environment is as it was, so nothing one run sets is seen by the next."""
    values = dbt_env(settings)
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


VENV_DBT = Path(sys.executable).parent / "dbt"


class VenvDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt CLI resource, running the dbt of this interpreter's environment (dagster-dbt only searches
    PATH, and the venv need not be activated). dagster-dbt asks that executable its version (`dbt --version`: two
    seconds of imports, and a request to PyPI) before each run's first dbt command; being this environment's
    dbt, its version is the installed dbt-core's."""

    @classmethod
    def of_this_environment(cls, project_dir, profiles_dir: str) -> VenvDbtCliResource:
        return cls(project_dir=project_dir, profiles_dir=profiles_dir, dbt_executable=str(VENV_DBT))

    @cached_property
    def _cli_version(self) -> Version:
        return Version(version("dbt-core"))
