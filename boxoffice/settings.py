"""Settings from the environment, an optional `.env`, and the demo's `.boxoffice/demo.env`.

Precedence: process environment > `.env` in the project folder > `.boxoffice/demo.env` (written by
`boxoffice demo`). A missing or malformed setting raises `SettingsError` with a one-line message that
names it; the CLI prints that line instead of a traceback.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

PROJECT_DIR = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = PROJECT_DIR / "dbt_project"

# The network is closed and telemetry calls hang: switch it off before any tool is imported.
for _var, _value in {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "DAGSTER_DISABLE_TELEMETRY": "true",
}.items():
    os.environ.setdefault(_var, _value)

DEFAULT_TIMEZONE = "Europe/Amsterdam"  # the reporting time zone unless REPORTING_TIMEZONE says otherwise
TOKEN_PATTERN = re.compile(r"^(access|live|test)_\w{5,}$")


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line and names the setting."""


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


def _check_dsn(name: str, value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("postgresql", "postgres") or not (parsed.path or "").strip("/"):
        raise SettingsError(f"{name} is malformed: expected postgresql://user:password@host:port/dbname, got {value!r}")
    return value


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

    @classmethod
    def load(cls) -> Settings:
        env = _layered_environment()
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
        for var, default, minimum in (("EXTRACT_LOOKBACK_MINUTES", 15, 0), ("EXTRACT_CHUNK_ROWS", 500_000, 1)):
            raw = env.get(var) or str(default)
            if not raw.isdigit() or int(raw) < minimum:
                raise SettingsError(f"{var} is malformed: expected a whole number >= {minimum}, got {raw!r}")
            ints[var] = int(raw)
        return cls(
            extract_lookback_minutes=ints["EXTRACT_LOOKBACK_MINUTES"],
            extract_chunk_rows=ints["EXTRACT_CHUNK_ROWS"],
            warehouse_dsn_override=warehouse,
            source_dsn_value=source,
            source_schema=schema,
            mollie_api_url=url,
            mollie_api_token_value=token,
            reporting_timezone=tz,
            reports_dir=reports,
        )

    def require_sources(self) -> None:
        """Fail fast, before a run starts, on the settings every run needs."""
        _ = self.source_dsn, self.mollie_api_token

    @property
    def embedded(self) -> bool:
        return self.warehouse_dsn_override is None

    @cached_property
    def warehouse_dsn(self) -> str:
        """The warehouse DSN; starts the embedded server when WAREHOUSE_DSN is unset (once per Settings)."""
        if self.warehouse_dsn_override:
            return self.warehouse_dsn_override
        from boxoffice.warehouse import EmbeddedServer

        return EmbeddedServer(self.home).ensure_database("warehouse")

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
