"""The marts of issue 4 against independent computations over the sources.

Every expected number here is computed in Python from the platform database (and the Mollie sandbox
for Mollie's fees), not with the marts' SQL: the same mistake cannot be made twice.
"""

import hashlib
import json
import os
import statistics
import subprocess
import sys
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.rows import dict_row

from .conftest import AS_OF, PII_SALT

TZ = ZoneInfo("Europe/Amsterdam")
CENT = Decimal("0.01")


def rows(conn, query, *params):
    return conn.cursor(row_factory=dict_row).execute(query, params).fetchall()


def money(cents) -> Decimal:
    return (Decimal(cents) / 100).quantize(CENT)


def pii(value: str) -> str:
    return hashlib.sha256((PII_SALT + value.lower()).encode()).hexdigest()


@pytest.fixture(scope="module")
def src(source):
    orders = rows(source, "select * from orders")
    return {
        "orders": orders,
        "paid": [o for o in orders if o["paid_at"] is not None and o["currency"] == "EUR" and o["paid_at"] <= AS_OF],
        "organizations": rows(source, "select * from organizations"),
        "events": rows(source, "select * from events"),
        "payments": rows(source, "select * from payments"),
        "refunds": rows(source, "select * from refunds"),
    }


@pytest.fixture(scope="module")
def mollie_fees(sandbox_db, src):
    """Mollie's fee per platform payment id, from the sandbox's balance transactions (Mollie's side)."""
    fee_by_mollie_id = defaultdict(Decimal)
    for (body,) in sandbox_db.execute("select body from objects where kind = 'balance_transaction'"):
        payment_id = (body.get("context") or {}).get("paymentId")
        if payment_id:
            fee_by_mollie_id[payment_id] -= Decimal(body["deductions"]["value"])
    by_order = defaultdict(Decimal)
    for p in src["payments"]:
        by_order[p["order_id"]] += fee_by_mollie_id.get(p["mollie_payment_id"], Decimal(0))
    return by_order


def local(ts):
    return ts.astimezone(TZ)


def test_kpi_snapshot_equals_python_over_the_source(src, mollie_fees, warehouse):
    (kpi,) = rows(warehouse, "select * from marts.kpi_snapshot")
    paid = src["paid"]
    now = local(AS_OF)
    month = now.date().replace(day=1)
    last_month = (month - timedelta(days=1)).replace(day=1)
    last_order = defaultdict(lambda: None)
    for o in src["orders"]:
        if last_order[o["organization_id"]] is None or o["created_at"] > last_order[o["organization_id"]]:
            last_order[o["organization_id"]] = o["created_at"]
    status = {}
    for g in src["organizations"]:
        if g["status"] == "suspended":
            status[g["id"]] = "suspended"
        elif (last_order[g["id"]] or g["created_at"]) < AS_OF - timedelta(days=90):
            status[g["id"]] = "churned"
        else:
            status[g["id"]] = "active"
    gmv = sum(money(o["total_cents"]) for o in paid)
    tickets = sum(o["ticket_count"] for o in paid)
    fees = sum(mollie_fees[o["id"]] for o in paid)
    expected = {
        "organizations_total": len(src["organizations"]),
        "organizations_active": list(status.values()).count("active"),
        "organizations_suspended": list(status.values()).count("suspended"),
        "organizations_churned": list(status.values()).count("churned"),
        "organizations_new_this_month": sum(local(g["created_at"]).date() >= month for g in src["organizations"]),
        "events_total": len(src["events"]),
        "events_live": sum(e["status"] == "live" for e in src["events"]),
        "events_upcoming_30d": sum(
            e["status"] == "live" and AS_OF < e["starts_at"] <= AS_OF + timedelta(days=30) for e in src["events"]
        ),
        "events_this_month": sum(local(e["starts_at"]).date().replace(day=1) == month for e in src["events"]),
        "gmv_total": gmv,
        "gmv_this_month": sum(money(o["total_cents"]) for o in paid if local(o["paid_at"]).date() >= month),
        "gmv_last_month": sum(
            money(o["total_cents"]) for o in paid if last_month <= local(o["paid_at"]).date() < month
        ),
        "tickets_sold_total": tickets,
        "orders_completed_total": len(paid),
        "average_order_value": (gmv / len(paid)).quantize(CENT),
        "average_ticket_price": (sum(money(o["tickets_amount_cents"]) for o in paid) / tickets).quantize(CENT),
        "platform_fees_total": sum(money(o["platform_fee_cents"]) for o in paid),
        "service_fees_total": sum(money(o["service_fee_cents"]) for o in paid),
        "mollie_fees_total": fees,
        "net_platform_revenue_total": sum(money(o["platform_fee_cents"] + o["service_fee_cents"]) for o in paid) - fees,
    }
    assert {k: kpi[k] for k in expected} == expected
    assert expected["organizations_churned"] > 0 and expected["mollie_fees_total"] > 0  # the data exercises both
    assert kpi["events_per_organization"] == (Decimal(len(src["events"])) / len(src["organizations"])).quantize(CENT)


@pytest.mark.parametrize("period", ["today", "this_week", "this_month"])
def test_kpi_periods_compare_like_for_like_with_the_previous_period(period, src, mollie_fees, warehouse):
    now = local(AS_OF).replace(tzinfo=None)
    start = {
        "today": now.replace(hour=0, minute=0, second=0, microsecond=0),
        "this_week": (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0),
        "this_month": now.replace(day=1, hour=0, minute=0, second=0, microsecond=0),
    }[period]
    if period == "this_month":
        previous = (start - timedelta(days=1)).replace(day=1)
    else:
        previous = start - (timedelta(days=1) if period == "today" else timedelta(weeks=1))
    previous_end = min(previous + (now - start), start)

    def inside(ts, lo, hi):
        return lo <= local(ts).replace(tzinfo=None) < hi

    def window(lo, hi):
        paid = [o for o in src["paid"] if inside(o["paid_at"], lo, hi)]
        created = [o for o in src["orders"] if inside(o["created_at"], lo, hi)]
        gmv = sum(money(o["total_cents"]) for o in paid)
        tickets = sum(o["ticket_count"] for o in paid)
        fees = {k: sum(money(o[f"{k}_fee_cents"]) for o in paid) for k in ("platform", "service")}
        mollie = sum(mollie_fees[o["id"]] for o in paid)
        return {
            "gmv": gmv,
            "orders_completed": len(paid),
            "tickets_sold": tickets,
            "average_ticket_price": (sum(money(o["tickets_amount_cents"]) for o in paid) / tickets).quantize(CENT)
            if tickets
            else None,
            "average_order_value": (gmv / len(paid)).quantize(CENT) if paid else None,
            "platform_fees": fees["platform"],
            "service_fees": fees["service"],
            "mollie_fees": mollie,
            "net_platform_revenue": fees["platform"] + fees["service"] - mollie,
            "new_organizations": sum(inside(g["created_at"], lo, hi) for g in src["organizations"]),
            "new_events": sum(inside(e["created_at"], lo, hi) for e in src["events"]),
            "organizations_total": sum(local(g["created_at"]).replace(tzinfo=None) < hi for g in src["organizations"]),
            "active_organizations": len({o["organization_id"] for o in created}),
            "active_buyers": len({o["buyer_email"].lower() for o in paid}),
        }

    current, before = window(start, now), window(previous, previous_end)
    got = {r["kpi"]: r for r in rows(warehouse, "select * from marts.kpi_periods where period = %s", period)}
    assert len(got) == 14
    assert set(got) == set(current)
    for kpi in current:
        assert (got[kpi]["current_value"], got[kpi]["previous_value"]) == (current[kpi], before[kpi]), kpi
        if current[kpi] is not None and before[kpi] is not None:
            direction = "up" if current[kpi] > before[kpi] else "down" if current[kpi] < before[kpi] else "flat"
            assert got[kpi]["direction"] == direction, kpi
    assert current["orders_completed"] + before["orders_completed"] > 0  # the window is not empty


def refunded_by_order(src) -> dict[int, Decimal]:
    """What "refunded" means, stated apart from the marts: issued and not (yet) failed or canceled."""
    order_of_payment = {p["id"]: p["order_id"] for p in src["payments"]}
    refunded = defaultdict(Decimal)
    for r in src["refunds"]:
        if r["status"] in ("queued", "pending", "processing", "refunded"):
            refunded[order_of_payment[r["payment_id"]]] += money(r["amount_cents"])
    return refunded


def test_revenue_by_organization_and_monthly_summary_equal_the_source(src, mollie_fees, warehouse):
    paid = [o for o in src["orders"] if o["paid_at"] is not None]
    refunded = refunded_by_order(src)
    assert any(r["status"] != "refunded" for r in src["refunds"])  # in-flight refunds count too
    by_org = defaultdict(lambda: defaultdict(Decimal))
    by_month = defaultdict(lambda: defaultdict(Decimal))
    for o in paid:
        for target in (by_org[o["organization_id"]], by_month[local(o["paid_at"]).date().replace(day=1)]):
            target["gmv"] += money(o["total_cents"])
            target["service_fees"] += money(o["service_fee_cents"])
            target["platform_fees"] += money(o["platform_fee_cents"])
            target["mollie_fees"] += mollie_fees[o["id"]]
            target["refunded"] += refunded[o["id"]]
        last = by_org[o["organization_id"]].get("last_payment_at")
        by_org[o["organization_id"]]["last_payment_at"] = max(last, o["paid_at"]) if last else o["paid_at"]
    mart = {r["organization_id"]: r for r in rows(warehouse, "select * from marts.fct_revenue_by_organization")}
    assert set(mart) == set(by_org)
    for org_id, e in by_org.items():
        m = mart[org_id]
        assert (m["gmv"], m["service_fees"], m["platform_fees"], m["mollie_fees"], m["last_payment_at"]) == (
            e["gmv"],
            e["service_fees"],
            e["platform_fees"],
            e["mollie_fees"],
            e["last_payment_at"],
        ), org_id
        assert m["refunded_amount"] == e["refunded"], org_id
        assert m["net_revenue"] == e["service_fees"] + e["platform_fees"] - e["mollie_fees"]
    monthly = {r["month_start"]: r for r in rows(warehouse, "select * from marts.fct_financial_monthly")}
    assert set(monthly) == set(by_month)
    for month, e in by_month.items():
        m = monthly[month]
        assert (m["gross_revenue"], m["platform_fees"], m["service_fees"], m["mollie_costs"], m["refunded_amount"]) == (
            e["gmv"],
            e["platform_fees"],
            e["service_fees"],
            e["mollie_fees"],
            e["refunded"],
        ), month
    # the growth series slices the same money: its months add up to the summary
    growth = dict(warehouse.execute("select month_start, sum(gmv) from marts.growth_monthly group by 1").fetchall())
    assert growth == {m: e["gmv"] for m, e in by_month.items()}


def test_organizations_per_month_add_up_to_the_total(src, warehouse):
    series = rows(warehouse, "select * from marts.growth_organizations_monthly order by month_start")
    assert series[-1]["organizations_total"] == len(src["organizations"])
    new = defaultdict(int)
    for g in src["organizations"]:
        new[local(g["created_at"]).date().replace(day=1)] += 1
    assert {r["month_start"]: r["new_organizations"] for r in series if r["new_organizations"]} == dict(new)


def test_settlement_lines_add_up_to_each_payout_and_every_transfer_pays_its_settlement(warehouse, sandbox_db):
    amounts = {
        b["id"]: Decimal(b["amount"]["value"])
        for (b,) in sandbox_db.execute("select body from objects where kind = 'settlement'")
    }
    lines = dict(
        warehouse.execute(
            "select settlement_id, sum(mollie_amount) from marts.fct_settlement_items group by 1"
        ).fetchall()
    )
    assert set(lines) == set(amounts)
    for settlement_id, amount in amounts.items():  # cost lines carry 4 decimals; Mollie rounds the total
        assert abs(lines[settlement_id] - amount) <= Decimal("0.005"), settlement_id
    payouts = rows(warehouse, "select * from marts.fct_payouts")
    paid_out = [p for p in payouts if p["settlement_status"] == "paidout"]
    assert paid_out and all(p["is_paid_out"] and p["transferred_amount"] == p["settlement_amount"] for p in paid_out)
    (ledger_end, total) = warehouse.execute(
        "select (select running_balance from marts.fct_balance_transactions order by created_at desc, "
        "balance_transaction_id desc limit 1), sum(result_amount) from marts.fct_balance_transactions"
    ).fetchone()
    assert ledger_end == total


def test_the_discrepancy_list_names_every_mismatch_with_a_reason(warehouse):
    mismatches = warehouse.execute(
        "select count(*) from marts.fct_payment_reconciliation where match_status <> 'matched'"
    ).fetchone()[0]
    listed = rows(warehouse, "select * from marts.fct_reconciliation_discrepancies")
    assert sum(r["discrepancy_source"] == "payment" for r in listed) == mismatches > 0
    assert all(r["reason"] for r in listed)


def test_fraud_rules_fire_on_the_planted_patterns_and_nowhere_else(demo, warehouse):
    sources, _ = demo
    expected = set()
    for alert_type, subject in sources.planted_fraud:
        kind, value = subject.split(":", 1)
        expected.add((alert_type, f"{kind}:{pii(value)}" if kind in ("buyer", "ip") else subject))
    alerts = rows(warehouse, "select * from marts.fct_fraud_alerts")
    assert {(a["alert_type"], a["subject"]) for a in alerts} == expected
    assert len(expected) == 7 and len(alerts) == 7  # one alert per planted pattern, nothing on the clean rest
    burst = [a for a in alerts if a["alert_type"] == "failed_payments_burst"]
    assert {a["risk_level"] for a in burst} == {"medium"} and all("5 failed payments" in a["details"] for a in burst)
    (refund,) = [a for a in alerts if a["alert_type"] == "high_refund_rate"]
    assert refund["details"].startswith("8 of 24 paid orders refunded (33.3%)")


def test_payment_latency_percentiles_equal_python_statistics(source, warehouse):
    seconds = [
        (p["paid_at"] - p["created_at"]).total_seconds()
        for p in rows(source, "select created_at, paid_at from payments where status = 'paid' and paid_at <= %s", AS_OF)
    ]
    row = rows(
        warehouse, "select * from marts.health_payment_latency where window_name = 'all' and payment_method = 'all'"
    )[0]
    q = statistics.quantiles(seconds, n=100, method="inclusive")  # percentile_cont's linear interpolation
    assert row["paid_payments"] == len(seconds)
    assert float(row["median_seconds"]) == pytest.approx(statistics.median(seconds), abs=0.05)
    assert float(row["p95_seconds"]) == pytest.approx(q[94], abs=0.05)
    assert float(row["p99_seconds"]) == pytest.approx(q[98], abs=0.05)


def test_payment_failures_per_window_equal_the_source(source, warehouse):
    failures = rows(warehouse, "select * from marts.health_payment_failures")
    got = {(r["window_name"], r["failure_reason"]): r for r in failures}
    for name, span in (("24h", timedelta(hours=24)), ("7d", timedelta(days=7)), ("30d", timedelta(days=30))):
        window = rows(
            source,
            "select status, failure_reason from payments where created_at > %s and created_at <= %s",
            AS_OF - span,
            AS_OF,
        )
        failed = [p for p in window if p["status"] == "failed"]
        assert (got[(name, "all")]["failed_payments"], got[(name, "all")]["payments"]) == (len(failed), len(window))
    assert got[("30d", "all")]["failed_payments"] > 0


def test_new_buyers_per_month_equal_first_purchases_in_the_source(src, warehouse):
    first = {}
    for o in sorted((o for o in src["orders"] if o["paid_at"]), key=lambda o: (o["paid_at"], o["id"])):
        first.setdefault(o["buyer_email"].lower(), local(o["paid_at"]).date().replace(day=1))
    expected = defaultdict(int)
    for month in first.values():
        expected[month] += 1
    got = dict(
        warehouse.execute(
            "select period_start, new_buyers from marts.fct_buyer_activity where grain = 'month'"
        ).fetchall()
    )
    assert got == dict(expected)
    assert warehouse.execute("select count(*) from marts.dim_buyers").fetchone()[0] == len(first)


def test_repeat_purchase_cohorts_equal_the_source(src, warehouse):
    orders = {}
    for o in sorted((o for o in src["orders"] if o["paid_at"]), key=lambda o: (o["paid_at"], o["id"])):
        orders.setdefault(o["buyer_email"].lower(), []).append(o["paid_at"])
    expected = defaultdict(lambda: [0] * 7)
    for paid in orders.values():
        row = expected[local(paid[0]).date().replace(day=1)]
        row[0] += 1
        for i, days in enumerate((1, 7, 30)):
            eligible = paid[0] + timedelta(days=days) <= AS_OF
            row[1 + 2 * i] += eligible
            row[2 + 2 * i] += eligible and len(paid) > 1 and paid[1] <= paid[0] + timedelta(days=days)
    got = {
        r[0]: list(r[1:])
        for r in warehouse.execute(
            "select cohort_month, cohort_buyers, eligible_d1, repeat_d1, eligible_d7, repeat_d7, eligible_d30, "
            "repeat_d30 from marts.fct_buyer_cohorts"
        ).fetchall()
    }
    assert got == dict(expected)
    assert sum(row[6] for row in got.values()) > 0


def test_scans_per_day_event_and_result_equal_the_source(source, warehouse):
    scans, devices = defaultdict(int), defaultdict(set)
    for s in rows(source, "select event_id, result, device_id, scanned_at from scans"):
        key = (local(s["scanned_at"]).date(), s["event_id"], s["result"])
        scans[key] += 1
        if s["device_id"] is not None:
            devices[key].add(s["device_id"])
    got = {
        (day, event, result): (n, d, failed)
        for day, event, result, n, d, failed in warehouse.execute(
            "select date_day, event_id, scan_result, scans, devices, is_failed from marts.health_scans_daily"
        ).fetchall()
    }
    assert got == {key: (n, len(devices[key]), key[2] != "ok") for key, n in scans.items()}
    assert any(d > 1 for _, d, _ in got.values()) and any(failed for _, _, failed in got.values())


def test_active_and_returning_buyers_per_day_week_and_month_equal_the_source(src, warehouse):
    periods = {
        "day": lambda d: d,
        "week": lambda d: d - timedelta(days=d.weekday()),
        "month": lambda d: d.replace(day=1),
    }
    paid = [(o["buyer_email"].lower(), local(o["paid_at"]).date(), o) for o in src["orders"] if o["paid_at"]]
    first = {}
    for buyer, day, _ in sorted(paid, key=lambda p: (p[2]["paid_at"], p[2]["id"])):
        first.setdefault(buyer, day)
    expected = {}
    for grain, period in periods.items():
        active = defaultdict(set)
        for buyer, day, _ in paid:
            active[period(day)].add(buyer)
        for start, buyers in active.items():
            new = sum(1 for b in buyers if period(first[b]) == start)
            expected[(grain, start)] = (len(buyers), len(buyers) - new)
    got = {
        (grain, start): (active, returning)
        for grain, start, active, returning in warehouse.execute(
            "select grain, period_start, active_buyers, returning_buyers from marts.fct_buyer_activity"
        ).fetchall()
    }
    assert got == expected
    assert sum(returning for _, returning in got.values()) > 0


def test_support_finds_an_order_by_each_identifier(source, warehouse):
    order_number, email, qr, mollie_id = source.execute(
        "select o.order_number, o.buyer_email, t.qr_code, p.mollie_payment_id from orders o "
        "join tickets t on t.order_id = o.id join payments p on p.order_id = o.id where o.status = 'paid' "
        "order by o.id limit 1"
    ).fetchone()
    for needle in (order_number, email, qr, mollie_id):
        found = warehouse.execute(
            "select order_number from support.support_order_search where search_text like %s", (f"%{needle.lower()}%",)
        ).fetchall()
        assert (order_number,) in found, needle
    (history,) = warehouse.execute(
        "select scan_history from support.support_ticket_lookup where scans > 1 limit 1"
    ).fetchone()
    assert len(history) > 1 and {"scanned_at", "device_id", "result"} <= set(history[0])


def test_marts_hold_no_email_and_roles_see_only_their_schema(settings, warehouse):
    text_columns = warehouse.execute(
        "select table_name, column_name from information_schema.columns where table_schema = 'marts' "
        "and data_type = 'text'"
    ).fetchall()
    for table, column in text_columns:
        leaked = warehouse.execute(f'select count(*) from marts."{table}" where "{column}" like %s', ("%@%",))
        assert leaked.fetchone()[0] == 0, f"{table}.{column}"
    with psycopg.connect(settings.warehouse_dsn) as conn:
        conn.execute("set role analytics")
        assert conn.execute("select count(*) from marts.kpi_periods").fetchone()[0] == 14 * 3
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select * from support.support_order_search")
    with psycopg.connect(settings.warehouse_dsn) as conn:
        conn.execute("set role support")
        assert conn.execute("select count(*) from support.support_order_search").fetchone()[0] > 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select * from raw.platform_orders")


def test_dbt_docs_generate_documents_every_mart_column(settings, runs, tmp_path):
    from boxoffice.settings import DBT_PROJECT_DIR
    from orchestration.resources import dbt_env

    dbt = os.path.join(os.path.dirname(sys.executable), "dbt")
    subprocess.run(
        [
            dbt,
            "docs",
            "generate",
            "--quiet",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(tmp_path),
        ],
        check=True,
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, **dbt_env(settings)},
    )
    catalog = json.loads((tmp_path / "catalog.json").read_text())
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    marts = [
        n for n in manifest["nodes"].values() if n["resource_type"] == "model" and "/marts/" in n["original_file_path"]
    ]
    assert len(marts) >= 25
    for node in marts:
        assert node["description"] and node["config"]["contract"]["enforced"], node["name"]
        built = catalog["nodes"][node["unique_id"]]["columns"]
        assert set(built) == set(node["columns"]), node["name"]
        assert all(c["description"] for c in node["columns"].values()), node["name"]
