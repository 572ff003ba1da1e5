"""The Mollie API v2 -> raw.mollie_* through the official `mollie-api-python` client.

Each object is kept whole as `payload` (jsonb) beside its key columns, so nothing Mollie sent is lost;
staging models type the fields. Lists are followed through `_links.next` to the end.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial

import psycopg
from mollie.api.client import Client
from mollie.api.objects.balance import Balance
from mollie.api.objects.settlement import Settlement
from psycopg.types.json import Jsonb

from boxoffice.settings import DEFAULT_MOLLIE_CONCURRENCY
from extract.raw import LoadResult, analyze, ensure_indexes, ensure_table, write_rows

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
# Keys inside the payload that the marts look rows up by, indexed in raw: (index name, expression).
PAYLOAD_INDEXES = {
    "mollie_balance_transactions": {"payment_id": "(payload -> 'context') ->> 'paymentId'"},
    "mollie_refunds": {"payment_id": "payload ->> 'paymentId'"},
    "mollie_chargebacks": {"payment_id": "payload ->> 'paymentId'"},
    "mollie_settlement_refunds": {"payment_id": "payload ->> 'paymentId'"},
    "mollie_settlement_chargebacks": {"payment_id": "payload ->> 'paymentId'"},
    "mollie_settlement_captures": {"payment_id": "payload ->> 'paymentId'"},
}


def raw_indexes(table: str) -> dict[str, str]:
    """A table keyed by (parent, id) is also looked up by the object's id alone (a settlement's payment by
    the payment's id); and by the keys inside its payload."""
    indexes = {"id": "id"} if TABLES[table][1] != ["id"] else {}
    return {**indexes, **PAYLOAD_INDEXES.get(table, {})}


PAGE_SIZE = 250
# Top-level lists read down to their watermark, by raw table; and the item lists of each settlement.
LISTS = {"mollie_payments": "payments", "mollie_refunds": "refunds", "mollie_chargebacks": "chargebacks"}
SETTLEMENT_ITEMS = ("payments", "refunds", "chargebacks", "captures")
DEFAULT_LOOKBACK = timedelta(days=3)
# Lists re-swept each run, with the statuses that may still change (Mollie's docs).
NON_FINAL = {
    "mollie_payments": ("open", "pending", "authorized"),
    "mollie_refunds": ("queued", "pending", "processing"),
    "mollie_chargebacks": (),
    "mollie_balance_transactions": (),
}
FINAL_SETTLEMENT_STATUSES = ("paidout", "failed")
RETRY_STATUSES = {429, 500, 502, 503, 504}


class RetryingClient(Client):
    """The official client, plus retries with backoff on 429 (honouring Retry-After), 5xx and timeouts."""

    def __init__(self, api_endpoint: str, attempts: int = 6, backoff: float = 0.5, **kwargs):
        super().__init__(api_endpoint=api_endpoint, timeout=(5, 60), **kwargs)
        self.attempts = attempts
        self.backoff = backoff
        self.retried = 0
        self.requests = 0  # calls made, retries included

    def perform_http_call(self, http_method, path, data=None, params=None, idempotency_key=""):
        from mollie.api.error import RequestError

        for attempt in range(1, self.attempts + 1):
            self.requests += 1
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
    client.clone = partial(make_client, api_url, token, **kwargs)  # a client per thread: sessions are not shared
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


def settlement_statuses(client: Client) -> dict[str, str]:
    """Every settlement's id and status: what a sensor compares to learn that Mollie settled or paid out."""
    return {obj["id"]: obj["status"] for obj in iterate(client.settlements.list(limit=PAGE_SIZE))}


def _rows(objects: Iterable[dict], *parent: str) -> Iterator[tuple]:
    for obj in objects:
        yield (*parent, obj["id"], Jsonb(obj))


def _created(obj: dict) -> datetime:
    return datetime.fromisoformat(obj["createdAt"].replace("Z", "+00:00"))


def until(objects: Iterator[dict], stop_at: datetime | None) -> Iterator[dict]:
    """Newest-first list items down to `stop_at` (exclusive); the rest of the list is not fetched."""
    for obj in objects:
        if stop_at is not None and _created(obj) < stop_at:
            return
        yield obj


def sweep_bounds(warehouse_dsn: str, lookback: timedelta) -> dict[str, datetime | None]:
    """Per list, how far back this run must read: the newest object seen minus the look-back, or the
    oldest object still in a non-final status, whichever is older. None: read the whole list."""
    bounds: dict[str, datetime | None] = {}
    with psycopg.connect(warehouse_dsn) as conn:
        for table, non_final in NON_FINAL.items():
            exists = conn.execute("select to_regclass(%s)", (f"raw.{table}",)).fetchone()[0]
            if not exists:
                bounds[table] = None
                continue
            newest, oldest_open = conn.execute(
                f"select max((payload->>'createdAt')::timestamptz), "
                f"min((payload->>'createdAt')::timestamptz) filter (where payload->>'status' = any(%s)) "
                f"from raw.{table}",
                (list(non_final),),
            ).fetchone()
            bounds[table] = None if newest is None else min(newest - lookback, oldest_open or newest)
    return bounds


def final_settlements(warehouse_dsn: str) -> dict[str, dict]:
    """Settlements already stored in a final status, with their payloads (their items never change)."""
    with psycopg.connect(warehouse_dsn) as conn:
        if not conn.execute("select to_regclass('raw.mollie_settlements')").fetchone()[0]:
            return {}
        rows = conn.execute(
            "select id, payload from raw.mollie_settlements where payload->>'status' = any(%s)",
            (list(FINAL_SETTLEMENT_STATUSES),),
        ).fetchall()
    return dict(rows)


def load_all(
    client: Client,
    warehouse_dsn: str,
    batch_id: str,
    progress: Callable[[str], None] = lambda _: None,
    *,
    full_refresh: bool = False,
    lookback: timedelta = DEFAULT_LOOKBACK,
    concurrency: int = DEFAULT_MOLLIE_CONCURRENCY,
) -> dict[str, LoadResult]:
    """Sweep every list this warehouse needs; returns one LoadResult per raw table.

    Mollie has no "changed since" filter, so newest-first lists are read down to a watermark that
    also reaches every object still open/pending (a re-sweep until final). Settlements already final
    in raw do not have their items re-read. Lists that do not depend on each other (the top-level lists,
    then each settlement's items and each balance's transactions) are fetched `concurrency` at a time, each
    thread with a client of its own (429s back off as before). Items are written before their settlement,
    so a crash never leaves a final settlement without its items.
    """
    sweep = _Sweep(client, warehouse_dsn, batch_id, progress)
    prepare_tables(warehouse_dsn)  # before the threads: CREATE ... IF NOT EXISTS is not safe when run at once
    bounds = {} if full_refresh else sweep_bounds(warehouse_dsn, lookback)
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="mollie") as pool:
        top = [pool.submit(sweep.write, table, partial(_listed, table, bounds.get(table))) for table in LISTS]
        settlements = pool.submit(sweep.listed, "settlements")
        balances = pool.submit(sweep.listed, "balances")
        done = {} if full_refresh else final_settlements(warehouse_dsn)
        to_read = [s for s in settlements.result() if done.get(s["id"]) != s]
        items = [
            pool.submit(sweep.write, f"mollie_settlement_{sub}", partial(_settlement_items, s, sub))
            for s in to_read
            for sub in SETTLEMENT_ITEMS
        ]
        since = bounds.get("mollie_balance_transactions")
        ledgers = [
            pool.submit(sweep.write, "mollie_balance_transactions", partial(_transactions, b, since))
            for b in balances.result()
        ]
        for future in [*top, *items, *ledgers]:
            future.result()
    for sub in SETTLEMENT_ITEMS:  # a table with no settlement to read still gets its (empty) result
        sweep.write(f"mollie_settlement_{sub}", lambda c: iter(()))
    sweep.write("mollie_settlements", lambda c: _rows(settlements.result()))
    sweep.write("mollie_balances", lambda c: _rows(balances.result()))
    if not balances.result():
        sweep.write("mollie_balance_transactions", lambda c: iter(()))
    client.retried, client.requests = sweep.total("retried"), sweep.total("requests")
    with psycopg.connect(warehouse_dsn) as conn:
        for table, result in sweep.results.items():
            if result.rows_written:
                analyze(conn, table)
    return sweep.results


def prepare_tables(warehouse_dsn: str) -> None:
    with psycopg.connect(warehouse_dsn) as conn:
        for table, (columns, key) in TABLES.items():
            ensure_table(conn, table, columns, key)
            ensure_indexes(conn, table, ["_loaded_at"], raw_indexes(table))


def _listed(table: str, since: datetime | None, client: Client) -> Iterator[tuple]:
    return _rows(until(iterate(getattr(client, LISTS[table]).list(limit=PAGE_SIZE)), since))


def _settlement_items(settlement: dict, sub: str, client: Client) -> Iterator[tuple]:
    return _rows(iterate(getattr(Settlement(settlement, client), sub).list(limit=PAGE_SIZE)), settlement["id"])


def _transactions(balance: dict, since: datetime | None, client: Client) -> Iterator[tuple]:
    listed = iterate(Balance(balance, client).get_transactions(limit=PAGE_SIZE))
    return _rows(until(listed, since), balance["id"])


class _Sweep:
    """The writes of one sweep: a client per thread, and one LoadResult per table, summed over its writes."""

    def __init__(self, client: Client, warehouse_dsn: str, batch_id: str, progress: Callable[[str], None]):
        self.template, self.warehouse_dsn, self.batch_id, self.progress = client, warehouse_dsn, batch_id, progress
        self.results: dict[str, LoadResult] = {}
        self.clients: list[Client] = []
        self.local = threading.local()
        self.lock = threading.Lock()

    def client(self) -> Client:
        if getattr(self.local, "client", None) is None:
            self.local.client = self.template.clone() if hasattr(self.template, "clone") else self.template
            with self.lock:
                self.clients.append(self.local.client)
        return self.local.client

    def total(self, counter: str) -> int:
        """A counter (retried, requests) summed over the sweep's clients."""
        return sum(getattr(c, counter, 0) for c in {id(c): c for c in self.clients}.values())

    def listed(self, name: str) -> list[dict]:
        return list(iterate(getattr(self.client(), name).list(limit=PAGE_SIZE)))

    def write(self, table: str, rows: Callable[[Client], Iterator[tuple]]) -> None:
        columns, key = TABLES[table]
        rows_in = rows(self.client())
        result = write_rows(self.warehouse_dsn, table, columns, key, rows_in, self.batch_id)
        with self.lock:
            total = self.results.get(table)
            if total is not None:
                read, written = total.rows_read + result.rows_read, total.rows_written + result.rows_written
                result = LoadResult(table, read, written, self.batch_id, max(total.seconds, result.seconds))
            self.results[table] = result
        self.progress(f"{table}: {result.rows_read} read, {result.rows_written} written")
