"""Before a run: can the warehouse, the platform source and the Mollie API be reached with the settings?

Each problem is one line a person can act on (what failed, with the DSN's password masked, and what to
check), instead of a run that dies in its first step with a traceback.
"""

from __future__ import annotations

import psycopg
import requests

from boxoffice.settings import Settings, mask_dsn


class Unreachable(Exception):
    """A source or the warehouse cannot be used; the message is one line naming the setting."""


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return mask_dsn(lines[0]) if lines else type(error).__name__


def check_database(name: str, setting: str, dsn: str) -> None:
    try:
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            conn.execute("select 1")
    except psycopg.Error as err:
        raise Unreachable(f"cannot connect to {name} ({setting} {mask_dsn(dsn)}): {_first_line(err)}") from None


def check_mollie(api_url: str, token: str) -> None:
    url = f"{api_url}/v2/payments"
    try:
        response = requests.get(url, params={"limit": 1}, headers={"Authorization": f"Bearer {token}"}, timeout=15)
    except requests.RequestException as err:
        raise Unreachable(f"cannot reach the Mollie API at {api_url} (MOLLIE_API_URL): {_first_line(err)}") from None
    if response.status_code in (401, 403):
        raise Unreachable(
            f"the Mollie API at {api_url} refused MOLLIE_API_TOKEN ({response.status_code} {response.reason}): "
            "check the token and that it may read payments, settlements and balances"
        )
    if response.status_code >= 400:
        detail = response.json().get("detail", "") if "json" in response.headers.get("Content-Type", "") else ""
        raise Unreachable(f"the Mollie API at {api_url} answered {response.status_code} {response.reason} {detail}")


def check(settings: Settings) -> None:
    """Raise Unreachable with the first problem found."""
    check_database("the warehouse", "WAREHOUSE_DSN", settings.warehouse_dsn)
    check_database("the platform source", "SOURCE_DSN", settings.source_dsn)
    check_mollie(settings.mollie_api_url, settings.mollie_api_token)
