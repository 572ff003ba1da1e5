"""`boxoffice bench dashboards` (`make bench-dashboards`): every card's SQL on the warehouse as its role, with its
filters empty, each set alone, and all set, each run ROUNDS times after a warm-up; p50 and p95 per card against
the 200 ms each card may take (the seeds ask for dashboards under 2 s). Results go to docs/benchmarks.md."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime

import psycopg
from psycopg import sql as pgsql

from dashboards import catalog
from dashboards.sql import render

ROUNDS = 20
TARGET_MS = 200
VALUES = {  # a filter value of each kind, as an analyst sets it
    "date_range": "past3months",
    "organization": [1, 2, 3],
    "event_status": ["live"],
    "order_number": "ORD-0000001",
    "email": "someone@example.com",
    "qr_code": "NOT-A-CODE",
    "mollie_id": "tr_NotAnId",
}


def timings(conn, dashboard, card, values: dict) -> list[float]:
    text, params = render(card.sql, card.variables, dashboard.field_filters(card), values)
    conn.execute(text, params).fetchall()  # warm-up: the plan and the pages in cache, as a dashboard reopened
    seconds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        conn.execute(text, params).fetchall()
        seconds.append((time.perf_counter() - started) * 1000)
    return seconds


def measure(settings) -> list[tuple[str, str, str, float, float]]:
    """(dashboard, card, filters, p50 ms, p95 ms) for every card: filters empty, each alone, all."""
    roles = {"analytics": settings.analytics_role, "support": settings.support_role}
    rows = []
    with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
        for dashboard in catalog.dashboards():
            conn.execute(pgsql.SQL("set role {}").format(pgsql.Identifier(roles[dashboard.connection.role])))
            for card in dashboard.cards:
                tags = sorted(set(card.fields) | set(card.variables))
                cases = [("empty", {})] + [(tag, {tag: VALUES[tag]}) for tag in tags]
                cases += [("all", {t: VALUES[t] for t in tags})] if len(tags) > 1 else []
                for label, values in cases:
                    ms = sorted(timings(conn, dashboard, card, values))
                    p95 = ms[int(round(0.95 * (len(ms) - 1)))]
                    rows.append((dashboard.name, card.name, label, statistics.median(ms), p95))
            conn.execute("reset role")
    return rows


def report(rows, orders: int, machine: str) -> str:
    slowest = sorted(rows, key=lambda r: -r[4])
    over = [r for r in rows if r[4] > TARGET_MS]
    verdict = "**met**" if not over else f"**not met** ({len(over)} of {len(rows)} over)"
    by_dashboard: dict[str, float] = {}
    for dashboard, _, label, _, p95 in rows:
        if label == "empty":
            by_dashboard[dashboard] = by_dashboard.get(dashboard, 0.0) + p95
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d}: every dashboard card at {orders:,} orders",
        "",
        f"`make bench-dashboards` on {machine}: each card's SQL as its role, filters empty, each alone and all "
        f"set, {ROUNDS} runs after a warm-up. Target p95 <= {TARGET_MS} ms per card: {verdict}; slowest p95 "
        f"{slowest[0][4]:.1f} ms ({slowest[0][1]}, filters {slowest[0][2]}).",
        "",
        "A dashboard's cards one after another, p95 summed (Metabase runs them in parallel): "
        + ", ".join(f"{name} {ms:,.0f} ms" for name, ms in by_dashboard.items())
        + ".",
        "",
        "| dashboard | card | filters | p50 ms | p95 ms |",
        "|---|---|---|---|---|",
        *(f"| {d} | {c} | {f} | {p50:.1f} | {p95:.1f} |" for d, c, f, p50, p95 in slowest),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    from bench.extractor import machine, prepend_to_benchmarks
    from boxoffice.settings import Settings

    settings = Settings.load()
    with psycopg.connect(settings.warehouse_dsn) as conn:
        (orders,) = conn.execute("select count(*) from raw.platform_orders").fetchone()
    text = report(measure(settings), orders, machine(settings.warehouse_dsn))
    prepend_to_benchmarks(text)
    print(text)
