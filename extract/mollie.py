"""The Mollie API v2 -> raw.mollie_* through the official `mollie-api-python` client.

Each object is kept whole as `payload` (jsonb) beside its key columns, so nothing Mollie sent is lost;
staging models type the fields. Lists are followed through `_links.next` to the end.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from mollie.api.client import Client
from mollie.api.objects.balance import Balance
from mollie.api.objects.settlement import Settlement
from psycopg.types.json import Jsonb

from extract.raw import LoadResult, write_rows

log = logging.getLogger(__name__)

ID = ("id", "text not null")
PAYLOAD = ("payload", "jsonb not null")
# raw table -> (columns, primary key)
TABLES: dict[str, tuple[list[tuple[str, str]], list[str]]] = {
    "mollie_payments": ([ID, PAYLOAD], ["id"]),
    "mollie_refunds": ([ID, PAYLOAD], ["id"]),
    "mollie_chargebacks": ([ID, PAYLOAD], ["id"]),
    "mollie_settlements": ([ID, PAYLOAD], ["id"]),
    "mollie_settlement_payments": ([("settlement_id", "text not null"), ID, PAYLOAD], ["settlement_id", "id"]),
    "mollie_settlement_refunds": ([("settlement_id", "text not null"), ID, PAYLOAD], ["settlement_id", "id"]),
    "mollie_settlement_chargebacks": ([("settlement_id", "text not null"), ID, PAYLOAD], ["settlement_id", "id"]),
    "mollie_settlement_captures": ([("settlement_id", "text not null"), ID, PAYLOAD], ["settlement_id", "id"]),
    "mollie_balances": ([ID, PAYLOAD], ["id"]),
    "mollie_balance_transactions": ([("balance_id", "text not null"), ID, PAYLOAD], ["balance_id", "id"]),
}
PAGE_SIZE = 250
RETRY_STATUSES = {429, 500, 502, 503, 504}


class RetryingClient(Client):
    """The official client, plus retries with backoff on 429 (honouring Retry-After), 5xx and timeouts."""

    def __init__(self, api_endpoint: str, attempts: int = 6, backoff: float = 0.5, **kwargs):
        super().__init__(api_endpoint=api_endpoint, timeout=(5, 60), **kwargs)
        self.attempts = attempts
        self.backoff = backoff
        self.retried = 0

    def perform_http_call(self, http_method, path, data=None, params=None, idempotency_key=""):
        from mollie.api.error import RequestError

        for attempt in range(1, self.attempts + 1):
            try:
                response = super().perform_http_call(http_method, path, data, params, idempotency_key)
            except RequestError:  # connection errors and timeouts
                if attempt == self.attempts:
                    raise
                self._sleep(attempt, None)
                continue
            if response.status_code not in RETRY_STATUSES or attempt == self.attempts:
                return response
            self._sleep(attempt, response.headers.get("Retry-After"))
        raise AssertionError("unreachable")

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        self.retried += 1
        delay = self.backoff * 2 ** (attempt - 1)
        if retry_after:
            try:
                delay = max(delay, float(retry_after))
            except ValueError:
                when = email.utils.parsedate_to_datetime(retry_after)
                delay = max(delay, (when - datetime.now(UTC)).total_seconds())
        log.warning("Mollie answered with a retryable error; retry %s in %.1fs", attempt, delay)
        time.sleep(min(delay, 60))


def make_client(api_url: str, token: str, **kwargs) -> RetryingClient:
    client = RetryingClient(api_endpoint=api_url, **kwargs)
    if token.startswith("access_"):
        client.set_access_token(token)
    else:
        client.set_api_key(token)
    return client


def iterate(first_page) -> Iterator[dict]:
    """Every object of a paginated list, following `_links.next`."""
    page = first_page
    while True:
        for item in page:
            yield {k: v for k, v in item.items()}
        if not page.has_next():
            return
        page = page.get_next()


def _rows(objects: Iterator[dict], *parent: str) -> Iterator[tuple]:
    for obj in objects:
        yield (*parent, obj["id"], Jsonb(obj))


def load_all(client: Client, warehouse_dsn: str, batch_id: str,
             progress: Callable[[str], None] = lambda _: None) -> dict[str, LoadResult]:  # fmt: skip
    """Sweep every list this warehouse needs. Returns one LoadResult per raw table."""
    results: dict[str, LoadResult] = {}

    def write(table: str, rows: Iterator[tuple]) -> None:
        columns, key = TABLES[table]
        results[table] = write_rows(warehouse_dsn, table, columns, key, rows, batch_id)
        progress(f"{table}: {results[table].rows_read} read, {results[table].rows_written} written")

    write("mollie_payments", _rows(iterate(client.payments.list(limit=PAGE_SIZE))))
    write("mollie_refunds", _rows(iterate(client.refunds.list(limit=PAGE_SIZE))))
    write("mollie_chargebacks", _rows(iterate(client.chargebacks.list(limit=PAGE_SIZE))))

    settlements = list(iterate(client.settlements.list(limit=PAGE_SIZE)))
    write("mollie_settlements", _rows(iter(settlements)))
    for sub in ("payments", "refunds", "chargebacks", "captures"):

        def children(sub=sub) -> Iterator[tuple]:
            for settlement in settlements:
                resource = getattr(Settlement(settlement, client), sub)
                yield from _rows(iterate(resource.list(limit=PAGE_SIZE)), settlement["id"])

        write(f"mollie_settlement_{sub}", children())

    balances = list(iterate(client.balances.list(limit=PAGE_SIZE)))
    write("mollie_balances", _rows(iter(balances)))

    def transactions() -> Iterator[tuple]:
        for balance in balances:
            yield from _rows(iterate(Balance(balance, client).get_transactions(limit=PAGE_SIZE)), balance["id"])

    write("mollie_balance_transactions", transactions())
    return results
