"""The platform source contract as data: required columns with their raw types, and the row rules.

Mirrors extract/source_contract.sql. A row that breaks a rule goes to raw._quarantine with the
reason; the good rows of the same batch still load.
"""

from __future__ import annotations

TS = "timestamp with time zone"  # as format_type() spells it

COLUMNS: dict[str, dict[str, str]] = {
    "organizations": {"id": "bigint", "name": "text", "status": "text", "created_at": TS, "updated_at": TS},
    "events": {
        "id": "bigint",
        "organization_id": "bigint",
        "name": "text",
        "status": "text",
        "starts_at": TS,
        "ends_at": TS,
        "created_at": TS,
        "updated_at": TS,
    },
    "customers": {"id": "bigint", "email": "text", "signup_ip": "inet", "created_at": TS, "updated_at": TS},
    "orders": {
        "id": "bigint",
        "order_number": "text",
        "organization_id": "bigint",
        "event_id": "bigint",
        "customer_id": "bigint",
        "buyer_email": "text",
        "buyer_ip": "inet",
        "status": "text",
        "currency": "text",
        "tickets_amount_cents": "bigint",
        "service_fee_cents": "bigint",
        "platform_fee_cents": "bigint",
        "total_cents": "bigint",
        "ticket_count": "integer",
        "created_at": TS,
        "paid_at": TS,
        "updated_at": TS,
    },
    "tickets": {
        "id": "bigint",
        "order_id": "bigint",
        "event_id": "bigint",
        "ticket_type": "text",
        "price_cents": "bigint",
        "qr_code": "text",
        "status": "text",
        "created_at": TS,
        "updated_at": TS,
    },
    "payments": {
        "id": "bigint",
        "order_id": "bigint",
        "mollie_payment_id": "text",
        "status": "text",
        "method": "text",
        "amount_cents": "bigint",
        "currency": "text",
        "failure_reason": "text",
        "created_at": TS,
        "paid_at": TS,
        "updated_at": TS,
    },
    "refunds": {
        "id": "bigint",
        "payment_id": "bigint",
        "mollie_refund_id": "text",
        "amount_cents": "bigint",
        "reason": "text",
        "status": "text",
        "initiated_by": "text",
        "created_at": TS,
        "updated_at": TS,
    },
    "webhook_deliveries": {
        "id": "bigint",
        "webhook_id": "text",
        "event_type": "text",
        "organization_id": "bigint",
        "payload": "jsonb",
        "attempt": "integer",
        "max_attempts": "integer",
        "status": "text",
        "response_status": "integer",
        "last_error": "text",
        "next_retry_at": TS,
        "created_at": TS,
        "updated_at": TS,
    },
    "scans": {
        "id": "bigint",
        "ticket_id": "bigint",
        "event_id": "bigint",
        "qr_code": "text",
        "device_id": "text",
        "result": "text",
        "scanned_at": TS,
        "created_at": TS,
    },
}

NOT_NULL = {
    "organizations": ["name", "status", "created_at", "updated_at"],
    "events": ["organization_id", "status", "starts_at", "created_at", "updated_at"],
    "customers": ["created_at", "updated_at"],
    "orders": [
        "order_number",
        "organization_id",
        "event_id",
        "status",
        "currency",
        "tickets_amount_cents",
        "service_fee_cents",
        "platform_fee_cents",
        "total_cents",
        "created_at",
        "updated_at",
    ],
    "tickets": ["order_id", "event_id", "price_cents", "qr_code", "status", "created_at", "updated_at"],
    "payments": ["order_id", "status", "amount_cents", "currency", "created_at", "updated_at"],
    "refunds": ["payment_id", "amount_cents", "status", "created_at", "updated_at"],
    "webhook_deliveries": ["status", "created_at", "updated_at"],
    "scans": ["event_id", "qr_code", "result", "scanned_at", "created_at"],
}

STATUSES = {
    ("organizations", "status"): ["active", "suspended"],
    ("events", "status"): ["draft", "live", "ended", "cancelled"],
    ("orders", "status"): ["pending", "paid", "failed", "cancelled", "expired", "refunded", "partially_refunded"],
    ("tickets", "status"): ["valid", "used", "refunded", "void"],
    ("payments", "status"): ["open", "pending", "authorized", "paid", "failed", "canceled", "expired"],
    ("refunds", "status"): ["queued", "pending", "processing", "refunded", "failed", "canceled"],
    ("refunds", "initiated_by"): ["customer", "organizer", "admin"],
    ("webhook_deliveries", "status"): ["pending", "delivered", "failed"],
    ("scans", "result"): ["ok", "invalid_qr", "already_used", "network_error"],
}

AMOUNTS = {
    "orders": ["tickets_amount_cents", "service_fee_cents", "platform_fee_cents", "total_cents"],
    "tickets": ["price_cents"],
    "payments": ["amount_cents"],
    "refunds": ["amount_cents"],
}

# Rules across a row's values: (columns, SQL over them that must hold, reason). Amounts are compared as
# bigint: a malformed one was caught by an earlier rule (the first rule a row breaks is its reason).
ROW_RULES = {
    "orders": [
        (
            ["total_cents", "tickets_amount_cents", "service_fee_cents"],
            "{total_cents} = {tickets_amount_cents} + {service_fee_cents}",
            "total_cents is not tickets_amount_cents + service_fee_cents",
        )
    ],
}

# The currencies Mollie settles in.
CURRENCIES = [
    "AED",
    "AUD",
    "BGN",
    "BRL",
    "CAD",
    "CHF",
    "CZK",
    "DKK",
    "EUR",
    "GBP",
    "HKD",
    "HUF",
    "ILS",
    "ISK",
    "JPY",
    "MXN",
    "MYR",
    "NOK",
    "NZD",
    "PHP",
    "PLN",
    "RON",
    "RUB",
    "SEK",
    "SGD",
    "THB",
    "TWD",
    "USD",
    "ZAR",
]
CURRENCY_COLUMNS = {"orders": ["currency"], "payments": ["currency"]}

# (column, parent table); nullable columns are only checked when set.
FOREIGN_KEYS = {
    "events": [("organization_id", "organizations")],
    "orders": [("organization_id", "organizations"), ("event_id", "events"), ("customer_id", "customers")],
    "tickets": [("order_id", "orders"), ("event_id", "events")],
    "payments": [("order_id", "orders")],
    "refunds": [("payment_id", "payments")],
    "webhook_deliveries": [("organization_id", "organizations")],
    "scans": [("ticket_id", "tickets"), ("event_id", "events")],
}


def parents(table: str) -> list[str]:
    """The tables `table` refers to through its foreign keys, loaded before it."""
    return sorted({parent for _, parent in FOREIGN_KEYS.get(table, [])})


# Columns other tables are looked up by (besides foreign keys): raw indexes them.
LOOKUP_COLUMNS = {"payments": ["mollie_payment_id"], "refunds": ["mollie_refund_id"], "orders": ["order_number"]}

MAX_PAYLOAD_BYTES = {"webhook_deliveries": {"payload": 256 * 1024}}

# Parents first, so that a child's foreign keys are checked against loaded parents.
LOAD_ORDER = [
    "organizations",
    "customers",
    "events",
    "orders",
    "tickets",
    "payments",
    "refunds",
    "webhook_deliveries",
    "scans",
]
