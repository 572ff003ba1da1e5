"""Deterministic demo data for the platform database (the source contract in extract/source_contract.sql).

`generate(orders=N, seed=S, as_of=T)` returns the same rows for the same arguments. Shapes follow a
real ticketing platform: organisations (some suspended, some churned), events over 13 months and
upcoming, orders with growth over time, Mollie methods and real Mollie failure reasons, refunds,
webhook deliveries with retries and failures, and door scans with errors.
"""

from __future__ import annotations

import bisect
import ipaddress
import json
import random
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

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
WEBHOOK_ERRORS = [
    "HTTP 500 Internal Server Error",
    "HTTP 503 Service Unavailable",
    "timeout after 10s",
    "connection refused",
    "HTTP 404 Not Found",
]
CITIES = ["Amsterdam", "Rotterdam", "Utrecht", "Eindhoven", "Groningen", "Antwerpen", "Gent", "Berlin"]
KINDS = ["Festival", "Concert", "Comedy Night", "Conference", "Club Night", "Theatre", "Expo", "Meetup"]


def contract_ddl() -> str:
    import extract

    return (Path(extract.__file__).parent / "source_contract.sql").read_text()


@dataclass
class PlatformData:
    as_of: datetime
    seed: int
    rows: dict[str, list[dict]] = field(default_factory=lambda: {t: [] for t in TABLES})
    # lookups the Mollie sandbox builder needs
    order_by_id: dict[int, dict] = field(default_factory=dict)
    used_ids: set[str] = field(default_factory=set)
    counters: dict[str, int] = field(default_factory=dict)
    # (alert type, subject as the marts name it before hashing) of each planted fraud pattern
    planted_fraud: list[tuple[str, str]] = field(default_factory=list)


def _pick(rng: random.Random, weighted: list[tuple]) -> tuple:
    total = sum(w[-1] for w in weighted)
    r = rng.uniform(0, total)
    for item in weighted:
        r -= item[-1]
        if r <= 0:
            return item
    return weighted[-1]


ID_ALPHABET = string.ascii_letters + string.digits


def _id_chars(rng: random.Random, n: int = 10) -> str:
    """n characters of ID_ALPHABET, drawn exactly as rng.choice would draw them (so a seed gives the same ids),
    without its call overhead: 62 is drawn from 6 random bits, redrawn while out of range."""
    getrandbits = rng.getrandbits
    chars = []
    for _ in range(n):
        r = getrandbits(6)
        while r >= 62:
            r = getrandbits(6)
        chars.append(ID_ALPHABET[r])
    return "".join(chars)


def mollie_id(rng: random.Random, prefix: str, used: set[str]) -> str:
    while True:
        candidate = prefix + _id_chars(rng)
        if candidate not in used:
            used.add(candidate)
            return candidate


def _ip(rng: random.Random) -> str:
    return str(ipaddress.IPv4Address(rng.randint(0x50000000, 0xBFFFFFFF)))


def generate(orders: int = 20_000, seed: int = 42, as_of: datetime | None = None, fraud: bool = True) -> PlatformData:
    as_of = (as_of or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    rng = random.Random(seed)
    data = PlatformData(as_of=as_of, seed=seed, used_ids=set())
    rows = data.rows
    start = as_of - timedelta(days=395)
    used_ids = data.used_ids
    data.counters = counters = {"ticket": 0, "payment": 0, "refund": 0}

    # -- organisations ---------------------------------------------------------------------------
    n_orgs = max(8, orders // 70)
    churned = set(rng.sample(range(1, n_orgs + 1), max(1, n_orgs // 8)))
    for org_id in range(1, n_orgs + 1):
        created = start - timedelta(days=rng.randint(0, 700)) + timedelta(days=rng.randint(0, 360))
        created = min(created, as_of - timedelta(days=3))
        suspended = rng.random() < 0.05
        rows["organizations"].append(
            {
                "id": org_id,
                "name": f"{rng.choice(CITIES)} {rng.choice(KINDS)}s {org_id}",
                "status": "suspended" if suspended else "active",
                "created_at": created,
                "updated_at": created + timedelta(days=rng.randint(0, 30)) if suspended else created,
            }
        )
    # A few brand-new organisations so "new this week" is never empty.
    for org in rows["organizations"][-3:]:
        org["created_at"] = org["updated_at"] = as_of - timedelta(days=rng.randint(1, 6), hours=rng.randint(0, 20))

    # -- events ----------------------------------------------------------------------------------
    event_rows = rows["events"]
    for org in rows["organizations"]:
        org_start = max(org["created_at"], start)
        latest = as_of - timedelta(days=100) if org["id"] in churned else as_of + timedelta(days=120)
        for _ in range(rng.randint(2, 8)):
            if latest <= org_start + timedelta(days=10):
                break
            span = (latest - org_start - timedelta(days=10)).total_seconds()
            starts = org_start + timedelta(days=10, seconds=rng.uniform(0, span))
            starts = starts.replace(minute=0, second=0, microsecond=0, hour=rng.choice([14, 19, 20, 21]))
            ends = starts + timedelta(hours=rng.choice([3, 4, 5, 8, 50]))
            if starts > as_of:
                status = _pick(rng, [("live", 80), ("draft", 15), ("cancelled", 5)])[0]
            else:
                status = _pick(rng, [("ended", 95), ("cancelled", 5)])[0]
            created = max(org["created_at"], starts - timedelta(days=rng.randint(30, 150)))
            event_rows.append(
                {
                    "id": len(event_rows) + 1,
                    "organization_id": org["id"],
                    "name": f"{rng.choice(KINDS)} {starts:%B %Y} #{len(event_rows) + 1}",
                    "status": status,
                    "starts_at": starts,
                    "ends_at": ends if rng.random() < 0.9 else None,
                    "created_at": created,
                    "updated_at": min(as_of, max(created, starts - timedelta(days=1))),
                    "_price": rng.choice([1500, 2250, 2950, 3500, 4500, 5950, 8500]),
                    "_fee_rate": rng.choice([0.03, 0.04, 0.05, 0.06]),
                }
            )
    on_sale = sorted((e for e in event_rows if e["status"] != "draft"), key=lambda e: e["starts_at"])
    on_sale_starts = [e["starts_at"] for e in on_sale]
    # an order picks among the events starting within 120 days that were on sale by then: numpy filters the
    # window (a Python scan of it per order made generation quadratic); rng.choice draws as before
    on_sale_created = np.array([e["created_at"].timestamp() for e in on_sale])

    # -- customers -------------------------------------------------------------------------------
    n_customers = max(10, int(orders * 0.55))
    domains = ["example.com", "example.nl", "example.de", "example.be"]
    for cid in range(1, n_customers + 1):
        created = start - timedelta(days=30) + timedelta(seconds=rng.uniform(0, (as_of - start).total_seconds()))
        rows["customers"].append(
            {
                "id": cid,
                "email": f"buyer{cid}@{rng.choice(domains)}",
                "signup_ip": _ip(rng),
                "created_at": created,
                "updated_at": created,
            }
        )

    # -- orders, tickets, payments, refunds -------------------------------------------------------
    span = (as_of - start).total_seconds()
    for oid in range(1, orders + 1):
        while True:  # orders grow over time: later timestamps are more likely
            created = start + timedelta(seconds=span * rng.random() ** 0.7)
            lo = bisect.bisect_right(on_sale_starts, created)
            hi = bisect.bisect_right(on_sale_starts, created + timedelta(days=120))
            candidates = np.flatnonzero(on_sale_created[lo:hi] <= created.timestamp())
            if len(candidates):
                break
        event = on_sale[lo + int(rng.choice(candidates))]
        customer = (
            rows["customers"][
                min(int(rng.paretovariate(1.2)) - 1, n_customers - 1)
                if rng.random() < 0.3
                else rng.randrange(n_customers)
            ]
            if rng.random() < 0.8
            else None
        )
        email = customer["email"] if customer else f"guest{oid}@{rng.choice(domains)}"
        age = as_of - created
        if age < timedelta(minutes=30) and rng.random() < 0.5:
            status = "pending"
        elif event["status"] == "cancelled":
            status = "refunded" if rng.random() < 0.9 else "paid"
        else:
            status = _pick(
                rng,
                [
                    ("paid", 86),
                    ("failed", 4),
                    ("expired", 3),
                    ("cancelled", 2),
                    ("refunded", 3),
                    ("partially_refunded", 2),
                ],
            )[0]
        count = _pick(rng, [(1, 45), (2, 35), (3, 8), (4, 7), (rng.randint(5, 10), 5)])[0]
        tickets = []
        for _ in range(count):
            ttype, factor, _w = _pick(rng, TICKET_TYPES)
            tickets.append((ttype, int(round(event["_price"] * factor, -1))))
        tickets_amount = sum(p for _, p in tickets)
        service_fee = 99 * count
        platform_fee = int(round(tickets_amount * event["_fee_rate"]))
        total = tickets_amount + service_fee
        latency = timedelta(seconds=min(3600, rng.lognormvariate(3.5, 1.0)))
        paid = status in ("paid", "refunded", "partially_refunded")
        paid_at = created + latency if paid else None
        order = {
            "id": oid,
            "order_number": f"ORD-{created:%y%m}-{oid:07d}",
            "organization_id": event["organization_id"],
            "event_id": event["id"],
            "customer_id": customer["id"] if customer else None,
            "buyer_email": email,
            "buyer_ip": _ip(rng),
            "status": status,
            "currency": "EUR",
            "tickets_amount_cents": tickets_amount,
            "service_fee_cents": service_fee,
            "platform_fee_cents": platform_fee,
            "total_cents": total,
            "ticket_count": count,
            "created_at": created,
            "paid_at": paid_at,
            "updated_at": paid_at or created + latency,
        }
        rows["orders"].append(order)
        data.order_by_id[oid] = order

        method = _pick(rng, METHODS)[0]
        if paid and method == "creditcard" and rng.random() < 0.15:  # a declined card before success
            _add_payment(
                rows,
                counters,
                rng,
                used_ids,
                order,
                "failed",
                method,
                created,
                created + timedelta(seconds=20),
                rng.choice(CARD_FAILURE_REASONS),
            )
        pay_status = {
            "paid": "paid",
            "refunded": "paid",
            "partially_refunded": "paid",
            "failed": "failed",
            "expired": "expired",
            "cancelled": "canceled",
            "pending": "open",
        }[status]
        reason = rng.choice(CARD_FAILURE_REASONS) if pay_status == "failed" and method == "creditcard" else None
        payment = _add_payment(
            rows, counters, rng, used_ids, order, pay_status, method, created, order["updated_at"], reason, paid_at
        )

        refunded_ticket = None
        if status in ("refunded", "partially_refunded"):
            amount = total if status == "refunded" else tickets[0][1]
            refunded_ticket = None if status == "refunded" else 0
            window = max(0.01, min(40.0, (as_of - paid_at).total_seconds() / 86400))
            refund_at = paid_at + timedelta(days=rng.uniform(0, window))
            _add_refund(
                rows,
                counters,
                rng,
                used_ids,
                payment,
                amount,
                refund_at,
                "organizer" if event["status"] == "cancelled" else rng.choice(["customer", "admin"]),
                "event cancelled" if event["status"] == "cancelled" else "customer request",
                as_of,
            )
            order["updated_at"] = max(order["updated_at"], refund_at)

        for i, (ttype, price) in enumerate(tickets):
            counters["ticket"] += 1
            if not paid:
                tstatus = "void"
            elif status == "refunded" or (refunded_ticket is not None and i == refunded_ticket):
                tstatus = "refunded"
            else:
                tstatus = "valid"
            rows["tickets"].append(
                {
                    "id": counters["ticket"],
                    "order_id": oid,
                    "event_id": event["id"],
                    "ticket_type": ttype,
                    "price_cents": price,
                    "qr_code": f"QR{rng.getrandbits(64):016x}{counters['ticket']:x}",
                    "status": tstatus,
                    "created_at": created,
                    "updated_at": order["updated_at"],
                }
            )

    _scans(rows, rng, as_of)
    if fraud:
        _plant_fraud(data, random.Random(seed + 1))
    _webhooks(rows, rng, as_of)
    for e in event_rows:
        e.pop("_price", None)
        e.pop("_fee_rate", None)
    return data


def _add_payment(rows, counters, rng, used_ids, order, status, method, created, updated, reason, paid_at=None):
    counters["payment"] += 1
    payment = {
        "id": counters["payment"],
        "order_id": order["id"],
        "mollie_payment_id": mollie_id(rng, "tr_", used_ids),
        "status": status,
        "method": method if status != "open" else None,
        "amount_cents": order["total_cents"],
        "currency": order["currency"],
        "failure_reason": reason,
        "created_at": created,
        "paid_at": paid_at,
        "updated_at": updated,
    }
    rows["payments"].append(payment)
    return payment


def _add_refund(rows, counters, rng, used_ids, payment, amount, created, initiated_by, reason, as_of, status=None):
    counters["refund"] += 1
    if status is None:
        recent = as_of - created < timedelta(days=2)
        status = (
            rng.choice(["queued", "pending", "processing"])
            if recent
            else ("failed" if rng.random() < 0.01 else "refunded")
        )
    refund = {
        "id": counters["refund"],
        "payment_id": payment["id"],
        "mollie_refund_id": mollie_id(rng, "re_", used_ids),
        "amount_cents": amount,
        "reason": reason,
        "status": status,
        "initiated_by": initiated_by,
        "created_at": created,
        "updated_at": created + timedelta(minutes=rng.randint(1, 120)),
    }
    rows["refunds"].append(refund)
    return refund


def _scans(rows, rng, as_of):
    events = {e["id"]: e for e in rows["events"]}
    scans = rows["scans"]

    def add(ticket_id, event_id, qr, device, result, at):
        scans.append(
            {
                "id": len(scans) + 1,
                "ticket_id": ticket_id,
                "event_id": event_id,
                "qr_code": qr,
                "device_id": device,
                "result": result,
                "scanned_at": at,
                "created_at": at + timedelta(seconds=rng.randint(0, 90)),
            }
        )

    for t in rows["tickets"]:
        event = events[t["event_id"]]
        if t["status"] != "valid" or event["starts_at"] > as_of or event["status"] == "cancelled":
            continue
        if rng.random() > 0.85:
            continue
        at = event["starts_at"] - timedelta(minutes=rng.randint(-120, 60))
        device = f"DEV-{event['id']}-{rng.randint(1, 4)}"
        if rng.random() < 0.02:
            add(t["id"], event["id"], t["qr_code"], device, "network_error", at - timedelta(seconds=30))
        add(t["id"], event["id"], t["qr_code"], device, "ok", at)
        t["status"] = "used"
        t["updated_at"] = max(t["updated_at"], at)
        if rng.random() < 0.03:  # shown twice at the same door (a copy at another door is a planted fraud)
            add(t["id"], event["id"], t["qr_code"], device, "already_used", at + timedelta(minutes=rng.randint(1, 90)))
        if rng.random() < 0.005:
            add(None, event["id"], f"QR{rng.getrandbits(64):016x}", device, "invalid_qr", at)


def _plant_fraud(data: PlatformData, rng: random.Random) -> None:
    """One instance of each pattern the fraud rules look for, on top of otherwise clean data."""
    rows, as_of, counters, used = data.rows, data.as_of, data.counters, data.used_ids
    events = [e for e in rows["events"] if e["status"] == "ended"]

    def order(event, created, email, ip, status, tickets=1, price=4500, customer_id=None):
        oid = len(rows["orders"]) + 1
        paid = status in ("paid", "refunded")
        paid_at = created + timedelta(seconds=40) if paid else None
        amount = tickets * price
        o = {
            "id": oid,
            "order_number": f"ORD-{created:%y%m}-{oid:07d}",
            "organization_id": event["organization_id"],
            "event_id": event["id"],
            "customer_id": customer_id,
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
            "paid_at": paid_at,
            "updated_at": created + timedelta(seconds=40),
        }
        rows["orders"].append(o)
        data.order_by_id[oid] = o
        payment = _add_payment(
            rows,
            counters,
            rng,
            used,
            o,
            "paid" if paid else "failed",
            "creditcard",
            created,
            o["updated_at"],
            None if paid else "card_declined",
            o["paid_at"],
        )
        for _ in range(tickets):
            counters["ticket"] += 1
            rows["tickets"].append(
                {
                    "id": counters["ticket"],
                    "order_id": oid,
                    "event_id": event["id"],
                    "ticket_type": "regular",
                    "price_cents": price,
                    "qr_code": f"QR{rng.getrandbits(64):016x}{counters['ticket']:x}",
                    "status": "refunded" if status == "refunded" else ("valid" if paid else "void"),
                    "created_at": created,
                    "updated_at": o["updated_at"],
                }
            )
        if status == "refunded":
            _add_refund(
                rows,
                counters,
                rng,
                used,
                payment,
                o["total_cents"],
                created + timedelta(days=2),
                "customer",
                "customer request",
                as_of,
                status="refunded",
            )
        return o

    # 1. five declined cards in 40 minutes from one buyer on one IP
    event = rng.choice(events)
    start = as_of - timedelta(days=10)
    for k in range(5):
        order(event, start + timedelta(minutes=8 * k), "card.tester@example.net", "203.0.113.7", "failed")
    data.planted_fraud += [
        ("failed_payments_burst", "buyer:card.tester@example.net"),
        ("failed_payments_burst", "ip:203.0.113.7"),
    ]

    # 2. two admitted tickets shown again at another entrance
    scanned = {s["ticket_id"] for s in rows["scans"] if s["result"] == "ok"}
    for ticket_id in rng.sample(sorted(scanned), min(2, len(scanned))):
        first = next(s for s in rows["scans"] if s["ticket_id"] == ticket_id and s["result"] == "ok")
        at = first["scanned_at"] + timedelta(minutes=12)
        rows["scans"].append(
            {
                "id": len(rows["scans"]) + 1,
                "ticket_id": ticket_id,
                "event_id": first["event_id"],
                "qr_code": first["qr_code"],
                "device_id": f"DEV-{first['event_id']}-9",
                "result": "already_used",
                "scanned_at": at,
                "created_at": at,
            }
        )
        data.planted_fraud.append(("ticket_scanned_on_several_devices", f"ticket:{ticket_id}"))

    # 3. an organization refunding 8 of its 24 paid orders (33%), for an event that took place
    org_id = len(rows["organizations"]) + 1
    created = as_of - timedelta(days=200)
    rows["organizations"].append(
        {
            "id": org_id,
            "name": f"Refund Ring Events {org_id}",
            "status": "active",
            "created_at": created,
            "updated_at": created,
        }
    )
    starts = (as_of - timedelta(days=30)).replace(hour=20)
    ring_event = {
        "id": len(rows["events"]) + 1,
        "organization_id": org_id,
        "name": "Ring Night",
        "status": "ended",
        "starts_at": starts,
        "ends_at": starts + timedelta(hours=4),
        "created_at": created,
        "updated_at": starts,
    }
    rows["events"].append(ring_event)
    for k in range(24):
        order(
            ring_event,
            starts - timedelta(days=40) + timedelta(hours=7 * k),
            f"ring{k}@example.org",
            f"192.0.2.{k + 1}",
            "refunded" if k % 3 == 0 else "paid",
        )
    data.planted_fraud.append(("high_refund_rate", f"organization:{org_id}"))

    # 4. six accounts from one IP within 30 minutes
    start = as_of - timedelta(days=20)
    for k in range(6):
        cid = len(rows["customers"]) + 1
        at = start + timedelta(minutes=5 * k)
        rows["customers"].append(
            {
                "id": cid,
                "email": f"farm{k}@example.org",
                "signup_ip": "198.51.100.23",
                "created_at": at,
                "updated_at": at,
            }
        )
    data.planted_fraud.append(("rapid_account_creation", "ip:198.51.100.23"))

    # 5. one order of 40 tickets
    bulk = order(rng.choice(events), as_of - timedelta(days=45), "reseller@example.net", "203.0.113.99", "paid", 40)
    data.planted_fraud.append(("bulk_order", f"order:{bulk['order_number']}"))


def _webhooks(rows, rng, as_of):
    orders = {o["id"]: o for o in rows["orders"]}
    payments = {p["id"]: p for p in rows["payments"]}
    flaky_orgs = set(rng.sample([o["id"] for o in rows["organizations"]], max(1, len(rows["organizations"]) // 30)))
    hooks = rows["webhook_deliveries"]

    def add(event_type, order, at, body):
        org = order["organization_id"]
        failing = org in flaky_orgs and rng.random() < 0.6
        max_attempts = 5
        if failing:
            attempt = rng.randint(1, max_attempts)
            done = attempt == max_attempts
            status = "failed" if done else "pending"
            next_retry = None if done else at + timedelta(minutes=2 ** (attempt + 2))
            if next_retry and next_retry < as_of - timedelta(hours=1):  # old retries have resolved
                status, next_retry = "delivered", None
            response, error = (
                (200, None)
                if status == "delivered"
                else (rng.choice([500, 503, 404, None]), rng.choice(WEBHOOK_ERRORS))
            )
        else:
            attempt = 1 if rng.random() < 0.94 else rng.randint(2, 3)
            status, next_retry, response = "delivered", None, 200
            error = None if attempt == 1 else rng.choice(WEBHOOK_ERRORS)
        retried_for = timedelta(minutes=2 ** (attempt + 1) if attempt > 1 else 0, seconds=rng.randint(0, 5))
        hooks.append(
            {
                "id": len(hooks) + 1,
                "webhook_id": f"WHK-{len(hooks) + 1:08d}",
                "event_type": event_type,
                "organization_id": org,
                "payload": json.dumps(body),
                "attempt": attempt,
                "max_attempts": max_attempts,
                "status": status,
                "response_status": response,
                "last_error": error,
                "next_retry_at": next_retry,
                "created_at": at,
                "updated_at": min(as_of, at + retried_for),
            }
        )

    for p in rows["payments"]:
        order = orders[p["order_id"]]
        event_type = {
            "paid": "payment.paid",
            "failed": "payment.failed",
            "expired": "payment.expired",
            "canceled": "payment.canceled",
        }.get(p["status"])
        if event_type:
            add(
                event_type,
                order,
                p["updated_at"],
                {"order_number": order["order_number"], "payment_id": p["mollie_payment_id"]},
            )
    for r in rows["refunds"]:
        order = orders[payments[r["payment_id"]]["order_id"]]
        add(
            "refund.created",
            order,
            r["created_at"],
            {"order_number": order["order_number"], "refund_id": r["mollie_refund_id"]},
        )


def write(data: PlatformData, dsn: str, schema: str = "public") -> dict[str, int]:
    """Create the contract tables in `schema` (replacing them) and COPY the rows in."""
    counts = {}
    with psycopg.connect(dsn) as conn:
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("set local search_path to {}").format(sql.Identifier(schema)))
        for table in TABLES:
            conn.execute(sql.SQL("drop table if exists {} cascade").format(sql.Identifier(table)))
        conn.execute(contract_ddl())
        for table in TABLES:
            table_rows = data.rows[table]
            columns = list(table_rows[0]) if table_rows else []
            if not columns:
                counts[table] = 0
                continue
            copy_sql = sql.SQL("copy {} ({}) from stdin").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
            )
            with conn.cursor().copy(copy_sql) as copy:
                for row in table_rows:
                    copy.write_row([row[c] for c in columns])
            counts[table] = len(table_rows)
        for table in ("orders", "payments", "refunds", "tickets", "webhook_deliveries", "events"):
            conn.execute(sql.SQL("create index on {} (updated_at, id)").format(sql.Identifier(table)))
        conn.execute("create index on scans (created_at, id)")
    return counts
