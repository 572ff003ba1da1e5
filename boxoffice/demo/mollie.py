"""The Mollie account that matches the demo platform: payments, refunds, chargebacks, settlements
(twice a month) with Mollie's `periods` revenue/cost lines, and the balance-transaction ledger.

Every paid platform payment exists in Mollie. A configurable share of planted discrepancies makes
reconciliation non-trivial; each is recorded in `MollieData.planted` with the `match_status` that
fct_payment_reconciliation must give it (the tests' oracle).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from boxoffice.demo.platform import PlatformData, _add_refund, mollie_id

CENT = Decimal("0.01")
FOUR = Decimal("0.0001")
VAT = Decimal("0.21")
# (fixed fee, percentage) per method; Mollie's public prices, rounded.
RATES = {
    "ideal": (Decimal("0.29"), Decimal("0")),
    "creditcard": (Decimal("0.25"), Decimal("1.8")),
    "bancontact": (Decimal("0.39"), Decimal("0")),
    "paypal": (Decimal("0.10"), Decimal("3.4")),
    "applepay": (Decimal("0.25"), Decimal("1.8")),
    "banktransfer": (Decimal("0.25"), Decimal("0")),
    "refund": (Decimal("0.25"), Decimal("0")),
    "chargeback": (Decimal("15.00"), Decimal("0")),
}
METHOD_NAMES = {
    "ideal": "iDEAL",
    "creditcard": "Card",
    "bancontact": "Bancontact",
    "paypal": "PayPal",
    "applepay": "Apple Pay",
    "banktransfer": "Bank transfer",
}
CHARGEBACK_REASONS = [
    ("AC01", "Account identifier incorrect (i.e. invalid IBAN)"),
    ("MD06", "Refund request by end customer"),
    ("AM04", "Insufficient funds"),
    ("10.4", "Other Fraud - Card Absent Environment"),
]
PLANTED_KINDS = {
    # kind -> the match_status fct_payment_reconciliation must report for the payment
    "amount_mismatch": "amount_mismatch",
    "missing_in_platform": "missing_in_platform",
    "not_settled": "not_settled",
    "refund_mollie_only": "amount_mismatch",
    "refund_platform_only": "amount_mismatch",
    "chargeback": "status_mismatch",
    "status_mismatch": "status_mismatch",
}


def iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def money(cents_or_decimal, currency: str = "EUR", places: Decimal = CENT) -> dict:
    value = Decimal(cents_or_decimal) / 100 if isinstance(cents_or_decimal, int) else cents_or_decimal
    return {"value": str(value.quantize(places, ROUND_HALF_UP)), "currency": currency}


@dataclass
class MollieData:
    payments: list[dict] = field(default_factory=list)
    refunds: list[dict] = field(default_factory=list)
    chargebacks: list[dict] = field(default_factory=list)
    settlements: list[dict] = field(default_factory=list)
    balances: list[dict] = field(default_factory=list)
    balance_transactions: list[dict] = field(default_factory=list)
    planted: list[dict] = field(default_factory=list)


def settlement_windows(first: datetime, as_of: datetime) -> list[tuple[datetime, datetime]]:
    """Half-month windows [1st, 16th) and [16th, 1st) whose settlement has been created (end + 2 days)."""
    windows = []
    cursor = first.replace(day=1 if first.day < 16 else 16, hour=0, minute=0, second=0, microsecond=0)
    while True:
        next_month = (cursor.replace(day=1) + timedelta(days=32)).replace(day=1)
        end = cursor.replace(day=16) if cursor.day == 1 else next_month
        if end + timedelta(days=2) > as_of:
            return windows
        windows.append((cursor, end))
        cursor = end


def build(platform: PlatformData, discrepancy_rate: float = 0.0005, seed: int | None = None) -> MollieData:
    rng = random.Random((seed if seed is not None else platform.seed) + 7919)
    rows = platform.rows
    as_of = platform.as_of
    orders = platform.order_by_id
    out = MollieData()

    paid_times = [p["paid_at"] for p in rows["payments"] if p["paid_at"]]
    windows = settlement_windows(min(paid_times), as_of) if paid_times else []
    if not windows:
        raise ValueError("the demo needs at least one settled half-month: generate more history")
    latest_settled = windows[-1][1] + timedelta(days=2, hours=9)

    def window_of(ts: datetime | None) -> int | None:
        if ts is None:
            return None
        for i, (lo, hi) in enumerate(windows):
            if lo <= ts < hi:
                return i
        return None

    # -- Mollie payments mirror the platform's ------------------------------------------------------
    by_mollie_id: dict[str, dict] = {}
    for p in rows["payments"]:
        order = orders[p["order_id"]]
        obj = {
            "resource": "payment",
            "id": p["mollie_payment_id"],
            "mode": "test",
            "createdAt": iso(p["created_at"]),
            "amount": money(p["amount_cents"], p["currency"]),
            "description": f"Order {order['order_number']}",
            "method": p["method"],
            "metadata": {"order_number": order["order_number"]},
            "status": p["status"],
            "paidAt": iso(p["paid_at"]),
            "profileId": "pfl_BoxOfficeNL",
            "sequenceType": "oneoff",
            "redirectUrl": f"https://tickets.example.org/orders/{order['order_number']}",
            "webhookUrl": "https://tickets.example.org/webhooks/mollie",
            "settlementId": None,
            "details": {"failureReason": p["failure_reason"]} if p["failure_reason"] else None,
            "_paid_at": p["paid_at"],
            "_refunds": Decimal(0),
            "_chargebacks": Decimal(0),
        }
        final_at = {"failed": "failedAt", "canceled": "canceledAt", "expired": "expiredAt"}.get(p["status"])
        if final_at:
            obj[final_at] = iso(p["updated_at"])
        if p["status"] == "open":
            obj["expiresAt"] = iso(p["created_at"] + timedelta(minutes=15))
        by_mollie_id[p["mollie_payment_id"]] = obj
        out.payments.append(obj)

    # -- planted discrepancies ------------------------------------------------------------------------
    per_kind = max(1, round(discrepancy_rate * len(rows["orders"])))
    single_payment_orders = defaultdict(int)
    for p in rows["payments"]:
        single_payment_orders[p["order_id"]] += 1
    clean_paid = [
        p
        for p in rows["payments"]
        if p["status"] == "paid"
        and orders[p["order_id"]]["status"] == "paid"
        and window_of(p["paid_at"]) is not None
        and window_of(p["paid_at"]) < len(windows) - 1
    ]
    rng.shuffle(clean_paid)
    failed = [
        p
        for p in rows["payments"]
        if p["status"] == "failed"
        and orders[p["order_id"]]["status"] == "failed"
        and single_payment_orders[p["order_id"]] == 1
        and window_of(p["created_at"]) is not None
        and window_of(p["created_at"]) < len(windows) - 1
    ]
    rng.shuffle(failed)
    excluded_from_settlement: set[str] = set()
    platform_only_refunds: set[str] = set()

    def plant(kind, payment_id, settlement_window=None, refund_id=None):
        out.planted.append(
            {
                "kind": kind,
                "mollie_payment_id": payment_id,
                "mollie_refund_id": refund_id,
                "expected_match_status": PLANTED_KINDS[kind],
                "_window": settlement_window,
            }
        )

    for _ in range(per_kind):
        p = clean_paid.pop()
        obj = by_mollie_id[p["mollie_payment_id"]]
        delta = rng.choice([Decimal("1.00"), Decimal("-2.50"), Decimal("0.10"), Decimal("5.00")])
        obj["amount"] = money(Decimal(p["amount_cents"]) / 100 + delta)
        plant("amount_mismatch", p["mollie_payment_id"], window_of(p["paid_at"]))

        p = next(x for x in clean_paid if x["paid_at"] < latest_settled - timedelta(days=20))
        clean_paid.remove(p)
        excluded_from_settlement.add(p["mollie_payment_id"])
        plant("not_settled", p["mollie_payment_id"])

        p = clean_paid.pop()
        at = p["paid_at"] + timedelta(days=rng.uniform(1, 10))
        if window_of(at) is None:
            at = p["paid_at"] + timedelta(minutes=10)
        code, description = rng.choice(CHARGEBACK_REASONS)
        out.chargebacks.append(
            {
                "resource": "chargeback",
                "id": mollie_id(rng, "chb_", platform.used_ids),
                "amount": dict(by_mollie_id[p["mollie_payment_id"]]["amount"]),
                "createdAt": iso(at),
                "reason": {"code": code, "description": description},
                "reversedAt": None,
                "paymentId": p["mollie_payment_id"],
                "settlementId": None,
                "_at": at,
            }
        )
        by_mollie_id[p["mollie_payment_id"]]["_chargebacks"] += Decimal(p["amount_cents"]) / 100
        plant("chargeback", p["mollie_payment_id"], window_of(at))

        p = clean_paid.pop()
        at = p["paid_at"] + timedelta(days=rng.uniform(1, 8))
        if window_of(at) is None:
            at = p["paid_at"] + timedelta(minutes=10)
        refund = {
            "id": mollie_id(rng, "re_", platform.used_ids),
            "payment_id": p["id"],
            "amount_cents": min(p["amount_cents"], 1000),
            "status": "refunded",
            "created_at": at,
            "reason": "goodwill refund in the Mollie dashboard",
            "_mollie_only": True,
        }
        out.refunds.append(_refund_object(refund, p["mollie_payment_id"]))
        plant("refund_mollie_only", p["mollie_payment_id"], window_of(at), refund["id"])

        p = clean_paid.pop()
        order = orders[p["order_id"]]
        at = p["paid_at"] + timedelta(days=rng.uniform(1, 8))
        r = _add_refund(
            rows,
            platform.counters,
            rng,
            platform.used_ids,
            p,
            min(p["amount_cents"], 1500),
            at,
            "admin",
            "refund recorded but never sent to Mollie",
            as_of,
            status="refunded",
        )
        order["status"] = "partially_refunded"
        order["updated_at"] = max(order["updated_at"], r["updated_at"])
        platform_only_refunds.add(r["mollie_refund_id"])
        plant("refund_platform_only", p["mollie_payment_id"], None, r["mollie_refund_id"])

        p = failed.pop()
        obj = by_mollie_id[p["mollie_payment_id"]]
        obj.update(
            status="paid",
            paidAt=iso(p["created_at"] + timedelta(minutes=2)),
            _paid_at=p["created_at"] + timedelta(minutes=2),
            details=None,
        )
        obj.pop("failedAt", None)
        plant("status_mismatch", p["mollie_payment_id"], window_of(obj["_paid_at"]))

        window = rng.randrange(len(windows) - 1)
        lo, hi = windows[window]
        at = lo + timedelta(seconds=rng.uniform(0, (hi - lo).total_seconds()))
        ghost = {
            "resource": "payment",
            "id": mollie_id(rng, "tr_", platform.used_ids),
            "mode": "test",
            "createdAt": iso(at - timedelta(minutes=1)),
            "amount": money(rng.choice([2500, 4999, 8750, 12000])),
            "description": "Payment link",
            "method": "ideal",
            "metadata": None,
            "status": "paid",
            "paidAt": iso(at),
            "profileId": "pfl_BoxOfficeNL",
            "sequenceType": "oneoff",
            "settlementId": None,
            "details": None,
            "_paid_at": at,
            "_refunds": Decimal(0),
            "_chargebacks": Decimal(0),
        }
        out.payments.append(ghost)
        by_mollie_id[ghost["id"]] = ghost
        plant("missing_in_platform", ghost["id"], window)

    # -- refunds mirror the platform's (minus the planted platform-only ones) ---------------------------
    payments_by_id = {p["id"]: p for p in rows["payments"]}
    for r in rows["refunds"]:
        if r["mollie_refund_id"] in platform_only_refunds:
            continue
        out.refunds.append(
            _refund_object({**r, "id": r["mollie_refund_id"]}, payments_by_id[r["payment_id"]]["mollie_payment_id"])
        )
    for refund in out.refunds:
        if refund["status"] not in ("failed", "canceled"):
            by_mollie_id[refund["paymentId"]]["_refunds"] += Decimal(refund["amount"]["value"])

    # -- settlements ------------------------------------------------------------------------------------
    members: dict[int, dict[str, list]] = defaultdict(lambda: {"payments": [], "refunds": [], "chargebacks": []})
    for obj in out.payments:
        w = window_of(obj["_paid_at"]) if obj["status"] == "paid" else None
        if w is not None and obj["id"] not in excluded_from_settlement:
            members[w]["payments"].append(obj)
    for refund in out.refunds:
        w = window_of(refund["_at"]) if refund["status"] == "refunded" else None
        if w is not None:
            members[w]["refunds"].append(refund)
    for cb in out.chargebacks:
        w = window_of(cb["_at"])
        if w is not None:
            members[w]["chargebacks"].append(cb)

    transfers = []
    for w, (lo, hi) in enumerate(windows):
        created = hi + timedelta(days=2, hours=5)
        is_last = w == len(windows) - 1
        settlement_id = mollie_id(rng, "stl_", platform.used_ids)
        content = members[w]
        for kind in ("payments", "refunds", "chargebacks"):
            for obj in content[kind]:
                obj["settlementId"] = settlement_id
        periods, amount = settlement_periods(content, lo)
        settlement = {
            "resource": "settlement",
            "id": settlement_id,
            "reference": f"1234567.{lo:%y%m}.{1 if lo.day == 1 else 2:02d}",
            "createdAt": iso(created),
            "settledAt": None if is_last else iso(created + timedelta(hours=4)),
            "status": "pending" if is_last else "paidout",
            "amount": money(amount),
            "periods": periods,
            "invoiceId": f"inv_{settlement_id[4:]}",
        }
        out.settlements.append(settlement)
        if not is_last:
            transfers.append((settlement, created + timedelta(hours=4), amount))
    window_settlement = {w: out.settlements[w]["id"] for w in range(len(windows))}
    for item in out.planted:
        w = item.pop("_window")
        item["settlement_id"] = window_settlement.get(w) if item["kind"] != "refund_platform_only" else None

    # -- payment totals and the balance ledger --------------------------------------------------------
    for obj in out.payments:
        amount = Decimal(obj["amount"]["value"])
        obj["amountRefunded"] = money(obj["_refunds"])
        obj["amountRemaining"] = money(max(Decimal(0), amount - obj["_refunds"]))
        if obj["_chargebacks"]:
            obj["amountChargedBack"] = money(obj["_chargebacks"])
    out.balances.append(_balance())
    out.balance_transactions = _balance_transactions(out, transfers, rng, platform)
    for collection in (out.payments, out.refunds, out.chargebacks):
        for obj in collection:
            for key in [k for k in obj if k.startswith("_")]:
                del obj[key]
    return out


def _refund_object(r: dict, payment_id: str) -> dict:
    return {
        "resource": "refund",
        "id": r["id"],
        "amount": money(r["amount_cents"]),
        "status": r["status"],
        "createdAt": iso(r["created_at"]),
        "description": r.get("reason") or "Refund",
        "metadata": None,
        "paymentId": payment_id,
        "settlementId": None,
        "_at": r["created_at"],
    }


def fee(method: str, count: int, volume: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    fixed, pct = RATES[method]
    net = (fixed * count + volume * pct / 100).quantize(FOUR, ROUND_HALF_UP)
    vat = (net * VAT).quantize(FOUR, ROUND_HALF_UP)
    return net, vat, net + vat


def settlement_periods(content: dict, period_start: datetime) -> tuple[dict, Decimal]:
    """Revenue and cost lines as Mollie reports them, and the settlement amount they imply.

    Mollie's identity: amount = sum(revenue amountNet) - sum(costs amountGross), rounded to cents.
    The refund revenue line has a negative amountNet and a positive amountGross (the documented sign
    trap); chargebacks are negative on both.
    """
    revenue, costs = [], []
    by_method = defaultdict(list)
    for p in content["payments"]:
        by_method[p["method"] or "ideal"].append(Decimal(p["amount"]["value"]))
    groups = [(m, v) for m, v in sorted(by_method.items())]
    refunds = [Decimal(r["amount"]["value"]) for r in content["refunds"]]
    chargebacks = [Decimal(c["amount"]["value"]) for c in content["chargebacks"]]
    f4 = lambda d: money(d, places=FOUR)  # noqa: E731
    for method, values in groups:
        total = sum(values, Decimal(0))
        revenue.append(
            {
                "description": METHOD_NAMES.get(method, method),
                "method": method,
                "count": len(values),
                "amountNet": f4(total),
                "amountVat": None,
                "amountGross": f4(total),
            }
        )
        net, vat, gross = fee(method, len(values), total)
        fixed, pct = RATES[method]
        costs.append(
            {
                "description": METHOD_NAMES.get(method, method),
                "method": method,
                "count": len(values),
                "rate": {"fixed": f4(fixed), "percentage": str(pct) if pct else None},
                "amountNet": f4(net),
                "amountVat": f4(vat),
                "amountGross": f4(gross),
            }
        )
    for method, values, label in (("refund", refunds, "Refunds"), ("chargeback", chargebacks, "Chargebacks")):
        if not values:
            continue
        total = sum(values, Decimal(0))
        gross = total if method == "refund" else -total
        revenue.append(
            {
                "description": label,
                "method": method,
                "count": len(values),
                "amountNet": f4(-total),
                "amountVat": None,
                "amountGross": f4(gross),
            }
        )
        net, vat, gross_cost = fee(method, len(values), Decimal(0))
        costs.append(
            {
                "description": label,
                "method": method,
                "count": len(values),
                "rate": {"fixed": f4(RATES[method][0]), "percentage": None},
                "amountNet": f4(net),
                "amountVat": f4(vat),
                "amountGross": f4(gross_cost),
            }
        )
    amount = sum((Decimal(r["amountNet"]["value"]) for r in revenue), Decimal(0)) - sum(
        (Decimal(c["amountGross"]["value"]) for c in costs), Decimal(0)
    )
    amount = amount.quantize(CENT, ROUND_HALF_UP)
    invoice = "inv_" + f"{period_start:%Y%m}"
    periods = {f"{period_start:%Y}": {f"{period_start:%m}": {"revenue": revenue, "costs": costs, "invoiceId": invoice}}}
    return periods, amount


def _balance() -> dict:
    return {
        "resource": "balance",
        "id": "bal_BoxOfficeEUR",
        "mode": "test",
        "createdAt": "2024-01-01T00:00:00+00:00",
        "currency": "EUR",
        "status": "active",
        "transferFrequency": "twice-a-month",
        "transferThreshold": money(0),
        "transferReference": "Mollie payout",
        "transferDestination": {
            "type": "bank-account",
            "beneficiaryName": "Boxoffice B.V.",
            "bankAccount": "NL55INGB0000000000",
        },
        "availableAmount": money(0),
        "pendingAmount": money(0),
    }


def _balance_transactions(out: MollieData, transfers, rng, platform) -> list[dict]:
    """Mollie's ledger: resultAmount = initialAmount + deductions for every movement on the balance."""
    txs = []

    def add(kind, at, initial: Decimal, deductions: Decimal, context: dict):
        txs.append(
            {
                "resource": "balance_transaction",
                "id": mollie_id(rng, "baltr_", platform.used_ids),
                "type": kind,
                "resultAmount": money(initial + deductions),
                "initialAmount": money(initial),
                "deductions": money(deductions),
                "createdAt": at,
                "context": context,
            }
        )

    for p in out.payments:
        if p["status"] == "paid":
            amount = Decimal(p["amount"]["value"])
            gross = fee(p["method"] or "ideal", 1, amount)[2].quantize(CENT, ROUND_HALF_UP)
            add("payment", p["paidAt"], amount, -gross, {"paymentId": p["id"]})
    for r in out.refunds:
        if r["status"] == "refunded":
            gross = fee("refund", 1, Decimal(0))[2].quantize(CENT, ROUND_HALF_UP)
            add(
                "refund",
                r["createdAt"],
                -Decimal(r["amount"]["value"]),
                -gross,
                {"paymentId": r["paymentId"], "refundId": r["id"]},
            )
    for c in out.chargebacks:
        gross = fee("chargeback", 1, Decimal(0))[2].quantize(CENT, ROUND_HALF_UP)
        add(
            "chargeback",
            c["createdAt"],
            -Decimal(c["amount"]["value"]),
            -gross,
            {"paymentId": c["paymentId"], "chargebackId": c["id"]},
        )
    for settlement, at, amount in transfers:
        add(
            "outgoing-transfer",
            iso(at),
            -amount,
            Decimal(0),
            {"settlementId": settlement["id"], "transferId": f"trf_{settlement['id'][4:]}"},
        )
    txs.sort(key=lambda t: (t["createdAt"], t["id"]))
    return txs
