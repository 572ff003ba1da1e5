"""Every quarantine reason, produced by a real source row; the good rows of the same batch still load."""

import uuid

import psycopg
import pytest
from psycopg import sql

from boxoffice.demo import platform as demo_platform
from extract import contract, platform
from extract import quarantine as quarantine_rules
from extract.raw import new_batch_id

from .conftest import AS_OF

LOOSE_ORDERS = """
    drop table orders cascade;
    create table orders (id text, order_number text, organization_id text, event_id text, customer_id text,
        buyer_email text, buyer_ip text, status text, currency text, tickets_amount_cents text,
        service_fee_cents text, platform_fee_cents text, total_cents text, ticket_count text,
        created_at text, paid_at text, updated_at text)
"""
GOOD = {
    "order_number": "ORD-1",
    "organization_id": "1",
    "event_id": "1",
    "customer_id": None,
    "buyer_email": "a@example.com",
    "buyer_ip": "10.0.0.1",
    "status": "paid",
    "currency": "EUR",
    "tickets_amount_cents": "1000",
    "service_fee_cents": "99",
    "platform_fee_cents": "50",
    "total_cents": "1099",
    "ticket_count": "1",
    "created_at": "2026-10-01 10:00:00+00",
    "paid_at": "2026-10-01 10:01:00+00",
    "updated_at": "2026-10-01 10:01:00+00",
}
BAD = [  # (id, changes, reason)
    (None, {}, "null key"),
    ("x7", {}, "malformed key"),
    ("100", {}, "duplicate key in batch"),
    ("100", {"order_number": "ORD-dup"}, "duplicate key in batch"),
    ("101", {"total_cents": "12,50"}, "malformed amount: total_cents"),
    ("102", {"total_cents": "-1099"}, "negative amount: total_cents"),
    ("103", {"currency": "XYZ"}, "unknown currency: XYZ"),
    ("104", {"created_at": "2026-10-01 10:00:00"}, "timestamp without zone: created_at"),
    ("109", {"paid_at": "2026-10-01"}, "timestamp without zone: paid_at"),
    ("105", {"event_id": "999999"}, "orphan foreign key: event_id -> events"),
    ("106", {"status": "shipped"}, "unknown status: shipped in status"),
    ("107", {"order_number": None}, "missing required value: order_number"),
    ("108", {"total_cents": "1200"}, "total_cents is not tickets_amount_cents + service_fee_cents"),
]


@pytest.fixture
def loose_source(any_server):
    server = any_server
    suffix = uuid.uuid4().hex[:8]
    source_dsn, warehouse_dsn = server.ensure_database(f"qs_{suffix}"), server.ensure_database(f"qw_{suffix}")
    demo_platform.write(source_dsn, orders=50, seed=3, as_of=AS_OF)
    with psycopg.connect(source_dsn) as conn:
        conn.execute(LOOSE_ORDERS)
        rows = [(str(i), {**GOOD, "order_number": f"ORD-{i}"}) for i in range(1, 6)]
        rows += [(key, {**GOOD, "order_number": f"ORD-{n}", **changes}) for n, (key, changes, _) in enumerate(BAD)]
        with conn.cursor() as cur:
            for key, values in rows:
                cur.execute(
                    f"insert into orders (id, {', '.join(values)}) values (%s{', %s' * len(values)})",
                    (key, *values.values()),
                )
    yield source_dsn, warehouse_dsn
    server.drop_database(f"qs_{suffix}")
    server.drop_database(f"qw_{suffix}")


def load(source_dsn, warehouse_dsn, table):
    return platform.load_table(source_dsn, "public", warehouse_dsn, table, new_batch_id())


def quarantine(warehouse_dsn):
    with psycopg.connect(warehouse_dsn) as conn:
        return sorted(
            conn.execute("select record_key, reason from raw._quarantine where released_at is null").fetchall(),
            key=lambda r: (r[0] or "", r[1]),
        )


# Values a loose (text) source may hold, per contract type: valid, invalid, and some only newer servers take.
INPUTS = {
    "bigint": ["1", " -42 ", "9223372036854775807", "9223372036854775808", "x7", "12,50", "1.5", "", "0x1F"],
    "integer": ["7", "2147483648", "1_000"],
    contract.TS: ["2026-10-01 10:00:00+00", "2026-02-30 10:00:00+00", "yesterday", "10:00", "not a time"],
    "inet": ["10.0.0.1", "10.0.0.300", "::1", "10.0.0.1/33"],
    "jsonb": ['{"a": 1}', "{a: 1}", "[1, 2]", "null"],
}


def test_the_input_check_answers_as_the_cast_does_on_15_and_on_18(any_server):
    """pg_input_is_valid is PostgreSQL 16+: on every supported server, `valid` is true exactly when the cast
    that follows it succeeds, so a row is either quarantined or loads, never breaking the load."""
    with psycopg.connect(any_server.url()) as conn:
        valid = quarantine_rules.input_is_valid(conn)
        for type_, values in INPUTS.items():
            for value in values:
                answer = conn.execute(sql.SQL("select {}").format(valid(sql.Literal(value), type_))).fetchone()[0]
                try:
                    with conn.transaction():
                        conn.execute(sql.SQL("select cast({} as {})").format(sql.Literal(value), sql.SQL(type_)))
                    casts = True
                except psycopg.errors.DataError:
                    casts = False
                assert answer is casts, (any_server.version(), type_, value)
        assert conn.execute(sql.SQL("select {}").format(valid(sql.Literal(None), "bigint"))).fetchone()[0] is None
        first = conn.execute(
            sql.SQL("select {}, {}").format(valid(sql.Literal("12"), "bigint"), valid(sql.Literal("x7"), "bigint"))
        ).fetchone()
        assert first == (True, False)


def test_each_rule_quarantines_its_row_and_the_good_rows_load(loose_source):
    source_dsn, warehouse_dsn = loose_source
    for parent in ("organizations", "customers", "events"):
        load(source_dsn, warehouse_dsn, parent)
    result = load(source_dsn, warehouse_dsn, "orders")
    assert (result.rows_read, result.rows_written, result.quarantined) == (5 + len(BAD), 5, len(BAD))
    assert quarantine(warehouse_dsn) == sorted(((k, r) for k, _, r in BAD), key=lambda r: (r[0] or "", r[1]))
    with psycopg.connect(warehouse_dsn) as conn:
        assert [r[0] for r in conn.execute("select id from raw.platform_orders order by id")] == [1, 2, 3, 4, 5]
        record = conn.execute("select record from raw._quarantine where reason like 'malformed amount%'").fetchone()[0]
    assert record["total_cents"] == "12,50" and record["order_number"] == "ORD-4"

    # a rerun neither loads nor quarantines anything twice
    again = platform.load_table(source_dsn, "public", warehouse_dsn, "orders", new_batch_id(), full_refresh=True)
    assert again.rows_written == 0
    assert len(quarantine(warehouse_dsn)) == len(BAD)


def test_an_orphan_is_released_once_its_parent_arrives(loose_source):
    source_dsn, warehouse_dsn = loose_source
    for parent in ("organizations", "customers", "events"):
        load(source_dsn, warehouse_dsn, parent)
    load(source_dsn, warehouse_dsn, "orders")
    with psycopg.connect(source_dsn) as conn:
        conn.execute(
            "insert into events select 999999, organization_id, 'Late event', 'live', starts_at, ends_at, "
            "created_at, now() from events where id = 1"
        )
    load(source_dsn, warehouse_dsn, "events")
    load(source_dsn, warehouse_dsn, "orders")
    assert ("105", "orphan foreign key: event_id -> events") not in quarantine(warehouse_dsn)
    with psycopg.connect(warehouse_dsn) as conn:
        assert conn.execute("select event_id from raw.platform_orders where id = 105").fetchone()[0] == 999999


def test_oversized_payload_is_quarantined(server):
    suffix = uuid.uuid4().hex[:8]
    source_dsn, warehouse_dsn = server.ensure_database(f"os_{suffix}"), server.ensure_database(f"ow_{suffix}")
    demo_platform.write(source_dsn, orders=30, seed=5, as_of=AS_OF)
    with psycopg.connect(source_dsn) as conn:
        n = conn.execute("select count(*) from webhook_deliveries").fetchone()[0]
        conn.execute(
            "update webhook_deliveries set payload = jsonb_build_object('blob', repeat('x', 300000)) where id = 1"
        )
    load(source_dsn, warehouse_dsn, "organizations")
    result = load(source_dsn, warehouse_dsn, "webhook_deliveries")
    assert (result.rows_written, result.quarantined) == (n - 1, 1)
    assert quarantine(warehouse_dsn) == [("1", "oversized payload: payload over 262144 bytes")]
    server.drop_database(f"os_{suffix}")
    server.drop_database(f"ow_{suffix}")


def test_invalid_utf8_is_quarantined_and_the_rest_of_the_stream_loads(server):
    suffix = uuid.uuid4().hex[:8]
    name = f"ascii_{suffix}"
    with psycopg.connect(server.url(), autocommit=True) as admin:
        admin.execute(f"create database {name} encoding 'SQL_ASCII' template template0 locale 'C'")
    source_dsn, warehouse_dsn = server.url(name), server.ensure_database(f"aw_{suffix}")
    with psycopg.connect(source_dsn) as conn:
        conn.execute(LOOSE_ORDERS.replace("drop table orders cascade;", ""))
        for i in range(1, 4):
            email = "E'caf\\351@example.com'" if i == 2 else "'ok@example.com'"  # Latin-1 é: not UTF-8
            conn.execute(
                f"insert into orders values ('{i}', 'ORD-{i}', '1', '1', null, {email}, null, 'paid', 'EUR', "
                "'1000', '99', '50', '1099', '1', '2026-10-01 10:00:00+00', null, '2026-10-01 10:00:00+00')"
            )
    result = load(source_dsn, warehouse_dsn, "orders")
    assert (result.rows_read, result.rows_written, result.quarantined) == (3, 2, 1)
    with psycopg.connect(warehouse_dsn) as conn:
        key, reason, record = conn.execute("select record_key, reason, record from raw._quarantine").fetchone()
    assert (key, reason) == ("2", "invalid UTF-8")
    assert "caf\\xe9@example.com" in record["raw_bytes_escaped"]
    server.drop_database(name)
    server.drop_database(f"aw_{suffix}")


def held(warehouse_dsn) -> dict[str, str]:
    return dict(quarantine(warehouse_dsn))


def test_a_held_row_fixed_deleted_or_rekeyed_at_the_source_is_released_and_totals_still_hold(loose_source):
    """Only orphans were ever released: a fixed row kept counting as held, and the control totals failed for
    good. Now a key is let go once a version of its row passes, or once it is gone from the source."""
    from extract import control_totals

    source_dsn, warehouse_dsn = loose_source
    for parent in ("organizations", "customers", "events"):
        load(source_dsn, warehouse_dsn, parent)
    load(source_dsn, warehouse_dsn, "orders")
    assert {"101", "102", "103", "108"} <= set(held(warehouse_dsn))
    with psycopg.connect(source_dsn) as conn:
        conn.execute("update orders set total_cents = '1099', updated_at = '2026-10-02 10:00:00+00' where id = '101'")
        conn.execute("delete from orders where id = '102'")
        conn.execute(
            "update orders set id = '203', currency = 'EUR', updated_at = '2026-10-02 10:00+00' where id = '103'"
        )
        conn.execute("update orders set total_cents = '1099', updated_at = '2026-10-02 10:00:00+00' where id = '108'")
    load(source_dsn, warehouse_dsn, "orders")
    now_held = held(warehouse_dsn)
    assert not {"101", "102", "103", "108"} & set(now_held)
    assert set(now_held) == {None, "x7", "100", "104", "105", "106", "107", "109"}
    with psycopg.connect(warehouse_dsn) as conn:
        loaded = {r[0] for r in conn.execute("select id from raw.platform_orders")}
    assert {101, 203, 108} <= loaded
    totals = control_totals.record(source_dsn, "public", warehouse_dsn, "orders", "platform_orders", new_batch_id())
    assert (totals["source_kept_rows"], totals["source_kept_cents"]) == (
        totals["raw_kept_rows"],
        totals["raw_kept_cents"],
    )
    assert totals["source_kept_rows"] == len(loaded)


def test_a_row_that_goes_bad_stays_held_while_its_good_version_stays_in_raw(loose_source):
    from extract import control_totals

    source_dsn, warehouse_dsn = loose_source
    for parent in ("organizations", "customers", "events"):
        load(source_dsn, warehouse_dsn, parent)
    load(source_dsn, warehouse_dsn, "orders")
    with psycopg.connect(source_dsn) as conn:  # order 1 was good and loaded; now its amount is garbage
        conn.execute("update orders set total_cents = 'abc', updated_at = '2026-10-03 10:00:00+00' where id = '1'")
    load(source_dsn, warehouse_dsn, "orders")
    assert held(warehouse_dsn)["1"] == "malformed amount: total_cents"
    with psycopg.connect(warehouse_dsn) as conn:
        assert conn.execute("select total_cents from raw.platform_orders where id = 1").fetchone() == (1099,)
    totals = control_totals.record(source_dsn, "public", warehouse_dsn, "orders", "platform_orders", new_batch_id())
    # the text column is summed where it is a number; the held row is left out on both sides
    assert (totals["source_kept_rows"], totals["source_kept_cents"]) == (
        totals["raw_kept_rows"],
        totals["raw_kept_cents"],
    )
    assert totals["raw_rows"] == totals["raw_kept_rows"] + 1
