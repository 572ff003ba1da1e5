"""Settings from the environment, an optional `.env`, and the demo's `.boxoffice/demo.env`.

Precedence: process environment > `.env` in the project folder > `.boxoffice/demo.env` (written by
`boxoffice demo`). A missing or malformed setting raises `SettingsError` with a one-line message that
names it; the CLI prints that line instead of a traceback.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

PROJECT_DIR = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = PROJECT_DIR / "dbt_project"

DEFAULT_TIMEZONE = "Europe/Amsterdam"  # the reporting time zone unless REPORTING_TIMEZONE says otherwise
# PostgreSQL's work_mem for dbt's sessions: at its default (4 MB) the marts' group-bys and sorts over a million
# orders spill to disk; dbt runs 4 threads, so a query of a few such nodes stays well under a gigabyte
DEFAULT_DBT_WORK_MEM_MB = 64
# The marts that read the clock (KPI periods, 24 h windows, churn) say "as of" when they were built; with no
# source change a build redoes them only once they are this old (or the reporting day has turned)
DEFAULT_AS_OF_MAX_AGE_MINUTES = 60
DEFAULT_MOLLIE_CONCURRENCY = 4  # Mollie lists fetched at once; a 429 backs off (Retry-After) whatever the number
DEFAULT_PARTITIONS_START = "2024-01-01"  # the first day of the daily partitions (a backfill reaches back to it)
DEMO_PII_SALT = "boxoffice-demo-salt"  # the demo's; a warehouse of real buyers must set PII_SALT
TOKEN_PATTERN = re.compile(r"^(access|live|test)_\w{5,}$")


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line and names the setting."""


class ArgumentError(Exception):
    """A command's argument is malformed or names nothing there is; the message is one line naming it."""


def home_dir() -> Path:
    """Where the embedded server, the Dagster instance and the demo's state live."""
    return Path(os.environ.get("BOXOFFICE_HOME") or PROJECT_DIR / ".boxoffice").resolve()


def _layered_environment() -> dict[str, str]:
    values: dict[str, str] = {}
    for path in (home_dir() / "demo.env", PROJECT_DIR / ".env"):
        if path.exists():
            values.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    values.update(os.environ)
    return values


_URL_PASSWORD = re.compile(r"(\b[a-z][\w+.-]*://[^:/@\s'\"]*:)[^@\s'\"]*@", re.IGNORECASE)
_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def mask_dsn(text: str) -> str:
    """Any connection string in `text` with its password replaced by ***: URLs and key=value DSNs alike."""
    return _KEYWORD_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))


def _check_dsn(name: str, value: str) -> str:
    try:
        parsed = urlparse(value)
        ok = parsed.scheme in ("postgresql", "postgres") and bool((parsed.path or "").strip("/")) and parsed.port != 0
    except ValueError:  # e.g. a port that is not a number
        ok = False
    if not ok:
        raise SettingsError(
            f"{name} is malformed: expected postgresql://user:password@host:port/dbname, got {mask_dsn(value)!r}"
        )
    return value


def _parse_date(var: str, value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise SettingsError(f"{var} is malformed: expected a date such as 2024-01-01, got {value!r}") from None


def _parse_as_of(value: str | None) -> datetime | None:
    """BOXOFFICE_AS_OF: an ISO timestamp (a date alone is its midnight); without a zone it is UTC."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise SettingsError(
            f"BOXOFFICE_AS_OF is malformed: expected an ISO timestamp such as 2026-11-01T12:00:00+00:00, got {value!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class AlertSettings:
    """Where notifications go (boxoffice/alerts.py): a Slack-compatible webhook and/or email; always the alert log."""

    log_path: Path
    webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "boxoffice@localhost"
    smtp_to: tuple[str, ...] = ()
    smtp_starttls: bool = True
    cooldown_minutes: int = 60  # a condition that lasts is notified once per this
    dagster_url: str = "http://127.0.0.1:3000"  # the notifications link to the run there

    @classmethod
    def load(cls, env: dict[str, str], home: Path) -> AlertSettings:
        urls = {}
        for var, default in (("ALERT_WEBHOOK_URL", ""), ("DAGSTER_URL", "http://127.0.0.1:3000")):
            value = (env.get(var) or default).rstrip("/")
            parsed = urlparse(value)
            if value and (parsed.scheme not in ("http", "https") or not parsed.netloc):
                raise SettingsError(f"{var} is malformed: expected an http(s):// URL, got {value!r}")
            urls[var] = value or None
        ints = {}
        for var, default in (("ALERT_SMTP_PORT", 587), ("ALERT_COOLDOWN_MINUTES", 60)):
            raw = env.get(var) or str(default)
            if not raw.isdigit():
                raise SettingsError(f"{var} is malformed: expected a whole number, got {raw!r}")
            ints[var] = int(raw)
        host = env.get("ALERT_SMTP_HOST") or None
        to = tuple(a.strip() for a in (env.get("ALERT_SMTP_TO") or "").split(",") if a.strip())
        if host and not to:
            raise SettingsError("ALERT_SMTP_TO is not set: ALERT_SMTP_HOST needs the addresses to send to")
        if any("@" not in a for a in to):
            raise SettingsError(f"ALERT_SMTP_TO is malformed: expected comma-separated email addresses, got {to!r}")
        return cls(
            log_path=home / "alerts.log",
            webhook_url=urls["ALERT_WEBHOOK_URL"],
            smtp_host=host,
            smtp_port=ints["ALERT_SMTP_PORT"],
            smtp_user=env.get("ALERT_SMTP_USER") or None,
            smtp_password=env.get("ALERT_SMTP_PASSWORD") or None,
            smtp_from=env.get("ALERT_SMTP_FROM") or "boxoffice@localhost",
            smtp_to=to,
            smtp_starttls=(env.get("ALERT_SMTP_STARTTLS") or "true").lower() not in ("0", "false", "no"),
            cooldown_minutes=ints["ALERT_COOLDOWN_MINUTES"],
            dagster_url=urls["DAGSTER_URL"],
        )


@dataclass(frozen=True)
class MetabaseSettings:
    """Where the dashboards are published (dashboards/publish.py): the Metabase, how to log in, and how Metabase
    reaches the warehouse as the reader roles."""

    url: str | None = None
    api_key: str | None = None
    user: str | None = None
    password: str | None = None
    analytics_db_password: str | None = None  # the analytics role's login, given only when set
    support_db_password: str | None = None
    warehouse_host: str | None = None  # the warehouse's host as Metabase sees it (a container: host.docker.internal)
    warehouse_port: int | None = None

    @classmethod
    def load(cls, env: Mapping[str, str]) -> MetabaseSettings:
        url = (env.get("METABASE_URL") or "").rstrip("/") or None
        if url and (urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc):
            raise SettingsError(f"METABASE_URL is malformed: expected http(s)://host[:port], got {url!r}")
        port = env.get("METABASE_WAREHOUSE_PORT") or None
        if port is not None and not port.isdigit():
            raise SettingsError(f"METABASE_WAREHOUSE_PORT is malformed: expected a port number, got {port!r}")
        return cls(
            url=url,
            api_key=env.get("METABASE_API_KEY") or None,
            user=env.get("METABASE_USER") or None,
            password=env.get("METABASE_PASSWORD") or None,
            analytics_db_password=env.get("METABASE_ANALYTICS_DB_PASSWORD") or None,
            support_db_password=env.get("METABASE_SUPPORT_DB_PASSWORD") or None,
            warehouse_host=env.get("METABASE_WAREHOUSE_HOST") or None,
            warehouse_port=int(port) if port else None,
        )


@dataclass(frozen=True)
class Settings:
    warehouse_dsn_override: str | None = None
    source_dsn_value: str | None = None
    source_schema: str = "public"
    mollie_api_url: str = "https://api.mollie.com"
    mollie_api_token_value: str | None = None
    reporting_timezone: str = DEFAULT_TIMEZONE
    reports_dir: Path = field(default_factory=lambda: PROJECT_DIR / "reports")
    home: Path = field(default_factory=home_dir)
    extract_lookback_minutes: int = 15
    extract_chunk_rows: int = 500_000
    pii_salt: str = DEMO_PII_SALT
    as_of: datetime | None = None  # the marts' "now"; None: the build time
    analytics_role: str = "analytics"
    support_role: str = "support"
    run_lock_wait_seconds: int = 60
    mollie_concurrency: int = DEFAULT_MOLLIE_CONCURRENCY
    dbt_work_mem_mb: int = DEFAULT_DBT_WORK_MEM_MB
    as_of_max_age_minutes: int = DEFAULT_AS_OF_MAX_AGE_MINUTES  # as-of marts are rebuilt at least this often
    alerts: AlertSettings | None = None  # None: the defaults, the alert log in `home`
    # DAGSTER_POSTGRES_URL; None: a database `dagster` beside the warehouse (dagster_storage_dsn)
    dagster_storage_dsn_override: str | None = None
    partitions_start: date = date.fromisoformat(DEFAULT_PARTITIONS_START)  # PARTITIONS_START_DATE
    metabase: MetabaseSettings = field(default_factory=MetabaseSettings)

    @classmethod
    def load(cls, overrides: Mapping[str, str] | None = None) -> Settings:
        """The settings from the environment (see the module); `overrides` (variable name -> value, e.g. the
        Dagster resource's fields) come first."""
        env = {**_layered_environment(), **(overrides or {})}
        warehouse = env.get("WAREHOUSE_DSN") or None
        if warehouse:
            _check_dsn("WAREHOUSE_DSN", warehouse)
        source = env.get("SOURCE_DSN") or None
        if source:
            _check_dsn("SOURCE_DSN", source)
        schema = env.get("SOURCE_SCHEMA") or "public"
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", schema):
            raise SettingsError(f"SOURCE_SCHEMA is malformed: {schema!r} is not a schema name")
        url = (env.get("MOLLIE_API_URL") or "https://api.mollie.com").rstrip("/")
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise SettingsError(f"MOLLIE_API_URL is malformed: expected http(s)://host[:port], got {url!r}")
        if url.endswith("/v2"):
            raise SettingsError("MOLLIE_API_URL must be the base URL without /v2 (the client appends it)")
        token = env.get("MOLLIE_API_TOKEN") or None
        if token and not TOKEN_PATTERN.match(token):
            raise SettingsError("MOLLIE_API_TOKEN is malformed: expected an access_..., live_... or test_... token")
        tz = env.get("REPORTING_TIMEZONE") or DEFAULT_TIMEZONE
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"REPORTING_TIMEZONE is malformed: {tz!r} is not an IANA time zone") from None
        reports = Path(env.get("REPORTS_DIR") or "reports")
        if not reports.is_absolute():
            reports = PROJECT_DIR / reports
        ints = {}
        for var, default, minimum in (
            ("EXTRACT_LOOKBACK_MINUTES", 15, 0),
            ("EXTRACT_CHUNK_ROWS", 500_000, 1),
            ("RUN_LOCK_WAIT_SECONDS", 60, 0),
            ("MOLLIE_CONCURRENCY", DEFAULT_MOLLIE_CONCURRENCY, 1),
            ("DBT_WORK_MEM_MB", DEFAULT_DBT_WORK_MEM_MB, 1),
            ("AS_OF_MAX_AGE_MINUTES", DEFAULT_AS_OF_MAX_AGE_MINUTES, 0),
        ):
            raw = env.get(var) or str(default)
            if not raw.isdigit() or int(raw) < minimum:
                raise SettingsError(f"{var} is malformed: expected a whole number >= {minimum}, got {raw!r}")
            ints[var] = int(raw)
        roles = {}
        for var, default in (("ANALYTICS_ROLE", "analytics"), ("SUPPORT_ROLE", "support")):
            roles[var] = env.get(var) or default
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", roles[var]):
                raise SettingsError(f"{var} is malformed: {roles[var]!r} is not a lowercase role name")
        return cls(
            pii_salt=env.get("PII_SALT") or DEMO_PII_SALT,
            as_of=_parse_as_of(env.get("BOXOFFICE_AS_OF")),
            analytics_role=roles["ANALYTICS_ROLE"],
            support_role=roles["SUPPORT_ROLE"],
            run_lock_wait_seconds=ints["RUN_LOCK_WAIT_SECONDS"],
            mollie_concurrency=ints["MOLLIE_CONCURRENCY"],
            dbt_work_mem_mb=ints["DBT_WORK_MEM_MB"],
            as_of_max_age_minutes=ints["AS_OF_MAX_AGE_MINUTES"],
            extract_lookback_minutes=ints["EXTRACT_LOOKBACK_MINUTES"],
            extract_chunk_rows=ints["EXTRACT_CHUNK_ROWS"],
            warehouse_dsn_override=warehouse,
            source_dsn_value=source,
            source_schema=schema,
            mollie_api_url=url,
            mollie_api_token_value=token,
            reporting_timezone=tz,
            reports_dir=reports,
            partitions_start=_parse_date(
                "PARTITIONS_START_DATE", env.get("PARTITIONS_START_DATE") or DEFAULT_PARTITIONS_START
            ),
            alerts=AlertSettings.load(env, home_dir()),
            metabase=MetabaseSettings.load(env),
            dagster_storage_dsn_override=_check_dsn("DAGSTER_POSTGRES_URL", env["DAGSTER_POSTGRES_URL"])
            if env.get("DAGSTER_POSTGRES_URL")
            else None,
        )

    def require_sources(self) -> None:
        """Fail fast, before a run starts, on the settings every run needs."""
        _ = self.source_dsn, self.mollie_api_token

    @property
    def embedded(self) -> bool:
        return self.warehouse_dsn_override is None

    @property
    def demo_salt_warning(self) -> str | None:
        """The demo's PII salt on a warehouse of one's own: anyone with the code can reverse the hashes."""
        if self.pii_salt != DEMO_PII_SALT or self.embedded:
            return None
        return (
            "PII_SALT is the demo's default on a warehouse of your own (WAREHOUSE_DSN): anyone with this code can "
            "reverse the buyer hashes. Set PII_SALT to a secret of your own."
        )

    @cached_property
    def warehouse_dsn(self) -> str:
        """The warehouse DSN; starts the embedded server when WAREHOUSE_DSN is unset (once per Settings)."""
        if self.warehouse_dsn_override:
            return self.warehouse_dsn_override
        from boxoffice.warehouse import WAREHOUSE_DB, EmbeddedServer

        return EmbeddedServer(self.home).ensure_database(WAREHOUSE_DB)

    @cached_property
    def dagster_storage_dsn(self) -> str:
        """Where Dagster keeps runs, events and schedules (dagster.yaml: dagster-postgres), so the webserver, the
        daemon and every run share them: DAGSTER_POSTGRES_URL, else a database `dagster` beside the warehouse."""
        if self.dagster_storage_dsn_override:
            return self.dagster_storage_dsn_override
        from boxoffice.warehouse import DAGSTER_DB, EmbeddedServer, database_beside

        if self.embedded:
            return EmbeddedServer(self.home).ensure_database(DAGSTER_DB)
        try:
            return database_beside(self.warehouse_dsn, DAGSTER_DB)
        except Exception as err:  # e.g. no CREATEDB: the one line says what to set
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise SettingsError(
                f"DAGSTER_POSTGRES_URL is not set and database {DAGSTER_DB!r} cannot be made beside the warehouse: "
                f"{first}"
            ) from None

    @property
    def source_dsn(self) -> str:
        if not self.source_dsn_value:
            raise SettingsError("SOURCE_DSN is not set: point it at the platform database, or run `boxoffice demo`")
        return self.source_dsn_value

    @property
    def mollie_api_token(self) -> str:
        if not self.mollie_api_token_value:
            raise SettingsError(
                "MOLLIE_API_TOKEN is not set: use an organization access token (access_...), or run `boxoffice demo`"
            )
        return self.mollie_api_token_value
