"""The sandbox speaks Mollie API v2 as documented, and the extractor survives its faults."""

from decimal import Decimal

import pytest
import requests

from boxoffice.demo import sandbox
from extract import mollie
from extract.raw import new_batch_id


@pytest.fixture
def faulty(demo):
    sources, _ = demo
    server = sandbox.SandboxServer(
        sources.sandbox_dsn, sources.token, faults=sandbox.Faults(every_429=4, every_500=7)
    ).start()
    yield sources, server
    server.stop()


def test_bearer_auth_is_required(demo):
    sources, http = demo
    r = requests.get(f"{http.url}/v2/payments", timeout=5)
    assert r.status_code == 401 and r.json()["title"] == "Unauthorized Request"
    r = requests.get(f"{http.url}/v2/payments", headers={"Authorization": "Bearer access_wrong"}, timeout=5)
    assert r.status_code == 401


def test_cursor_pagination_and_string_amounts(demo, sandbox_db):
    sources, http = demo
    headers = {"Authorization": f"Bearer {sources.token}"}
    seen, url, pages = [], f"{http.url}/v2/payments?limit=250", 0
    while url:
        page = requests.get(url, headers=headers, timeout=5).json()
        items = page["_embedded"]["payments"]
        assert page["count"] == len(items) <= 250
        assert all(isinstance(p["amount"]["value"], str) for p in items)
        seen += [p["id"] for p in items]
        url = page["_links"]["next"]["href"] if page["_links"]["next"] else None
        pages += 1
    total = sandbox_db.execute("select count(*) from objects where kind = 'payment'").fetchone()[0]
    assert pages == -(-total // 250) and len(seen) == len(set(seen)) == total
    assert requests.get(f"{http.url}/v2/payments?limit=251", headers=headers, timeout=5).status_code == 400


def test_settlement_by_id_or_reference_and_its_payments(demo, sandbox_db):
    sources, http = demo
    client = mollie.make_client(http.url, sources.token)
    sid, ref = sandbox_db.execute(
        "select id, reference from objects where kind = 'settlement' order by seq desc limit 1 offset 1"
    ).fetchone()
    by_ref = client.settlements.get(ref)
    assert by_ref.id == sid and client.settlements.get(sid).reference == ref
    listed = list(mollie.iterate(by_ref.payments.list(limit=10)))
    expected = sandbox_db.execute(
        "select count(*) from objects where kind = 'payment' and settlement_id = %s", (sid,)
    ).fetchone()[0]
    assert len(listed) == expected > 10
    assert all(Decimal(p["amount"]["value"]) > 0 for p in listed)


def test_extract_survives_429_and_500_with_a_complete_duplicate_free_load(faulty, server, sandbox_db):
    sources, http = faulty
    dsn = server.ensure_database("faults_test")
    client = mollie.make_client(http.url, sources.token, backoff=0.01)
    http.faults.retry_after = 0
    results = mollie.load_all(client, dsn, new_batch_id())
    assert client.retried >= 10
    counts = dict(sandbox_db.execute("select kind, count(*) from objects group by kind").fetchall())
    assert results["mollie_payments"].rows_written == counts["payment"]
    assert results["mollie_refunds"].rows_written == counts["refund"]
    assert results["mollie_balance_transactions"].rows_written == counts["balance_transaction"]
    import psycopg

    with psycopg.connect(dsn) as conn:
        assert conn.execute("select count(*), count(distinct id) from raw.mollie_payments").fetchone() == (
            counts["payment"],
            counts["payment"],
        )
    server.drop_database("faults_test")


def test_resweep_reads_the_recent_window_follows_open_payments_and_skips_final_settlements(demo, server, sandbox_db):
    import psycopg
    from psycopg.types.json import Jsonb

    sources, _ = demo
    http = sandbox.SandboxServer(sources.sandbox_dsn, sources.token).start()
    dsn = server.ensure_database("resweep_test")
    client = mollie.make_client(http.url, sources.token)
    # an old payment that Mollie still reports as open
    pid, body = sandbox_db.execute(
        "select id, body from objects where kind = 'payment' and body->>'status' = 'paid' "
        "and settlement_id is null order by seq limit 1"
    ).fetchone()
    update = "update objects set body = %s where kind = 'payment' and id = %s"
    sandbox_db.execute(update, (Jsonb({**body, "status": "open", "paidAt": None}), pid))
    try:
        first = mollie.load_all(client, dsn, new_batch_id())
        total = sandbox_db.execute("select count(*) from objects where kind = 'payment'").fetchone()[0]
        assert first["mollie_payments"].rows_read == total

        sandbox_db.execute(update, (Jsonb(body), pid))  # ... and is paid now
        before = http.requests
        second = mollie.load_all(client, dsn, new_batch_id())
        assert second["mollie_payments"].rows_written == 1
        assert second["mollie_payments"].rows_read < total
        assert sum(r.rows_written for r in second.values()) == 1
        with psycopg.connect(dsn) as conn:
            assert (
                conn.execute("select payload->>'status' from raw.mollie_payments where id = %s", (pid,)).fetchone()[0]
                == "paid"
            )
        # only the one non-final (pending) settlement has its items re-read: 4 lists of one page each,
        # plus one page each of refunds, chargebacks, settlements, balances and balance transactions
        other_requests = http.requests - before - (second["mollie_payments"].rows_read // 250 + 1)
        non_final = sandbox_db.execute(
            "select count(*) from objects where kind = 'settlement' and body->>'status' not in ('paidout', 'failed')"
        ).fetchone()[0]
        assert non_final == 1
        assert other_requests <= 10  # a full sweep reads 4 x 26 settlement item lists
    finally:
        sandbox_db.execute(update, (Jsonb(body), pid))
        http.stop()
        server.drop_database("resweep_test")


@pytest.mark.parametrize("concurrency", [1, 4])
def test_independent_lists_are_fetched_at_once_up_to_the_setting(demo, server, sandbox_db, concurrency):
    """Each settlement's items and each balance's transactions do not wait for one another: with 4, the
    sandbox answers several requests at once (each takes 20 ms); with 1, never two. The load is complete."""
    sources, _ = demo
    slow = sandbox.SandboxServer(sources.sandbox_dsn, sources.token, faults=sandbox.Faults(delay=0.02)).start()
    dsn = server.ensure_database(f"concurrency_{concurrency}")
    try:
        client = mollie.make_client(slow.url, sources.token)
        results = mollie.load_all(client, dsn, new_batch_id(), concurrency=concurrency)
    finally:
        slow.stop()
        server.drop_database(f"concurrency_{concurrency}")
    assert (slow.most_in_flight > 2) if concurrency == 4 else (slow.most_in_flight == 1)
    assert slow.most_in_flight <= concurrency
    counts = dict(sandbox_db.execute("select kind, count(*) from objects group by kind").fetchall())
    settled = sandbox_db.execute("select count(*) from objects where kind = 'payment' and settlement_id is not null")
    assert results["mollie_payments"].rows_written == counts["payment"]
    assert results["mollie_balance_transactions"].rows_written == counts["balance_transaction"]
    assert results["mollie_settlement_payments"].rows_written == settled.fetchone()[0]


def test_the_mollie_sweep_runs_alongside_the_platform_tables(demo, server, monkeypatch):
    """The extract step loads the platform tables while the Mollie sweep waits on the API (a sandbox that
    takes 50 ms per answer): a Mollie list is done before the last platform table, and platform tables are
    recorded before the sweep ends. One after the other, in either order, one of the two cannot hold."""
    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.extract_assets import MOLLIE_SPECS, PLATFORM_SPECS, extract_sources

    sources, _ = demo
    slow = sandbox.SandboxServer(sources.sandbox_dsn, sources.token, faults=sandbox.Faults(delay=0.05)).start()
    monkeypatch.setenv("WAREHOUSE_DSN", server.ensure_database("side_by_side"))
    monkeypatch.setenv("MOLLIE_API_URL", slow.url)
    instance = dg.DagsterInstance.ephemeral()
    try:
        result = dg.materialize([extract_sources], resources=defs.resources, instance=instance, raise_on_error=False)
    finally:
        slow.stop()
        server.drop_database("side_by_side")
    assert result.success
    specs = [*PLATFORM_SPECS, *MOLLIE_SPECS]
    at = {spec.key: instance.get_latest_materialization_event(spec.key).timestamp for spec in specs}
    platform_at = [at[spec.key] for spec in PLATFORM_SPECS]
    mollie_at = [at[spec.key] for spec in MOLLIE_SPECS]
    # Mollie's lists report as each is written: one was done before the platform's last table ...
    lists_done = [e.timestamp for e in instance.all_logs(result.run_id) if e.user_message.startswith("mollie_")]
    assert lists_done and min(lists_done) < max(platform_at)
    # ... and platform tables were recorded before the sweep ended (its tables are recorded when it ends)
    assert sum(1 for t in platform_at if t < min(mollie_at)) >= 3
