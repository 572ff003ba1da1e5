"""The Mollie account that matches the demo platform: payments, refunds, chargebacks, settlements
(twice a month) with Mollie's `periods` revenue/cost lines, and the balance-transaction ledger.

Every paid platform payment exists in Mollie. A configurable share of planted discrepancies makes
reconciliation non-trivial; each is recorded in `MollieData.planted` with the `match_status` that
fct_payment_reconciliation must give it (the tests' oracle).

`build` decides everything first from the platform's compact columns (what is planted, what each
settlement holds, the ledger's ids); `MollieAccount.objects()` then makes each API object as it is
written, in the sandbox's list order, so no list of a million objects is ever held.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

import numpy as np

from boxoffice.demo.platform import PlatformData, _add_refund, _id_chars, mollie_id
from boxoffice.demo.streams import EPOCH, NONE_US, from_us, to_us

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
    """Mollie's timestamps: UTC, whole seconds, "+00:00" (isoformat is several times faster than strftime)."""
    return None if ts is None else ts.astimezone(UTC).replace(microsecond=0).isoformat()


def money(cents_or_decimal, currency: str = "EUR", places: Decimal = CENT) -> dict:
    """Mollie's amount object, from whole cents (an int) or a Decimal amount."""
    if isinstance(cents_or_decimal, int) and places is CENT:  # the common case, a million times: cached
        return {"value": _cents_text(cents_or_decimal), "currency": currency}
    value = Decimal(cents_or_decimal) / 100 if isinstance(cents_or_decimal, int) else cents_or_decimal
    return {"value": str(value.quantize(places, ROUND_HALF_UP)), "currency": currency}


@lru_cache(maxsize=65536)
def _cents_text(cents: int) -> str:
    return str((Decimal(cents) / 100).quantize(CENT, ROUND_HALF_UP))


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


@dataclass(slots=True)
class Ghost:
    """A payment made outside the platform (a payment link): in Mollie only."""

    id: str
    paid_at: datetime
    amount_cents: int


@dataclass(slots=True)
class MollieRefund:
    id: str
    payment: int  # the account's payment index
    amount_cents: int
    status: str
    created_at: datetime
    description: str
    settlement_id: str | None = None  # set when the settlements are made


@dataclass(slots=True)
class Chargeback:
    id: str
    payment: int
    amount_cents: int
    at: datetime
    code: str
    description: str
    settlement_id: str | None = None  # set when the settlements are made


class Windows:
    """The settled half-months, and which one a moment falls in."""

    def __init__(self, windows: list[tuple[datetime, datetime]]):
        self.windows = windows
        self.starts_us = np.array([to_us(lo) for lo, _ in windows], dtype=np.int64)
        self.ends_us = np.array([to_us(hi) for _, hi in windows], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.windows)

    def of(self, ts: datetime | None) -> int | None:
        w = -1 if ts is None else int(self.of_us(np.array([to_us(ts)], dtype=np.int64))[0])
        return None if w < 0 else w

    def of_us(self, us: np.ndarray) -> np.ndarray:
        """The window of each moment (microseconds), -1 where none."""
        i = np.searchsorted(self.starts_us, us, side="right").astype(np.int16) - 1  # a few dozen windows
        inside = (i >= 0) & (us < self.ends_us[np.clip(i, 0, None)])
        return np.where(inside, i, np.int16(-1))


@dataclass
class MollieAccount:
    platform: PlatformData
    windows: Windows
    # per payment: the platform's payments (index = id - 1), then the ghosts
    amount_cents: np.ndarray
    paid_us: np.ndarray  # NONE_US where Mollie does not have it paid
    paid_in_mollie_only: set[int] = field(default_factory=set)  # failed on the platform, paid in Mollie
    ghosts: list[Ghost] = field(default_factory=list)
    unsettled: set[int] = field(default_factory=set)
    refunds: list[MollieRefund] = field(default_factory=list)
    chargebacks: list[Chargeback] = field(default_factory=list)
    planted: list[dict] = field(default_factory=list)
    settlements: list[dict] = field(default_factory=list)
    transfers: list[tuple] = field(default_factory=list)  # (settlement, at, amount) of each payout
    settlement_window: np.ndarray | None = None  # per payment, -1 when in no settlement
    refunded_cents: np.ndarray | None = None
    charged_back_cents: np.ndarray | None = None
    ledger: dict = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        return {
            "payment": len(self.amount_cents),
            "refund": len(self.refunds),
            "chargeback": len(self.chargebacks),
            "settlement": len(self.settlements),
            "balance": 1,
            "balance_transaction": len(self.ledger["ids"]),
        }

    def objects(self) -> Iterator[tuple]:
        """(kind, id, seq, parent id, settlement id, reference, body) of every object, each kind in its
        list order (createdAt, id)."""
        for part in self.parts():
            yield from part

    def parts(self) -> tuple[Iterator[tuple], Iterator[tuple]]:
        """`objects()` in two halves of about the same size that can be written at once: the payments, and
        every other kind."""
        return _payment_objects(self), self._other_objects()

    def _other_objects(self) -> Iterator[tuple]:
        yield from _refund_objects(self)
        yield from _chargeback_objects(self)
        for seq, s in enumerate(sorted(self.settlements, key=lambda s: (s["createdAt"], s["id"]))):
            yield "settlement", s["id"], seq, None, None, s["reference"], s
        balance = _balance()
        yield "balance", balance["id"], 0, None, None, None, balance
        yield from _ledger_objects(self)


def build(platform: PlatformData, discrepancy_rate: float = 0.0005, seed: int | None = None) -> MollieAccount:
    """The account; plants refunds and order changes on the platform too (written when its sink closes)."""
    rng = random.Random((seed if seed is not None else platform.seed) + 7919)
    payments = platform.payments
    paid_us = np.array(payments.paid_us, dtype=np.int64)
    paid = paid_us[paid_us != NONE_US]
    first = from_us(int(paid.min())).astimezone(platform.as_of.tzinfo) if len(paid) else None
    windows = Windows(settlement_windows(first, platform.as_of) if first else [])
    if not len(windows):
        raise ValueError("the demo needs at least one settled half-month: generate more history")
    account = MollieAccount(platform, windows, np.array(payments.amount_cents, dtype=np.int32), paid_us)
    _plant(account, rng, max(1, round(discrepancy_rate * len(platform.orders))))
    _mirror_refunds(account)
    _settle(account, rng)
    _draw_ledger(account, rng)
    return account


def _candidates(account: MollieAccount, rng: random.Random) -> tuple[array, array]:
    """Clean paid payments and lone failed ones of settled windows (but the last), shuffled."""
    payments, orders = account.platform.payments, account.platform.orders
    status = np.frombuffer(payments.status.column, dtype=np.uint8)
    order_index = np.array(payments.order_id, dtype=np.int32) - 1
    order_status = np.frombuffer(orders.status.column, dtype=np.uint8)[order_index]
    last = len(account.windows) - 1
    paid_window = account.windows.of_us(account.paid_us)
    created_window = account.windows.of_us(np.frombuffer(payments.created_us, dtype=np.int64))
    lone = np.bincount(order_index)[order_index] == 1
    clean_paid = _index_array(
        (status == payments.status.code["paid"])
        & (order_status == orders.status.code["paid"])
        & (paid_window >= 0)
        & (paid_window < last)
    )
    rng.shuffle(clean_paid)
    failed = _index_array(
        (status == payments.status.code["failed"])
        & (order_status == orders.status.code["failed"])
        & lone
        & (created_window >= 0)
        & (created_window < last)
    )
    rng.shuffle(failed)
    return clean_paid, failed


def _index_array(mask: np.ndarray) -> array:
    """Where the mask holds, as an array random.shuffle can shuffle (a list of ints would take 4x the memory)."""
    indexes = array("q")
    indexes.frombytes(np.flatnonzero(mask).astype(np.int64).tobytes())
    return indexes


def _chunks(*columns: np.ndarray, order: np.ndarray | None = None, size: int = 65536):
    """Rows of parallel columns (in `order` when given) as Python values, a chunk at a time (tolist of a whole
    column costs 36 MB per million)."""
    for start in range(0, len(columns[0]), size):
        rows = slice(start, start + size) if order is None else order[start : start + size]
        yield from zip(*(c[rows].tolist() for c in columns), strict=True)


def _plant(account: MollieAccount, rng: random.Random, per_kind: int) -> None:
    clean_paid, failed = _candidates(account, rng)
    windows, paid_us = account.windows, account.paid_us
    latest_settled = windows.windows[-1][1] + timedelta(days=2, hours=9)
    settled_long_ago = to_us(latest_settled - timedelta(days=20))
    for _ in range(per_kind):
        p = clean_paid.pop()
        delta = rng.choice([100, -250, 10, 500])  # cents: 1.00, -2.50, 0.10, 5.00
        account.amount_cents[p] += delta
        _plant_row(account, "amount_mismatch", p, windows.of(_paid_at(account, p)))

        p = next(x for x in clean_paid if paid_us[x] < settled_long_ago)
        clean_paid.remove(p)
        account.unsettled.add(p)
        _plant_row(account, "not_settled", p)

        _plant_chargeback(account, rng, clean_paid.pop())
        _plant_mollie_only_refund(account, rng, clean_paid.pop())
        _plant_platform_only_refund(account, rng, clean_paid.pop())

        p = failed.pop()
        paid_at = from_us(account.platform.payments.created_us[p]) + timedelta(minutes=2)
        paid_us[p] = to_us(paid_at)
        account.paid_in_mollie_only.add(p)
        _plant_row(account, "status_mismatch", p, windows.of(paid_at))

        window = rng.randrange(len(windows) - 1)
        lo, hi = windows.windows[window]
        at = lo + timedelta(seconds=rng.uniform(0, (hi - lo).total_seconds()))
        ghost_id = mollie_id(rng, "tr_")
        account.ghosts.append(Ghost(ghost_id, at, rng.choice([2500, 4999, 8750, 12000])))
        _plant_row(account, "missing_in_platform", ghost_id, window)
    ghosts = account.ghosts
    account.amount_cents = np.concatenate([account.amount_cents, [g.amount_cents for g in ghosts]]).astype(np.int32)
    account.paid_us = np.concatenate([paid_us, [to_us(g.paid_at) for g in ghosts]]).astype(np.int64)


def _paid_at(account: MollieAccount, p: int) -> datetime | None:
    return from_us(int(account.paid_us[p]))


def _later_in_a_window(account: MollieAccount, rng: random.Random, p: int, days: float) -> datetime:
    at = _paid_at(account, p) + timedelta(days=rng.uniform(1, days))
    return at if account.windows.of(at) is not None else _paid_at(account, p) + timedelta(minutes=10)


def _plant_chargeback(account: MollieAccount, rng: random.Random, p: int) -> None:
    at = _later_in_a_window(account, rng, p, 10)
    code, description = rng.choice(CHARGEBACK_REASONS)
    chargeback = Chargeback(mollie_id(rng, "chb_"), p, int(account.amount_cents[p]), at, code, description)
    account.chargebacks.append(chargeback)
    _plant_row(account, "chargeback", p, account.windows.of(at))


def _plant_mollie_only_refund(account: MollieAccount, rng: random.Random, p: int) -> None:
    at = _later_in_a_window(account, rng, p, 8)
    amount = min(int(account.platform.payments.amount_cents[p]), 1000)
    refund = MollieRefund(mollie_id(rng, "re_"), p, amount, "refunded", at, "goodwill refund in the Mollie dashboard")
    account.refunds.append(refund)
    _plant_row(account, "refund_mollie_only", p, account.windows.of(at), refund.id)


def _plant_platform_only_refund(account: MollieAccount, rng: random.Random, p: int) -> None:
    platform = account.platform
    order_id = platform.payments.order_id[p]
    at = _paid_at(account, p) + timedelta(days=rng.uniform(1, 8))
    amount = min(platform.payments.amount_cents[p], 1500)
    r = _add_refund(platform, rng, p + 1, amount, at, "admin", "refund recorded but never sent to Mollie", "refunded")
    platform.orders.status[order_id - 1] = "partially_refunded"
    platform.changed_orders[order_id] = max(platform.changed_orders.get(order_id, r.updated_at), r.updated_at)
    _plant_row(account, "refund_platform_only", p, None, r.mollie_refund_id)


def _plant_row(account, kind, payment, window=None, refund_id=None) -> None:
    payment_id = payment if isinstance(payment, str) else account.platform.payments.mollie_id(payment)
    account.planted.append(
        {
            "kind": kind,
            "mollie_payment_id": payment_id,
            "mollie_refund_id": refund_id,
            "expected_match_status": PLANTED_KINDS[kind],
            "_window": window,
        }
    )


def _mirror_refunds(account: MollieAccount) -> None:
    """Mollie has the platform's refunds but the planted platform-only ones."""
    platform_only = {p["mollie_refund_id"] for p in account.planted if p["kind"] == "refund_platform_only"}
    for r in account.platform.refunds:
        if r.mollie_refund_id not in platform_only:
            account.refunds.append(
                MollieRefund(
                    r.mollie_refund_id, r.payment_id - 1, r.amount_cents, r.status, r.created_at, r.reason or "Refund"
                )
            )
    account.refunded_cents = np.zeros(len(account.amount_cents), dtype=np.int32)
    account.charged_back_cents = np.zeros(len(account.amount_cents), dtype=np.int32)
    for refund in account.refunds:
        if refund.status not in ("failed", "canceled"):
            account.refunded_cents[refund.payment] += refund.amount_cents
    for chargeback in account.chargebacks:
        account.charged_back_cents[chargeback.payment] += chargeback.amount_cents


def _methods(account: MollieAccount) -> tuple[tuple[str | None, ...], np.ndarray]:
    """Each payment's method as codes into the returned names; one without (a ghost) is iDEAL."""
    codes = account.platform.payments.method
    column = np.frombuffer(codes.column, dtype=np.uint8).copy()
    column[column == codes.code[None]] = codes.code["ideal"]
    ghosts = np.full(len(account.ghosts), codes.code["ideal"], dtype=np.uint8)
    return codes.values, np.concatenate([column, ghosts])


def _settle(account: MollieAccount, rng: random.Random) -> None:
    """Which settlement holds each payment, refund and chargeback; the settlements with their periods."""
    windows = account.windows
    window = windows.of_us(account.paid_us)
    window[np.fromiter(account.unsettled, dtype=np.int64)] = -1
    account.settlement_window = window
    names, methods = _methods(account)
    settled = window >= 0
    counts = np.zeros((len(windows), len(names)), dtype=np.int64)
    cents = np.zeros((len(windows), len(names)), dtype=np.int64)
    np.add.at(counts, (window[settled], methods[settled]), 1)
    np.add.at(cents, (window[settled], methods[settled]), account.amount_cents[settled])
    refunds, chargebacks = [[0, 0] for _ in windows.windows], [[0, 0] for _ in windows.windows]
    held = [(r, windows.of(r.created_at) if r.status == "refunded" else None) for r in account.refunds]
    held += [(c, windows.of(c.at)) for c in account.chargebacks]
    for item, w in held:
        if w is not None:
            totals = refunds if isinstance(item, MollieRefund) else chargebacks
            totals[w][0] += 1
            totals[w][1] += item.amount_cents
    for w, (lo, hi) in enumerate(windows.windows):
        by_method = {names[m]: (int(counts[w, m]), int(cents[w, m])) for m in range(len(names)) if counts[w, m]}
        settlement, transfer = _settlement(rng, w == len(windows) - 1, lo, hi, by_method, refunds[w], chargebacks[w])
        account.settlements.append(settlement)
        if transfer:
            account.transfers.append(transfer)
    ids = [s["id"] for s in account.settlements]
    for item, w in held:
        item.settlement_id = None if w is None else ids[w]
    for row in account.planted:
        w = row.pop("_window")
        row["settlement_id"] = None if w is None else ids[w]


def _settlement(rng, is_last, lo, hi, by_method, refunds, chargebacks) -> tuple[dict, tuple | None]:
    created = hi + timedelta(days=2, hours=5)
    settlement_id = mollie_id(rng, "stl_")
    periods, amount = settlement_periods(by_method, refunds, chargebacks, lo)
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
    return settlement, None if is_last else (settlement, created + timedelta(hours=4), amount)


def settlement_periods(
    by_method: dict[str, tuple[int, int]],
    refunds: tuple[int, int],
    chargebacks: tuple[int, int],
    period_start: datetime,
) -> tuple[dict, Decimal]:
    """Revenue and cost lines as Mollie reports them, and the settlement amount they imply, from the
    (count, cents) of each method's payments, of the refunds and of the chargebacks.

    Mollie's identity: amount = sum(revenue amountNet) - sum(costs amountGross), rounded to cents.
    The refund revenue line has a negative amountNet and a positive amountGross (the documented sign
    trap); chargebacks are negative on both.
    """
    revenue, costs = [], []
    f4 = lambda d: money(d, places=FOUR)  # noqa: E731
    for method, (count, cents) in sorted(by_method.items()):
        total = Decimal(cents) / 100
        label = METHOD_NAMES.get(method, method)
        revenue.append(
            {
                "description": label,
                "method": method,
                "count": count,
                "amountNet": f4(total),
                "amountVat": None,
                "amountGross": f4(total),
            }
        )
        net, vat, gross = fee(method, count, total)
        fixed, pct = RATES[method]
        rate = {"fixed": f4(fixed), "percentage": str(pct) if pct else None}
        costs.append(
            {
                "description": label,
                "method": method,
                "count": count,
                "rate": rate,
                "amountNet": f4(net),
                "amountVat": f4(vat),
                "amountGross": f4(gross),
            }
        )
    for method, (count, cents), label in (("refund", refunds, "Refunds"), ("chargeback", chargebacks, "Chargebacks")):
        if not count:
            continue
        total = Decimal(cents) / 100
        gross = total if method == "refund" else -total
        revenue.append(
            {
                "description": label,
                "method": method,
                "count": count,
                "amountNet": f4(-total),
                "amountVat": None,
                "amountGross": f4(gross),
            }
        )
        net, vat, gross_cost = fee(method, count, Decimal(0))
        rate = {"fixed": f4(RATES[method][0]), "percentage": None}
        costs.append(
            {
                "description": label,
                "method": method,
                "count": count,
                "rate": rate,
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


LEDGER_KINDS = ("payment", "refund", "chargeback", "outgoing-transfer")


def _draw_ledger(account: MollieAccount, rng: random.Random) -> None:
    """The balance transactions' ids, drawn in the ledger's order of movements (paid payments, refunds,
    chargebacks, payouts), and each one's createdAt second; the objects are made when written."""
    paid = np.flatnonzero(account.paid_us != NONE_US).astype(np.int32)
    refunded = [i for i, r in enumerate(account.refunds) if r.status == "refunded"]
    sources = [
        (0, paid, account.paid_us[paid] // 1_000_000),
        (1, refunded, [to_us(account.refunds[i].created_at) // 1_000_000 for i in refunded]),
        (2, range(len(account.chargebacks)), [to_us(c.at) // 1_000_000 for c in account.chargebacks]),
        (3, range(len(account.transfers)), [to_us(at) // 1_000_000 for _, at, _ in account.transfers]),
    ]
    total = sum(len(indexes) for _, indexes, _ in sources)
    chars = bytearray()
    kinds, refs, seconds = np.empty(total, np.uint8), np.empty(total, np.int32), np.empty(total, np.int64)
    start = 0
    for kind, indexes, secs in sources:
        for _ in range(len(indexes)):
            chars += _id_chars(rng).encode()
        end = start + len(indexes)
        kinds[start:end], refs[start:end], seconds[start:end] = kind, indexes, secs
        start = end
    del sources, paid
    ids = np.frombuffer(chars, dtype="S10")
    # the list's order; the columns stay in drawing order (sorted copies would double them at the peak)
    order = np.lexsort((ids, seconds)).astype(np.int32)
    account.ledger = {"ids": ids, "kinds": kinds, "refs": refs, "order": order}


def _iso_us(us: int) -> str | None:
    return None if us == NONE_US else (EPOCH + timedelta(seconds=us // 1_000_000)).isoformat()


FINAL_AT = {"failed": "failedAt", "canceled": "canceledAt", "expired": "expiredAt"}


def _payment_objects(account: MollieAccount) -> Iterator[tuple]:
    payments = account.platform.payments
    n = len(payments)
    ghosts_created = [to_us(g.paid_at - timedelta(minutes=1)) for g in account.ghosts]
    seconds = np.concatenate([np.frombuffer(payments.created_us, dtype=np.int64), ghosts_created]) // 1_000_000
    ids = np.concatenate(
        [np.frombuffer(payments.id_chars, dtype="S10"), np.array([g.id[3:] for g in account.ghosts], dtype="S10")]
    )
    order = np.lexsort((ids, seconds)).astype(np.int32)
    del ids, seconds
    settlement_ids = [s["id"] for s in account.settlements]
    for seq, (i,) in enumerate(_chunks(order)):
        w = int(account.settlement_window[i])
        settlement_id = settlement_ids[w] if w >= 0 else None
        body = _platform_payment(account, i) if i < n else _ghost_payment(account.ghosts[i - n])
        body["settlementId"] = settlement_id
        body["amount"] = money(int(account.amount_cents[i]))
        refunded = int(account.refunded_cents[i])
        body["amountRefunded"] = money(refunded)
        body["amountRemaining"] = money(max(0, int(account.amount_cents[i]) - refunded))
        if account.charged_back_cents[i]:
            body["amountChargedBack"] = money(int(account.charged_back_cents[i]))
        yield "payment", body["id"], seq, None, settlement_id, None, body


def _platform_payment(account: MollieAccount, i: int) -> dict:
    payments = account.platform.payments
    number = account.platform.orders.number(payments.order_id[i])
    reason = payments.failure_reason[i]
    status = "paid" if i in account.paid_in_mollie_only else payments.status[i]
    obj = {
        "resource": "payment",
        "id": payments.mollie_id(i),
        "mode": "test",
        "createdAt": _iso_us(payments.created_us[i]),
        "description": f"Order {number}",
        "method": payments.method[i],
        "metadata": {"order_number": number},
        "status": status,
        "paidAt": _iso_us(int(account.paid_us[i])),
        "profileId": "pfl_BoxOfficeNL",
        "sequenceType": "oneoff",
        "redirectUrl": f"https://tickets.example.org/orders/{number}",
        "webhookUrl": "https://tickets.example.org/webhooks/mollie",
        "details": {"failureReason": reason} if reason and status != "paid" else None,
    }
    if status in FINAL_AT:
        obj[FINAL_AT[status]] = _iso_us(payments.updated_us[i])
    if status == "open":
        obj["expiresAt"] = iso(from_us(payments.created_us[i]) + timedelta(minutes=15))
    return obj


def _ghost_payment(ghost: Ghost) -> dict:
    return {
        "resource": "payment",
        "id": ghost.id,
        "mode": "test",
        "createdAt": iso(ghost.paid_at - timedelta(minutes=1)),
        "description": "Payment link",
        "method": "ideal",
        "metadata": None,
        "status": "paid",
        "paidAt": iso(ghost.paid_at),
        "profileId": "pfl_BoxOfficeNL",
        "sequenceType": "oneoff",
        "details": None,
    }


def _refund_objects(account: MollieAccount) -> Iterator[tuple]:
    refunds = sorted(account.refunds, key=lambda r: (iso(r.created_at), r.id))
    for seq, r in enumerate(refunds):
        payment_id = _payment_id(account, r.payment)
        body = {
            "resource": "refund",
            "id": r.id,
            "amount": money(r.amount_cents),
            "status": r.status,
            "createdAt": iso(r.created_at),
            "description": r.description,
            "metadata": None,
            "paymentId": payment_id,
            "settlementId": r.settlement_id,
        }
        yield "refund", r.id, seq, payment_id, r.settlement_id, None, body


def _payment_id(account: MollieAccount, i: int) -> str:
    n = len(account.platform.payments)
    return account.platform.payments.mollie_id(i) if i < n else account.ghosts[i - n].id


def _chargeback_objects(account: MollieAccount) -> Iterator[tuple]:
    for seq, c in enumerate(sorted(account.chargebacks, key=lambda c: (iso(c.at), c.id))):
        payment_id = _payment_id(account, c.payment)
        body = {
            "resource": "chargeback",
            "id": c.id,
            "amount": money(c.amount_cents),
            "createdAt": iso(c.at),
            "reason": {"code": c.code, "description": c.description},
            "reversedAt": None,
            "paymentId": payment_id,
            "settlementId": c.settlement_id,
        }
        yield "chargeback", c.id, seq, payment_id, c.settlement_id, None, body


@lru_cache(maxsize=65536)
def _fee_cents(method: str, cents: int) -> int:
    """Mollie's fee for one movement (VAT included), in cents."""
    volume = Decimal(cents) / 100
    return int(fee(method, 1, volume)[2].quantize(CENT, ROUND_HALF_UP) * 100)


def _ledger_objects(account: MollieAccount) -> Iterator[tuple]:
    """Mollie's ledger: resultAmount = initialAmount + deductions for every movement on the balance."""
    names, methods = _methods(account)
    ledger = account.ledger
    for seq, (chars, kind, ref) in enumerate(
        _chunks(ledger["ids"], ledger["kinds"], ledger["refs"], order=ledger["order"])
    ):
        kind = LEDGER_KINDS[kind]
        if kind == "payment":
            initial = int(account.amount_cents[ref])
            deductions = -_fee_cents(names[methods[ref]], initial)
            at, context = _iso_us(int(account.paid_us[ref])), {"paymentId": _payment_id(account, ref)}
        elif kind == "refund":
            r = account.refunds[ref]
            initial, deductions = -r.amount_cents, -_fee_cents("refund", 0)
            at, context = iso(r.created_at), {"paymentId": _payment_id(account, r.payment), "refundId": r.id}
        elif kind == "chargeback":
            c = account.chargebacks[ref]
            initial, deductions = -c.amount_cents, -_fee_cents("chargeback", 0)
            at, context = iso(c.at), {"paymentId": _payment_id(account, c.payment), "chargebackId": c.id}
        else:
            settlement, at, total = account.transfers[ref]
            initial, deductions = -int(total * 100), 0
            at, context = iso(at), {"settlementId": settlement["id"], "transferId": f"trf_{settlement['id'][4:]}"}
        body = {
            "resource": "balance_transaction",
            "id": "baltr_" + chars.decode(),
            "type": kind,
            "resultAmount": money(initial + deductions),
            "initialAmount": money(initial),
            "deductions": money(deductions),
            "createdAt": at,
            "context": context,
        }
        yield "balance_transaction", body["id"], seq, BALANCE_ID, None, None, body


def fee(method: str, count: int, volume: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    fixed, pct = RATES[method]
    net = (fixed * count + volume * pct / 100).quantize(FOUR, ROUND_HALF_UP)
    vat = (net * VAT).quantize(FOUR, ROUND_HALF_UP)
    return net, vat, net + vat


BALANCE_ID = "bal_BoxOfficeEUR"


def _balance() -> dict:
    return {
        "resource": "balance",
        "id": BALANCE_ID,
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
