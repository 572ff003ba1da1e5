"""A blocking GX check stops publication, and a check that cannot run is reported as such, apart from one
that found wrong money. Runs late: it tampers with (and restores) the sandbox."""

import json
from dataclasses import replace

import dagster as dg
from psycopg.types.json import Jsonb

from boxoffice.cli import main
from expectations.runner import Suite

SETTLEMENTS = dg.AssetKey(["marts", "fct_settlement_reconciliation"])
PAYOUTS = dg.AssetKey(["marts", "fct_payouts"])


def latest_evaluation(asset: dg.AssetKey, check_name: str):
    with dg.DagsterInstance.get() as instance:
        records = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(asset, check_name)]
        )
    return next(iter(records.values())).event.dagster_event.event_specific_data


def break_the_payouts_query(monkeypatch):
    """The payouts suite's query names a column that does not exist: the check cannot run."""
    validate = Suite.validate

    def broken(self, *args, **kwargs):
        if self.name == "payouts":
            (expectation,) = self.expectations
            bad = replace(expectation, query="select b.no_such_column from {batch} as b")
            self = replace(self, expectations=(bad,))
        return validate(self, *args, **kwargs)

    monkeypatch.setattr(Suite, "validate", broken)


def test_a_broken_settlement_identity_fails_the_run_and_a_broken_query_is_named_as_such(
    runs, sandbox_db, warehouse, settings, monkeypatch, capsys
):
    settlement_id, body = sandbox_db.execute(
        "select id, body from objects where kind = 'settlement' and body->>'status' = 'paidout' order by seq limit 1"
    ).fetchone()
    tampered = {**body, "amount": {**body["amount"], "value": "1.00"}}
    update = "update objects set body = %s where kind = 'settlement' and id = %s"
    sandbox_db.execute(update, (Jsonb(tampered), settlement_id))
    reports_before = {p: p.stat().st_mtime for p in (settings.reports_dir / "reconciliation").rglob("*.html")}
    break_the_payouts_query(monkeypatch)
    try:
        assert main(["run"]) == 1  # `boxoffice run` exits non-zero on a failed blocking check
    finally:
        sandbox_db.execute(update, (Jsonb(body), settlement_id))
    out = capsys.readouterr().out

    for name in ("settlement_identity", "settlement_differences_explained"):
        evaluation = latest_evaluation(SETTLEMENTS, name)
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR, name
        assert evaluation.metadata["unexpected_count"].value == 1, name
        assert settlement_id in evaluation.metadata["disagreeing_rows"].value, name
    # wrong money and a check that could not run are told apart: in the summary, in Dagster, in the data docs
    failed = next(line for line in out.splitlines() if line.startswith("BLOCKING CHECKS FAILED:"))
    assert "settlement_identity" in failed and "transfer_equals_settlement" not in failed
    error = "column b.no_such_column does not exist"
    assert f"CHECKS THAT COULD NOT RUN: marts/fct_payouts:transfer_equals_settlement: {error}" in out.splitlines()
    evaluation = latest_evaluation(PAYOUTS, "transfer_equals_settlement")
    assert not evaluation.passed
    assert (evaluation.metadata["status"].value, evaluation.metadata["error"].value) == ("could not run", error)
    docs = settings.reports_dir / "data_docs"
    statuses = {
        e["name"]: e for s in json.loads((docs / "suites.json").read_text()).values() for e in s["expectations"]
    }
    assert statuses["transfer_equals_settlement"]["status"] == "errored"
    assert f"errored: could not run: {error}" in (docs / "index.html").read_text()
    # the marts stay for investigation, showing the tampered payout
    reported = warehouse.execute(
        "select reported_amount from marts.fct_settlement_reconciliation where settlement_id = %s", (settlement_id,)
    ).fetchone()[0]
    assert str(reported) == "1.00"
    # and the finance reports were not rewritten from numbers that must not be published
    assert reports_before
    assert {p: p.stat().st_mtime for p in (settings.reports_dir / "reconciliation").rglob("*.html")} == reports_before
