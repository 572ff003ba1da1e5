"""A blocking GX check stops publication: run last, since it tampers with (and restores) the sandbox."""

import dagster as dg
from psycopg.types.json import Jsonb

from boxoffice.cli import main

SETTLEMENTS = dg.AssetKey(["marts", "fct_settlement_reconciliation"])


def latest_evaluation(check_name: str):
    with dg.DagsterInstance.get() as instance:
        records = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(SETTLEMENTS, check_name)]
        )
    return next(iter(records.values())).event.dagster_event.event_specific_data


def test_a_broken_settlement_identity_fails_the_run_and_names_the_settlement(runs, sandbox_db, warehouse, settings):
    settlement_id, body = sandbox_db.execute(
        "select id, body from objects where kind = 'settlement' and body->>'status' = 'paidout' order by seq limit 1"
    ).fetchone()
    tampered = {**body, "amount": {**body["amount"], "value": "1.00"}}
    update = "update objects set body = %s where kind = 'settlement' and id = %s"
    sandbox_db.execute(update, (Jsonb(tampered), settlement_id))
    reports_before = {p: p.stat().st_mtime for p in (settings.reports_dir / "reconciliation").rglob("*.html")}
    try:
        assert main(["run"]) == 1  # `boxoffice run` exits non-zero on a failed blocking check
    finally:
        sandbox_db.execute(update, (Jsonb(body), settlement_id))

    for name in ("settlement_identity", "settlement_differences_explained"):
        evaluation = latest_evaluation(name)
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR, name
        assert evaluation.metadata["unexpected_count"].value == 1, name
        assert settlement_id in evaluation.metadata["disagreeing_rows"].value, name
    # the marts stay for investigation, showing the tampered payout
    reported = warehouse.execute(
        "select reported_amount from marts.fct_settlement_reconciliation where settlement_id = %s", (settlement_id,)
    ).fetchone()[0]
    assert str(reported) == "1.00"
    # and the finance reports were not rewritten from numbers that must not be published
    assert reports_before
    assert {p: p.stat().st_mtime for p in (settings.reports_dir / "reconciliation").rglob("*.html")} == reports_before
