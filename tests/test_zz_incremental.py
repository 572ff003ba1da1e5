"""An incremental run equals a full rebuild, and the whole pipeline runs on PostgreSQL 15.

The sources change the ways a live platform changes them; an incremental run of the session's warehouse
(PostgreSQL 18) must then leave every model of `intermediate`, `marts` and `support` identical, row for row, to a fresh
warehouse built once from the same sources, here on PostgreSQL 15 with the source on 15 too. Runs last:
it changes the session's sources.
"""

from datetime import datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from psycopg.types.json import Jsonb

from boxoffice import dbt_project
from boxoffice.demo import platform as demo_platform
from boxoffice.settings import Settings
from orchestration import pipeline

PLATFORM_CHANGES = {
    "an event goes from live to ended": """
        update events set status = 'ended', updated_at = now()
        where id = (select min(e.id) from events as e join orders as o on o.event_id = e.id
                    where e.status = 'live' and o.paid_at is not null)""",
    "an event with paid orders is renamed (the orders' facts stay the same)": """
        update events set name = name || ' (new date)', updated_at = now()
        where id = (select max(o.event_id) from orders as o where o.paid_at is not null)""",
    "organizations rename themselves as formulas": """
        with named as (
            select o.id, n.name
            from (select id, row_number() over (order by id) as i from organizations
                  where id in (select organization_id from orders where paid_at is not null)) as o
            join unnest(cast(%(formula_names)s as text[])) with ordinality as n (name, i) using (i)
        )
        update organizations as g set name = n.name, updated_at = now() from named as n where g.id = n.id""",
    "an organization is suspended": """
        update organizations set status = 'suspended', updated_at = now()
        where id = (select min(o.organization_id) from orders as o join organizations as g on g.id = o.organization_id
                    where g.status = 'active' and o.paid_at is not null)""",
    "an old order is refunded months later": """
        with target as (
            select p.id as payment_id, p.order_id, p.amount_cents
            from payments as p join orders as o on o.id = p.order_id
            where p.status = 'paid' and o.status = 'paid' and p.paid_at < timestamptz '2026-11-01' - interval '120 days'
              and p.mollie_payment_id = %(refunded_payment)s
        ),
        refund as (
            insert into refunds (id, payment_id, mollie_refund_id, amount_cents, reason, status, initiated_by,
                                 created_at, updated_at)
            select (select max(id) + 1 from refunds), payment_id, 're_LateRefund01', amount_cents, 'event cancelled',
                   'refunded', 'organizer', now(), now()
            from target
            returning payment_id
        )
        update orders set status = 'refunded', updated_at = now() where id = (select order_id from target)""",
    "the late refund's webhook is delivered on its second attempt": """
        insert into webhook_deliveries (id, webhook_id, event_type, organization_id, payload, attempt, max_attempts,
                                        status, response_status, last_error, next_retry_at, created_at, updated_at)
        select (select max(id) + 1 from webhook_deliveries), 'WHK-LATE-REFUND', 'refund.created', o.organization_id,
               jsonb_build_object('refund_id', 're_LateRefund01', 'order_number', o.order_number), 2, 5, 'delivered',
               200, 'HTTP 503 Service Unavailable', null, now(), now()
        from orders as o join payments as p on p.order_id = o.id where p.mollie_payment_id = %(refunded_payment)s""",
    "late scans arrive from an offline door": """
        insert into scans (id, ticket_id, event_id, qr_code, device_id, result, scanned_at, created_at)
        select (select max(id) from scans) + row_number() over (order by t.id), t.id, t.event_id, t.qr_code,
               'door-offline', 'ok', timestamptz '2026-10-20 20:00+00', now()
        from (select * from tickets where status = 'valid' order by id limit 3) as t""",
    "an order's creation is corrected to the day before, the only order of its organization that day": """
        update orders set created_at = created_at - interval '1 day', updated_at = now()
        where id = (
            select min(o.id) from orders as o
            where o.paid_at is not null and not exists (
                select 1 from orders as x
                where x.organization_id = o.organization_id and x.id <> o.id
                  and (x.created_at at time zone %(timezone)s)::date
                      = (o.created_at at time zone %(timezone)s)::date))""",
    "a customer changes email and the order's buyer too": """
        with c as (select min(customer_id) as id from orders where customer_id is not null and paid_at is not null)
        update orders set buyer_email = 'changed.' || buyer_email, updated_at = now()
        where customer_id = (select id from c)""",
    "the platform learns of a payment that only Mollie had, for an order it thought unpaid": """
        with target as (select min(id) as order_id from orders where paid_at is null and status = 'expired'),
        payment as (
            insert into payments (id, order_id, mollie_payment_id, status, method, amount_cents, currency,
                                  failure_reason, created_at, paid_at, updated_at)
            select (select max(id) + 1 from payments), order_id, cast(%(missing_payment)s as text), 'paid', 'ideal',
                   cast(%(missing_cents)s as bigint), 'EUR', null, now(), cast(%(missing_paid_at)s as timestamptz),
                   now()
            from target
            returning order_id, amount_cents, paid_at
        )
        update orders as o set status = 'paid', paid_at = p.paid_at, total_cents = p.amount_cents,
               tickets_amount_cents = p.amount_cents - o.service_fee_cents, updated_at = now()
        from payment as p where o.id = p.order_id""",
}


# Organization names that a spreadsheet would run as formulas (OWASP CSV injection), one per first character.
FORMULA_NAMES = [
    '=HYPERLINK("http://evil.example","open")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def refunded_payment(sandbox_db) -> dict:
    """A paid, unrefunded, settled payment from months before: the one the late refund hits."""
    return sandbox_db.execute(
        "select body from objects where kind = 'payment' and body->>'status' = 'paid' and settlement_id is not null "
        "and (body->>'paidAt')::timestamptz < timestamptz '2026-11-01' - interval '120 days' "
        "and not exists (select 1 from objects as r where r.kind = 'refund' and r.parent_id = objects.id) "
        "and id not in (select mollie_payment_id from planted where mollie_payment_id is not null) order by seq limit 1"
    ).fetchone()[0]


def add_object(sandbox_db, kind: str, body: dict, parent_id: str | None = None) -> None:
    sandbox_db.execute(
        "insert into objects (kind, id, seq, parent_id, body) "
        "values (%s, %s, (select coalesce(max(seq), 0) + 1 from objects where kind = %s), %s, %s)",
        (kind, body["id"], kind, parent_id, Jsonb(body)),
    )


def add_ledger_line(sandbox_db, line_id: str, kind: str, created_at: str, amount: dict, context: dict) -> None:
    """A balance transaction without fees: its result is its amount."""
    (balance,) = sandbox_db.execute("select id from objects where kind = 'balance' limit 1").fetchone()
    body = {
        "resource": "balance_transaction",
        "id": line_id,
        "type": kind,
        "context": context,
        "createdAt": created_at,
        "initialAmount": amount,
        "deductions": {"value": "0.00", "currency": amount["currency"]},
        "resultAmount": amount,
    }
    add_object(sandbox_db, "balance_transaction", body, balance)


def change_mollie(sandbox_db, payment: dict) -> None:
    """At Mollie: the late refund with its ledger line, the pending settlement paid out with its transfer, and
    a ledger line that arrives late, created before lines already loaded (the running balance moves)."""
    amount, at = payment["amount"], "2026-11-27T10:00:00+00:00"
    refund = {
        "resource": "refund",
        "id": "re_LateRefund01",
        "amount": amount,
        "status": "refunded",
        "paymentId": payment["id"],
        "createdAt": at,
        "description": "event cancelled",
    }
    add_object(sandbox_db, "refund", refund, payment["id"])
    negative = {"value": f"-{amount['value']}", "currency": amount["currency"]}
    add_ledger_line(
        sandbox_db, "baltr_LateRefund01", "refund", at, negative, {"paymentId": payment["id"], "refundId": refund["id"]}
    )

    settlement_id, body = sandbox_db.execute(
        "select id, body from objects where kind = 'settlement' and body->>'status' in ('pending', 'open') "
        "order by seq limit 1"
    ).fetchone()
    paid_out = "2026-11-26T09:00:00+00:00"
    sandbox_db.execute(
        "update objects set body = body || jsonb_build_object('status', 'paidout', 'settledAt', cast(%s as text)) "
        "where kind = 'settlement' and id = %s",
        (paid_out, settlement_id),
    )
    transfer = {"value": f"-{body['amount']['value']}", "currency": body["amount"]["currency"]}
    add_ledger_line(
        sandbox_db,
        "baltr_LateTransfer1",
        "outgoing-transfer",
        paid_out,
        transfer,
        {"settlementId": settlement_id, "transferId": "trf_LateTransfer1"},
    )

    (newest,) = sandbox_db.execute(
        "select max(body->>'createdAt') from objects where kind = 'balance_transaction' and id not like 'baltr_Late%'"
    ).fetchone()
    an_hour_before = (datetime.fromisoformat(newest) - timedelta(hours=1)).isoformat()
    add_ledger_line(
        sandbox_db,
        "baltr_LateFee00001",
        "invoice-compensation",
        an_hour_before,
        {"value": "-1.50", "currency": "EUR"},
        {},
    )


def copy_platform(source_dsn: str, target_dsn: str) -> None:
    """The platform database, table by table, onto another server (COPY, no dump format in between)."""
    with psycopg.connect(source_dsn) as src, psycopg.connect(target_dsn) as dst:
        dst.execute(demo_platform.contract_ddl())
        for table in demo_platform.TABLES:
            with (
                src.cursor().copy(f"copy {table} to stdout") as out,
                dst.cursor().copy(f"copy {table} from stdin") as into,
            ):
                for block in out:
                    into.write(block)


def fingerprints(dsn: str) -> dict[str, tuple[int, str]]:
    """(rows, md5 of the rows in order) of every table and view in intermediate, marts and support, load
    timestamps (_*) left out."""
    with psycopg.connect(dsn) as conn:
        conn.execute("set timezone = 'UTC'")
        tables = conn.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('intermediate', 'marts', 'support') order by 1, 2"
        ).fetchall()
        result = {}
        for schema, table in tables:
            names = conn.execute(
                "select quote_ident(column_name) from information_schema.columns where table_schema = %s "
                "and table_name = %s and column_name not like '\\_%%' order by ordinal_position",
                (schema, table),
            )
            columns = [c for (c,) in names]
            rows = f"select row({', '.join(columns)})::text as r from {schema}.{table}"
            result[f"{schema}.{table}"] = conn.execute(
                f"select count(*), md5(coalesce(string_agg(r, E'\\n' order by r), '')) from ({rows}) as t"
            ).fetchone()
    return result


def differing_rows(dsn_a: str, dsn_b: str, table: str, limit: int = 5) -> tuple[list, list]:
    def rows(dsn):
        with psycopg.connect(dsn) as conn:
            conn.execute("set timezone = 'UTC'")
            return {r for (r,) in conn.execute(f"select t::text from {table} as t")}

    a, b = rows(dsn_a), rows(dsn_b)
    return sorted(a - b)[:limit], sorted(b - a)[:limit]


@pytest.fixture(scope="module")
def changed(runs, source, sandbox_db, settings):
    """The session's sources after a day of life on the platform and at Mollie."""
    payment = refunded_payment(sandbox_db)
    (missing,) = sandbox_db.execute(
        "select body from objects where kind = 'payment' and id = "
        "(select mollie_payment_id from planted where kind = 'missing_in_platform' limit 1)"
    ).fetchone()
    params = {
        "refunded_payment": payment["id"],
        "missing_payment": missing["id"],
        "missing_cents": int(Decimal(missing["amount"]["value"]) * 100),
        "missing_paid_at": missing["paidAt"],
        "formula_names": FORMULA_NAMES,
        "timezone": settings.reporting_timezone,
    }
    counts = {}
    for change, statement in PLATFORM_CHANGES.items():
        counts[change] = source.execute(statement, params).rowcount
    assert all(counts.values()), counts  # every change found its rows
    change_mollie(sandbox_db, payment)
    return counts


@pytest.fixture(scope="module")
def incremental(changed, settings):
    outcome = pipeline.run_everything(settings)
    assert outcome.success, outcome
    return outcome


@pytest.fixture(scope="module")
def fresh_on_15(changed, incremental, pg15, settings, home):
    """A warehouse built once, on PostgreSQL 15, from a copy of the changed platform database (also on 15)."""
    monkeypatch = pytest.MonkeyPatch()
    source_dsn, warehouse_dsn = pg15.ensure_database("platform"), pg15.ensure_database("warehouse")
    copy_platform(settings.source_dsn, source_dsn)
    monkeypatch.setenv("SOURCE_DSN", source_dsn)
    monkeypatch.setenv("WAREHOUSE_DSN", warehouse_dsn)
    monkeypatch.setenv("REPORTS_DIR", str(home / "reports_pg15"))
    try:
        s = Settings.load()
        outcome = pipeline.run_everything(s)
        yield s, outcome
    finally:
        monkeypatch.undo()


def test_the_incremental_run_built_what_the_changed_sources_feed(incremental, descendants):
    """The build after the load: exactly the models below the raw tables the load wrote rows to."""
    manifest = dbt_project.manifest()
    by_table = {s["identifier"]: uid for uid, s in manifest["sources"].items()}
    changed = {by_table[table] for table, rows in incremental.rows_written.items() if rows}
    assert {"source.boxoffice.platform.orders", "source.boxoffice.mollie.settlements"} <= changed
    assert not incremental.build.everything, incremental.build.reason
    assert set(incremental.build.models) == descendants(manifest, changed)
    assert set(incremental.build.models) < {u for u, n in manifest["nodes"].items() if n["resource_type"] == "model"}


def test_the_whole_pipeline_runs_on_postgresql_15(fresh_on_15, pg15):
    s, outcome = fresh_on_15
    assert pg15.version() == "15"
    with psycopg.connect(s.warehouse_dsn) as conn:
        assert conn.info.server_version // 10000 == 15
    assert outcome.success, outcome
    assert outcome.failed_checks == outcome.errored_checks == outcome.failed_steps == []
    assert outcome.warned_checks == ["marts/fct_settlement_reconciliation:settlement_matches_platform"]
    assert sorted(p.name for p in (s.reports_dir / "reconciliation").iterdir())  # finance's months were written


def test_an_incremental_run_equals_a_fresh_build(incremental, fresh_on_15, settings):
    s, _ = fresh_on_15
    after_increment, fresh = fingerprints(settings.warehouse_dsn), fingerprints(s.warehouse_dsn)
    assert set(after_increment) == set(fresh)
    models = [n for n in dbt_project.manifest()["nodes"].values() if n["resource_type"] == "model"]
    layers = ("intermediate", "marts", "support")  # the incremental intermediate models too
    built = {f"{n['schema']}.{n['alias']}" for n in models if n["schema"] in layers}
    # a model that logs the rows it replaces keeps them beside it (macro log_replaced_rows): the logs differ
    logs = {f"{n['schema']}.{n['alias']}__replaced" for n in models if n["config"].get("log_replaced_rows")}
    assert logs and set(fresh) == built | logs
    differing = {t: (after_increment[t], fresh[t]) for t in built if after_increment[t] != fresh[t]}
    details = {t: differing_rows(settings.warehouse_dsn, s.warehouse_dsn, t) for t in list(differing)[:3]}
    assert not differing, details


def test_names_that_look_like_formulas_stay_text_in_finances_files(incremental, settings):
    """OWASP CSV injection: an organization's name reaches revenue_by_organization.csv and .xlsx as text."""
    import csv

    from openpyxl import load_workbook

    folder = settings.reports_dir / "revenue"
    with open(folder / "revenue_by_organization.csv", newline="") as f:
        names = [row["organization_name"] for row in csv.DictReader(f)]
    assert sorted(n for n in names if n.startswith("'")) == sorted("'" + n for n in FORMULA_NAMES)
    sheet = load_workbook(folder / "revenue_by_organization.xlsx").active
    cells = {c.value.replace("\r", "\n"): c for c in sheet["B"][1:]}  # XML reads a CR back as LF
    for name in FORMULA_NAMES:
        cell = cells[name.replace("\r", "\n")]
        assert cell.data_type == "s" and cell.quotePrefix, repr(name)
    books = [*settings.reports_dir.rglob("*.xlsx")]
    every_cell = [(b.name, c) for b in books for ws in load_workbook(b) for row in ws.iter_rows() for c in row]
    formulas = [(name, c.coordinate) for name, c in every_cell if c.data_type == "f"]
    assert len(books) > 5 and formulas == []
