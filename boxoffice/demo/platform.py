"""Deterministic demo data for the platform database (the source contract in extract/source_contract.sql).

`generate(sink, orders=N, seed=S, as_of=T)` writes the same rows for the same arguments. Shapes follow
a real ticketing platform: organisations (some suspended, some churned), events over 13 months and
upcoming, orders with growth over time, Mollie methods and real Mollie failure reasons, refunds,
webhook deliveries with retries and failures, and door scans with errors.

Rows stream into PostgreSQL as they are drawn (`PlatformSink`); what later passes need (the Mollie
account, webhooks, scans) is kept in compact columns (`Orders`, `Payments`) or spilled to a file, so
memory does not grow with the data. Mollie ids are not checked against each other in memory: 10
random characters of 62 rarely collide (about 1 in 10^5 at a million orders), and the contract's
unique keys stop the COPY when they do.
"""

from __future__ import annotations

import bisect
import json
import operator
import random
import string
import struct
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import numpy as np
import psycopg
from psycopg import sql

from boxoffice.console import StepLines
from boxoffice.demo.streams import Codes, Spill, TableCopy, from_us, to_us
from boxoffice.settings import PROJECT_DIR

TABLES = (
    "organizations",
    "events",
    "customers",
    "orders",
    "tickets",
    "payments",
    "refunds",
    "webhook_deliveries",
    "scans",
)
COLUMNS = {
    "organizations": ("id", "name", "status", "created_at", "updated_at"),
    "events": ("id", "organization_id", "name", "status", "starts_at", "ends_at", "created_at", "updated_at"),
    "customers": ("id", "email", "signup_ip", "created_at", "updated_at"),
    "orders": (
        "id",
        "order_number",
        "organization_id",
        "event_id",
        "customer_id",
        "buyer_email",
        "buyer_ip",
        "status",
        "currency",
        "tickets_amount_cents",
        "service_fee_cents",
        "platform_fee_cents",
        "total_cents",
        "ticket_count",
        "created_at",
        "paid_at",
        "updated_at",
    ),
    "tickets": (
        "id",
        "order_id",
        "event_id",
        "ticket_type",
        "price_cents",
        "qr_code",
        "status",
        "created_at",
        "updated_at",
    ),
    "payments": (
        "id",
        "order_id",
        "mollie_payment_id",
        "status",
        "method",
        "amount_cents",
        "currency",
        "failure_reason",
        "created_at",
        "paid_at",
        "updated_at",
    ),
    "refunds": (
        "id",
        "payment_id",
        "mollie_refund_id",
        "amount_cents",
        "reason",
        "status",
        "initiated_by",
        "created_at",
        "updated_at",
    ),
    "webhook_deliveries": (
        "id",
        "webhook_id",
        "event_type",
        "organization_id",
        "payload",
        "attempt",
        "max_attempts",
        "status",
        "response_status",
        "last_error",
        "next_retry_at",
        "created_at",
        "updated_at",
    ),
    "scans": ("id", "ticket_id", "event_id", "qr_code", "device_id", "result", "scanned_at", "created_at"),
}
ORDER_ROW, PAYMENT_ROW = (operator.itemgetter(*COLUMNS[t]) for t in ("orders", "payments"))
# the source's own indexes: the extract reads each table by (updated_at, id) or (created_at, id)
CURSOR_INDEXES = {
    "orders": "updated_at",
    "payments": "updated_at",
    "refunds": "updated_at",
    "tickets": "updated_at",
    "webhook_deliveries": "updated_at",
    "events": "updated_at",
    "scans": "created_at",
}

# Shares are what a Dutch ticketing platform sees; fees are Mollie's public list prices.
METHODS = [("ideal", 55), ("creditcard", 20), ("bancontact", 10), ("paypal", 6), ("applepay", 6), ("banktransfer", 3)]
CARD_FAILURE_REASONS = [
    "authentication_failed",
    "card_declined",
    "card_expired",
    "insufficient_funds",
    "invalid_cvv",
    "possible_fraud",
    "refused_by_issuer",
    "verification_failed",
    "invalid_card_number",
]
TICKET_TYPES = [("regular", 1.0, 60), ("early_bird", 0.8, 15), ("vip", 2.5, 10), ("student", 0.7, 15)]
METHODS_TOTAL = sum(w for _, w in METHODS)
TICKET_TYPES_TOTAL = sum(t[-1] for t in TICKET_TYPES)
ORDER_STATUS_WEIGHTS = [
    ("paid", 86),
    ("failed", 4),
    ("expired", 3),
    ("cancelled", 2),
    ("refunded", 3),
    ("partially_refunded", 2),
]
ORDER_STATUS_TOTAL = sum(w for _, w in ORDER_STATUS_WEIGHTS)
TICKET_STATUSES = ("valid", "used", "refunded", "void")
ORDER_STATUSES = ("pending", "paid", "failed", "expired", "cancelled", "refunded", "partially_refunded")
PAYMENT_STATUSES = ("open", "paid", "failed", "canceled", "expired")
WEBHOOK_ERRORS = [
    "HTTP 500 Internal Server Error",
    "HTTP 503 Service Unavailable",
    "timeout after 10s",
    "connection refused",
    "HTTP 404 Not Found",
]
CITIES = ["Amsterdam", "Rotterdam", "Utrecht", "Eindhoven", "Groningen", "Antwerpen", "Gent", "Berlin"]
KINDS = ["Festival", "Concert", "Comedy Night", "Conference", "Club Night", "Theatre", "Expo", "Meetup"]
DOMAINS = ["example.com", "example.nl", "example.de", "example.be"]
# a ticket waiting for the scans pass: order, event, type, price, QR code's random part, status, created, updated
TICKET_RECORD = "<iiBqQBqq"


def contract_ddl() -> str:
    """The platform's tables as the extract's contract declares them (a file read, not an import of a layer above)."""
    return (PROJECT_DIR / "extract" / "source_contract.sql").read_text()


@dataclass(slots=True)
class Event:
    id: int
    organization_id: int
    status: str
    starts_at: datetime
    price: int
    fee_rate: float
    created_at: datetime


class Refund(NamedTuple):  # a refunds row, in the table's column order
    id: int
    payment_id: int
    mollie_refund_id: str
    amount_cents: int
    reason: str
    status: str
    initiated_by: str
    created_at: datetime
    updated_at: datetime


class Orders:
    """What the Mollie account and the webhooks read of each order (row i is order id i + 1)."""

    def __init__(self):
        self.organization_id = array("i")
        self.month = array("H")  # yymm of created_at, for the order number
        self.status = Codes(ORDER_STATUSES)

    def append(self, order: dict) -> None:
        self.organization_id.append(order["organization_id"])
        created = order["created_at"]
        self.month.append(created.year % 100 * 100 + created.month)
        self.status.append(order["status"])

    def number(self, order_id: int) -> str:
        return f"ORD-{self.month[order_id - 1]:04d}-{order_id:07d}"

    def __len__(self) -> int:
        return len(self.month)


class Payments:
    """Every payments row, compactly (row i is payment id i + 1)."""

    def __init__(self):
        self.order_id = array("i")
        self.status = Codes(PAYMENT_STATUSES)
        self.method = Codes([None] + [m for m, _ in METHODS])
        self.failure_reason = Codes([None] + CARD_FAILURE_REASONS)
        self.amount_cents = array("i")
        self.created_us = array("q")
        self.paid_us = array("q")
        self.updated_us = array("q")
        self.id_chars = bytearray()  # the 10 characters after "tr_"

    def append(self, p: dict) -> None:
        self.order_id.append(p["order_id"])
        self.status.append(p["status"])
        self.method.append(p["method"])
        self.failure_reason.append(p["failure_reason"])
        self.amount_cents.append(p["amount_cents"])
        self.created_us.append(to_us(p["created_at"]))
        self.paid_us.append(to_us(p["paid_at"]))
        self.updated_us.append(to_us(p["updated_at"]))
        self.id_chars += p["mollie_payment_id"][3:].encode()

    def mollie_id(self, i: int) -> str:
        return "tr_" + self.id_chars[10 * i : 10 * i + 10].decode()

    def __len__(self) -> int:
        return len(self.order_id)


@dataclass
class PlatformData:
    as_of: datetime
    seed: int
    organizations: list[dict] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    customers: int = 0
    orders: Orders = field(default_factory=Orders)
    payments: Payments = field(default_factory=Payments)
    refunds: list[Refund] = field(default_factory=list)  # written last: the Mollie account adds some
    counters: dict[str, int] = field(default_factory=lambda: {"ticket": 0, "payment": 0, "refund": 0, "scan": 0})
    # orders the Mollie account refunded after they were written: their refund's updated_at (the order's
    # status is in `orders`), written when the sink closes
    changed_orders: dict[int, datetime] = field(default_factory=dict)
    # (alert type, subject as the marts name it before hashing) of each planted fraud pattern
    planted_fraud: list[tuple[str, str]] = field(default_factory=list)
    ok_scanned: array = field(default_factory=lambda: array("i"))  # tickets admitted once, in id order


class PlatformSink:
    """The platform tables of `schema`, replaced, with a COPY stream per table; on a clean exit the
    refunds and the orders changed since they were written are written, the indexes built, and
    every stream committed."""

    def __init__(self, dsn: str, schema: str = "public", lines: StepLines | None = None):
        self.dsn, self.schema, self.lines = dsn, schema, lines
        self.data: PlatformData | None = None
        self.counts: dict[str, int] = {}
        self.step, self.written = "", 0

    def __enter__(self) -> PlatformSink:
        with psycopg.connect(self.dsn) as conn:
            conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(self.schema)))
            conn.execute(sql.SQL("set local search_path to {}").format(sql.Identifier(self.schema)))
            for table in TABLES:
                conn.execute(sql.SQL("drop table if exists {} cascade").format(sql.Identifier(table)))
            conn.execute(contract_ddl())
        self.copies = {t: TableCopy(self.dsn, self.schema, t, COLUMNS[t]) for t in TABLES}
        return self

    def write(self, table: str, row) -> None:
        self.copies[table].write(row)
        self.written += 1
        if self.written % 100_000 == 0 and self.lines:
            self.lines.show(self.step, f"{self.written:,} rows written")

    def begin(self, step: str) -> None:
        """A new step of the progress lines (the previous one is done)."""
        if self.lines and self.step:
            self.lines.show(self.step, f"done, {self.written:,} rows", final=True)
        self.step, self.written = step, 0
        if self.lines and step:
            self.lines.start(step)

    def __exit__(self, kind, *exc) -> None:
        if kind is not None:
            for copy in self.copies.values():
                copy.abort()
            return
        self.begin("demo: refunds, indexes")
        for refund in self.data.refunds if self.data else ():
            self.write("refunds", refund)
        for table, copy in self.copies.items():
            conn = copy.commit()
            if table == "orders" and self.data:
                _rewrite_changed_orders(conn, self.data)
            if table in CURSOR_INDEXES:
                conn.execute(
                    sql.SQL("create index on {} ({}, id)").format(*map(sql.Identifier, (table, CURSOR_INDEXES[table])))
                )
            copy.close()
            self.counts[table] = copy.rows
        self.begin("")


def _rewrite_changed_orders(conn: psycopg.Connection, data: PlatformData) -> None:
    rows = [(data.orders.status[i - 1], at, i) for i, at in sorted(data.changed_orders.items())]
    with conn.cursor() as cur:
        cur.executemany("update orders set status = %s, updated_at = greatest(updated_at, %s) where id = %s", rows)
    conn.commit()


def write(dsn: str, orders: int, seed: int, as_of: datetime, fraud: bool = True, schema: str = "public") -> dict:
    """Generate the platform alone (no Mollie account) into `schema`; returns the rows per table."""
    with PlatformSink(dsn, schema) as sink:
        generate(sink, orders=orders, seed=seed, as_of=as_of, fraud=fraud)
    return sink.counts


def _pick(rng: random.Random, weighted: list[tuple], total: int | None = None) -> tuple:
    """An item drawn by its weight (the last element); `total`, the weights' sum, saves summing them per draw."""
    r = rng.uniform(0, sum(w[-1] for w in weighted) if total is None else total)
    for item in weighted:
        r -= item[-1]
        if r <= 0:
            return item
    return weighted[-1]


ID_ALPHABET = string.ascii_letters + string.digits


def _id_chars(rng: random.Random, n: int = 10) -> str:
    """n characters of ID_ALPHABET, drawn exactly as rng.choice would draw them (so a seed gives the same ids),
    without its call overhead. choice draws 6 bits, redrawn while >= 62, and 6 bits are the top of one 32-bit
    word: so n words are drawn at once (getrandbits(32 n) is n words, the first lowest) and a redraw, if
    any, comes after."""
    words = struct.unpack(f"<{n}I", rng.getrandbits(32 * n).to_bytes(4 * n, "little"))
    chars = [ID_ALPHABET[w >> 26] for w in words if w >> 26 < 62]
    while len(chars) < n:
        r = rng.getrandbits(6)
        if r < 62:
            chars.append(ID_ALPHABET[r])
    return "".join(chars)


def mollie_id(rng: random.Random, prefix: str) -> str:
    return prefix + _id_chars(rng)


def _ip(rng: random.Random) -> str:
    n = rng.randint(0x50000000, 0xBFFFFFFF)
    return f"{n >> 24}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"  # str(IPv4Address(n)), without its checks


def generate(
    sink: PlatformSink,
    orders: int = 20_000,
    seed: int = 42,
    as_of: datetime | None = None,
    fraud: bool = True,
    mirror: Callable[[PlatformData], None] | None = None,
) -> PlatformData:
    """`mirror(data)` is called once every order, payment and refund is drawn (the webhooks, drawn last, read
    only those refunds), so the Mollie account can be made while the webhooks are."""
    as_of = (as_of or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    rng = random.Random(seed)
    data = sink.data = PlatformData(as_of=as_of, seed=seed)
    start = as_of - timedelta(days=395)
    sink.begin("demo: organizations, events, customers")
    churned = _organizations(data, rng, start, max(8, orders // 70))
    _events(data, sink, rng, start, churned)
    customer_domains = _customers(data, sink, rng, start, max(10, int(orders * 0.55)))
    with Spill(TICKET_RECORD) as tickets:
        sink.begin("demo: orders, payments")
        _orders(data, sink, rng, start, orders, customer_domains, tickets)
        del customer_domains
        sink.begin("demo: tickets, door scans")
        _scans(data, sink, rng, tickets)
    if fraud:
        _plant_fraud(data, sink, random.Random(seed + 1))
    for org in data.organizations:
        sink.write("organizations", [org[c] for c in COLUMNS["organizations"]])
    refunds = list(data.refunds)
    if mirror:
        mirror(data)
    sink.begin("demo: webhook deliveries")
    _webhooks(data, sink, rng, refunds)
    return data


def _organizations(data: PlatformData, rng: random.Random, start: datetime, n_orgs: int) -> set[int]:
    as_of = data.as_of
    churned = set(rng.sample(range(1, n_orgs + 1), max(1, n_orgs // 8)))
    for org_id in range(1, n_orgs + 1):
        created = start - timedelta(days=rng.randint(0, 700)) + timedelta(days=rng.randint(0, 360))
        created = min(created, as_of - timedelta(days=3))
        suspended = rng.random() < 0.05
        data.organizations.append(
            {
                "id": org_id,
                "name": f"{rng.choice(CITIES)} {rng.choice(KINDS)}s {org_id}",
                "status": "suspended" if suspended else "active",
                "created_at": created,
                "updated_at": created + timedelta(days=rng.randint(0, 30)) if suspended else created,
            }
        )
    # A few brand-new organisations so "new this week" is never empty.
    for org in data.organizations[-3:]:
        org["created_at"] = org["updated_at"] = as_of - timedelta(days=rng.randint(1, 6), hours=rng.randint(0, 20))
    return churned


def _events(data: PlatformData, sink: PlatformSink, rng: random.Random, start: datetime, churned: set[int]) -> None:
    as_of = data.as_of
    for org in data.organizations:
        org_start = max(org["created_at"], start)
        latest = as_of - timedelta(days=100) if org["id"] in churned else as_of + timedelta(days=120)
        for _ in range(rng.randint(2, 8)):
            if latest <= org_start + timedelta(days=10):
                break
            event_id = len(data.events) + 1
            span = (latest - org_start - timedelta(days=10)).total_seconds()
            starts = org_start + timedelta(days=10, seconds=rng.uniform(0, span))
            starts = starts.replace(minute=0, second=0, microsecond=0, hour=rng.choice([14, 19, 20, 21]))
            ends = starts + timedelta(hours=rng.choice([3, 4, 5, 8, 50]))
            if starts > as_of:
                status = _pick(rng, [("live", 80), ("draft", 15), ("cancelled", 5)])[0]
            else:
                status = _pick(rng, [("ended", 95), ("cancelled", 5)])[0]
            created = max(org["created_at"], starts - timedelta(days=rng.randint(30, 150)))
            name = f"{rng.choice(KINDS)} {starts:%B %Y} #{event_id}"
            ends_at = ends if rng.random() < 0.9 else None
            updated = min(as_of, max(created, starts - timedelta(days=1)))
            price = rng.choice([1500, 2250, 2950, 3500, 4500, 5950, 8500])
            fee_rate = rng.choice([0.03, 0.04, 0.05, 0.06])
            data.events.append(Event(event_id, org["id"], status, starts, price, fee_rate, created))
            sink.write("events", (event_id, org["id"], name, status, starts, ends_at, created, updated))


def _customers(data: PlatformData, sink: PlatformSink, rng: random.Random, start: datetime, n: int) -> bytearray:
    """Writes the customers; returns each one's email domain (all the orders need of them)."""
    domains = bytearray()
    span = (data.as_of - start).total_seconds()
    for cid in range(1, n + 1):
        created = start - timedelta(days=30) + timedelta(seconds=rng.uniform(0, span))
        domain = rng.choice(DOMAINS)
        sink.write("customers", (cid, f"buyer{cid}@{domain}", _ip(rng), created, created))
        domains.append(DOMAINS.index(domain))
    data.customers = n
    return domains


class _OnSale:
    """The events an order can be for: starting within 120 days of it and on sale by then."""

    def __init__(self, events: list[Event]):
        self.events = sorted((e for e in events if e.status != "draft"), key=lambda e: e.starts_at)
        self.starts = [e.starts_at for e in self.events]
        # numpy filters the window (a Python scan of it per order made generation quadratic)
        self.created = np.array([e.created_at.timestamp() for e in self.events])

    def candidates(self, created: datetime) -> tuple[int, np.ndarray]:
        lo = bisect.bisect_right(self.starts, created)
        hi = bisect.bisect_right(self.starts, created + timedelta(days=120))
        return lo, np.flatnonzero(self.created[lo:hi] <= created.timestamp())


def _orders(data, sink, rng, start, orders, customer_domains, tickets: Spill) -> None:
    on_sale = _OnSale(data.events)
    span = (data.as_of - start).total_seconds()
    for oid in range(1, orders + 1):
        while True:  # orders grow over time: later timestamps are more likely
            created = start + timedelta(seconds=span * rng.random() ** 0.7)
            lo, candidates = on_sale.candidates(created)
            if len(candidates):
                break
        event = on_sale.events[lo + int(rng.choice(candidates))]
        order, lines = _draw_order(data, rng, oid, created, event, customer_domains)
        _settle_order(data, sink, rng, order, event, lines, tickets)


def _draw_order(data, rng, oid, created, event: Event, customer_domains: bytearray) -> tuple[dict, list]:
    n_customers = data.customers
    customer_id = (
        (min(int(rng.paretovariate(1.2)) - 1, n_customers - 1) if rng.random() < 0.3 else rng.randrange(n_customers))
        + 1
        if rng.random() < 0.8
        else None
    )
    if customer_id:
        email = f"buyer{customer_id}@{DOMAINS[customer_domains[customer_id - 1]]}"
    else:
        email = f"guest{oid}@{rng.choice(DOMAINS)}"
    if data.as_of - created < timedelta(minutes=30) and rng.random() < 0.5:
        status = "pending"
    elif event.status == "cancelled":
        status = "refunded" if rng.random() < 0.9 else "paid"
    else:
        status = _pick(rng, ORDER_STATUS_WEIGHTS, ORDER_STATUS_TOTAL)[0]
    count = _pick(rng, [(1, 45), (2, 35), (3, 8), (4, 7), (rng.randint(5, 10), 5)], 100)[0]
    lines = []
    for _ in range(count):
        ttype, factor, _w = _pick(rng, TICKET_TYPES, TICKET_TYPES_TOTAL)
        lines.append((ttype, int(round(event.price * factor, -1))))
    tickets_amount = sum(p for _, p in lines)
    latency = timedelta(seconds=min(3600, rng.lognormvariate(3.5, 1.0)))
    paid_at = created + latency if status in ("paid", "refunded", "partially_refunded") else None
    order = {
        "id": oid,
        "order_number": f"ORD-{created:%y%m}-{oid:07d}",
        "organization_id": event.organization_id,
        "event_id": event.id,
        "customer_id": customer_id,
        "buyer_email": email,
        "buyer_ip": _ip(rng),
        "status": status,
        "currency": "EUR",
        "tickets_amount_cents": tickets_amount,
        "service_fee_cents": 99 * count,
        "platform_fee_cents": int(round(tickets_amount * event.fee_rate)),
        "total_cents": tickets_amount + 99 * count,
        "ticket_count": count,
        "created_at": created,
        "paid_at": paid_at,
        "updated_at": paid_at or created + latency,
    }
    return order, lines


PAYMENT_STATUS_OF_ORDER = {
    "paid": "paid",
    "refunded": "paid",
    "partially_refunded": "paid",
    "failed": "failed",
    "expired": "expired",
    "cancelled": "canceled",
    "pending": "open",
}


def _settle_order(data, sink, rng, order: dict, event: Event, lines: list, tickets: Spill) -> None:
    """The order's payments (a declined card first, sometimes), its refund, its tickets; then the order."""
    status, created, paid_at = order["status"], order["created_at"], order["paid_at"]
    method = _pick(rng, METHODS, METHODS_TOTAL)[0]
    if paid_at and method == "creditcard" and rng.random() < 0.15:  # a declined card before success
        reason = rng.choice(CARD_FAILURE_REASONS)
        _add_payment(data, sink, rng, order, "failed", method, created, created + timedelta(seconds=20), reason)
    pay_status = PAYMENT_STATUS_OF_ORDER[status]
    reason = rng.choice(CARD_FAILURE_REASONS) if pay_status == "failed" and method == "creditcard" else None
    payment_id = _add_payment(data, sink, rng, order, pay_status, method, created, order["updated_at"], reason, paid_at)
    refunded_ticket = None
    if status in ("refunded", "partially_refunded"):
        amount = order["total_cents"] if status == "refunded" else lines[0][1]
        refunded_ticket = None if status == "refunded" else 0
        window = max(0.01, min(40.0, (data.as_of - paid_at).total_seconds() / 86400))
        refund_at = paid_at + timedelta(days=rng.uniform(0, window))
        cancelled = event.status == "cancelled"
        _add_refund(
            data,
            rng,
            payment_id,
            amount,
            refund_at,
            "organizer" if cancelled else rng.choice(["customer", "admin"]),
            "event cancelled" if cancelled else "customer request",
        )
        order["updated_at"] = max(order["updated_at"], refund_at)
    created_us, updated_us = to_us(created), to_us(order["updated_at"])
    for i, (ttype, price) in enumerate(lines):
        data.counters["ticket"] += 1
        if not paid_at:
            tstatus = "void"
        elif status == "refunded" or (refunded_ticket is not None and i == refunded_ticket):
            tstatus = "refunded"
        else:
            tstatus = "valid"
        tickets.write(
            order["id"],
            event.id,
            TICKET_TYPE_CODES[ttype],
            price,
            rng.getrandbits(64),
            TICKET_STATUSES.index(tstatus),
            created_us,
            updated_us,
        )
    sink.write("orders", ORDER_ROW(order))
    data.orders.append(order)


TICKET_TYPE_CODES = {t[0]: i for i, t in enumerate(TICKET_TYPES)}


def _add_payment(data, sink, rng, order, status, method, created, updated, reason, paid_at=None) -> int:
    data.counters["payment"] += 1
    payment = {
        "id": data.counters["payment"],
        "order_id": order["id"],
        "mollie_payment_id": mollie_id(rng, "tr_"),
        "status": status,
        "method": method if status != "open" else None,
        "amount_cents": order["total_cents"],
        "currency": order["currency"],
        "failure_reason": reason,
        "created_at": created,
        "paid_at": paid_at,
        "updated_at": updated,
    }
    sink.write("payments", PAYMENT_ROW(payment))
    data.payments.append(payment)
    return payment["id"]


def _add_refund(data, rng, payment_id, amount, created, initiated_by, reason, status=None) -> Refund:
    data.counters["refund"] += 1
    if status is None:
        recent = data.as_of - created < timedelta(days=2)
        status = (
            rng.choice(["queued", "pending", "processing"])
            if recent
            else ("failed" if rng.random() < 0.01 else "refunded")
        )
    mollie_refund_id = mollie_id(rng, "re_")
    updated = created + timedelta(minutes=rng.randint(1, 120))
    refund = Refund(
        data.counters["refund"], payment_id, mollie_refund_id, amount, reason, status, initiated_by, created, updated
    )
    data.refunds.append(refund)
    return refund


def _scans(data: PlatformData, sink: PlatformSink, rng: random.Random, tickets: Spill) -> None:
    """Door scans of the tickets of events that took place; a scanned ticket is written as used."""
    as_of, events = data.as_of, data.events

    def add(ticket_id, event_id, qr, device, result, at):
        data.counters["scan"] += 1
        scan_created = at + timedelta(seconds=rng.randint(0, 90))
        sink.write("scans", (data.counters["scan"], ticket_id, event_id, qr, device, result, at, scan_created))

    for ticket_id, (order_id, event_id, ttype, price, qr_bits, status, created_us, updated_us) in enumerate(
        tickets, start=1
    ):
        qr = f"QR{qr_bits:016x}{ticket_id:x}"
        status, updated = TICKET_STATUSES[status], from_us(updated_us)
        event = events[event_id - 1]
        if status == "valid" and event.starts_at <= as_of and event.status != "cancelled" and rng.random() <= 0.85:
            at = event.starts_at - timedelta(minutes=rng.randint(-120, 60))
            device = f"DEV-{event.id}-{rng.randint(1, 4)}"
            if rng.random() < 0.02:
                add(ticket_id, event.id, qr, device, "network_error", at - timedelta(seconds=30))
            add(ticket_id, event.id, qr, device, "ok", at)
            data.ok_scanned.append(ticket_id)
            status, updated = "used", max(updated, at)
            if rng.random() < 0.03:  # shown twice at the same door (a copy at another door is a planted fraud)
                add(ticket_id, event.id, qr, device, "already_used", at + timedelta(minutes=rng.randint(1, 90)))
            if rng.random() < 0.005:
                add(None, event.id, f"QR{rng.getrandbits(64):016x}", device, "invalid_qr", at)
        row = (ticket_id, order_id, event_id, TICKET_TYPES[ttype][0], price, qr, status, from_us(created_us), updated)
        sink.write("tickets", row)


def _plant_fraud(data: PlatformData, sink: PlatformSink, rng: random.Random) -> None:
    """One instance of each pattern the fraud rules look for, on top of otherwise clean data."""
    as_of = data.as_of
    events = [e for e in data.events if e.status == "ended"]

    # 1. five declined cards in 40 minutes from one buyer on one IP
    event = rng.choice(events)
    start = as_of - timedelta(days=10)
    for k in range(5):
        _fraud_order(
            data, sink, rng, event, start + timedelta(minutes=8 * k), "card.tester@example.net", "203.0.113.7", "failed"
        )
    data.planted_fraud += [
        ("failed_payments_burst", "buyer:card.tester@example.net"),
        ("failed_payments_burst", "ip:203.0.113.7"),
    ]
    _plant_rescans(data, sink, rng)
    _plant_refund_ring(data, sink, rng)

    # 4. six accounts from one IP within 30 minutes
    start = as_of - timedelta(days=20)
    for k in range(6):
        data.customers += 1
        at = start + timedelta(minutes=5 * k)
        sink.write("customers", (data.customers, f"farm{k}@example.org", "198.51.100.23", at, at))
    data.planted_fraud.append(("rapid_account_creation", "ip:198.51.100.23"))

    # 5. one order of 40 tickets
    bulk = _fraud_order(
        data,
        sink,
        rng,
        rng.choice(events),
        as_of - timedelta(days=45),
        "reseller@example.net",
        "203.0.113.99",
        "paid",
        40,
    )
    data.planted_fraud.append(("bulk_order", f"order:{bulk['order_number']}"))


def _plant_rescans(data: PlatformData, sink: PlatformSink, rng: random.Random) -> None:
    """2. two admitted tickets shown again at another entrance"""
    scanned = data.ok_scanned
    tickets = rng.sample(scanned, min(2, len(scanned)))
    data.ok_scanned = array("i")  # not needed any more
    conn = sink.copies["scans"].commit()  # the admissions are read back before more scans are written
    first_admissions = [
        conn.execute(
            "select event_id, qr_code, scanned_at from scans where ticket_id = %s and result = 'ok' "
            "order by id limit 1",
            (ticket_id,),
        ).fetchone()
        for ticket_id in tickets
    ]
    for ticket_id, (event_id, qr, first_at) in zip(tickets, first_admissions, strict=True):
        at = first_at + timedelta(minutes=12)
        data.counters["scan"] += 1
        sink.write(
            "scans", (data.counters["scan"], ticket_id, event_id, qr, f"DEV-{event_id}-9", "already_used", at, at)
        )
        data.planted_fraud.append(("ticket_scanned_on_several_devices", f"ticket:{ticket_id}"))


def _plant_refund_ring(data: PlatformData, sink: PlatformSink, rng: random.Random) -> None:
    """3. an organization refunding 8 of its 24 paid orders (33%), for an event that took place"""
    org_id = len(data.organizations) + 1
    created = data.as_of - timedelta(days=200)
    data.organizations.append(
        {
            "id": org_id,
            "name": f"Refund Ring Events {org_id}",
            "status": "active",
            "created_at": created,
            "updated_at": created,
        }
    )
    starts = (data.as_of - timedelta(days=30)).replace(hour=20)
    ring = Event(len(data.events) + 1, org_id, "ended", starts, 4500, 0.05, created)
    data.events.append(ring)
    sink.write("events", (ring.id, org_id, "Ring Night", "ended", starts, starts + timedelta(hours=4), created, starts))
    for k in range(24):
        _fraud_order(
            data,
            sink,
            rng,
            ring,
            starts - timedelta(days=40) + timedelta(hours=7 * k),
            f"ring{k}@example.org",
            f"192.0.2.{k + 1}",
            "refunded" if k % 3 == 0 else "paid",
        )
    data.planted_fraud.append(("high_refund_rate", f"organization:{org_id}"))


def _fraud_order(data, sink, rng, event: Event, created, email, ip, status, tickets=1, price=4500) -> dict:
    oid = len(data.orders) + 1
    paid = status in ("paid", "refunded")
    amount = tickets * price
    order = {
        "id": oid,
        "order_number": f"ORD-{created:%y%m}-{oid:07d}",
        "organization_id": event.organization_id,
        "event_id": event.id,
        "customer_id": None,
        "buyer_email": email,
        "buyer_ip": ip,
        "status": status,
        "currency": "EUR",
        "tickets_amount_cents": amount,
        "service_fee_cents": 99 * tickets,
        "platform_fee_cents": int(round(amount * 0.05)),
        "total_cents": amount + 99 * tickets,
        "ticket_count": tickets,
        "created_at": created,
        "paid_at": created + timedelta(seconds=40) if paid else None,
        "updated_at": created + timedelta(seconds=40),
    }
    sink.write("orders", ORDER_ROW(order))
    data.orders.append(order)
    payment_id = _add_payment(
        data,
        sink,
        rng,
        order,
        "paid" if paid else "failed",
        "creditcard",
        created,
        order["updated_at"],
        None if paid else "card_declined",
        order["paid_at"],
    )
    for _ in range(tickets):
        data.counters["ticket"] += 1
        ticket_id = data.counters["ticket"]
        qr = f"QR{rng.getrandbits(64):016x}{ticket_id:x}"
        tstatus = "refunded" if status == "refunded" else ("valid" if paid else "void")
        sink.write("tickets", (ticket_id, oid, event.id, "regular", price, qr, tstatus, created, order["updated_at"]))
    if status == "refunded":
        _add_refund(
            data,
            rng,
            payment_id,
            order["total_cents"],
            created + timedelta(days=2),
            "customer",
            "customer request",
            "refunded",
        )
    return order


WEBHOOK_EVENT_OF_PAYMENT = {
    "paid": "payment.paid",
    "failed": "payment.failed",
    "expired": "payment.expired",
    "canceled": "payment.canceled",
}


def _webhooks(data: PlatformData, sink: PlatformSink, rng: random.Random, refunds: list[Refund]) -> None:
    orders, payments, as_of = data.orders, data.payments, data.as_of
    organizations = [o["id"] for o in data.organizations]
    flaky_orgs = set(rng.sample(organizations, max(1, len(organizations) // 30)))
    delivery_id = 0

    def add(event_type, order_id, at, body):
        nonlocal delivery_id
        delivery_id += 1
        org = orders.organization_id[order_id - 1]
        attempt, status, response, error, next_retry = _delivery(rng, org in flaky_orgs, at, as_of)
        retried_for = timedelta(minutes=2 ** (attempt + 1) if attempt > 1 else 0, seconds=rng.randint(0, 5))
        sink.write(
            "webhook_deliveries",
            (
                delivery_id,
                f"WHK-{delivery_id:08d}",
                event_type,
                org,
                json.dumps(body),
                attempt,
                5,
                status,
                response,
                error,
                next_retry,
                at,
                min(as_of, at + retried_for),
            ),
        )

    for i in range(len(payments)):
        event_type = WEBHOOK_EVENT_OF_PAYMENT.get(payments.status[i])
        if event_type:
            order_id = payments.order_id[i]
            body = {"order_number": orders.number(order_id), "payment_id": payments.mollie_id(i)}
            add(event_type, order_id, from_us(payments.updated_us[i]), body)
    for r in refunds:
        order_id = payments.order_id[r.payment_id - 1]
        add(
            "refund.created",
            order_id,
            r.created_at,
            {"order_number": orders.number(order_id), "refund_id": r.mollie_refund_id},
        )


def _delivery(rng: random.Random, flaky: bool, at: datetime, as_of: datetime) -> tuple:
    """attempt, status, response status, last error and next retry of one webhook delivery"""
    if flaky and rng.random() < 0.6:
        attempt = rng.randint(1, 5)
        done = attempt == 5
        status = "failed" if done else "pending"
        next_retry = None if done else at + timedelta(minutes=2 ** (attempt + 2))
        if next_retry and next_retry < as_of - timedelta(hours=1):  # old retries have resolved
            status, next_retry = "delivered", None
        response, error = (
            (200, None) if status == "delivered" else (rng.choice([500, 503, 404, None]), rng.choice(WEBHOOK_ERRORS))
        )
        return attempt, status, response, error, next_retry
    attempt = 1 if rng.random() < 0.94 else rng.randint(2, 3)
    error = None if attempt == 1 else rng.choice(WEBHOOK_ERRORS)
    return attempt, "delivered", 200, error, None
