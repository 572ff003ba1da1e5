"""Run the whole Dagster job once (what `boxoffice run` and `boxoffice demo` do) and summarise it."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import psycopg

from boxoffice import dbt_project
from boxoffice.settings import PROJECT_DIR, Settings
from extract import mollie as mollie_extract
from extract import platform as platform_extract
from extract import quarantine


def prepare_dagster_home(settings: Settings) -> None:
    """Point Dagster at .boxoffice/dagster with the project's dagster.yaml (telemetry off)."""
    home = settings.home / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_DIR / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)


@dataclass
class RunOutcome:
    success: bool
    failed_checks: list[str] = field(default_factory=list)
    errored_checks: list[str] = field(default_factory=list)  # "<check>: <the database's message>"
    warned_checks: list[str] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)
    rows_written: dict[str, int] = field(default_factory=dict)
    log_path: Path | None = None
    rows_quarantined: int = 0


def run_everything(settings: Settings, log_level: str = "WARNING", full_refresh: bool = False) -> RunOutcome:
    """Materialize every asset and run every check once, recorded in the Dagster instance."""
    prepare_dagster_home(settings)
    dbt_project.ensure_manifest()
    import dagster as dg

    from orchestration.definitions import defs

    job = defs.resolve_job_def("boxoffice_everything")
    log_path = settings.home / "logs" / "last_run.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # dagster-dbt re-emits every dbt log line on stdout: keep them in a file, the console gets the summary
    with dg.DagsterInstance.get() as instance, open(log_path, "w") as log, contextlib.redirect_stdout(log):
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={
                "loggers": {"console": {"config": {"log_level": log_level}}},
                "ops": {
                    **{
                        f"raw__{platform_extract.raw_table(t)}": {"config": {"full_refresh": full_refresh}}
                        for t in platform_extract.TABLES
                    },
                    "mollie_assets": {"config": {"full_refresh": full_refresh}},
                    "boxoffice_dbt_assets": {"config": {"full_refresh": full_refresh}},
                },
            },
        )
    outcome = RunOutcome(success=result.success, log_path=log_path)
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
                errored = evaluation.metadata.get("errored")
                if errored is not None and errored.value:
                    outcome.errored_checks.append(f"{name}: {evaluation.metadata['error'].value}")
                elif evaluation.severity == dg.AssetCheckSeverity.ERROR:
                    outcome.failed_checks.append(name)
                else:
                    outcome.warned_checks.append(name)
        elif event.event_type_value == "STEP_FAILURE":
            outcome.failed_steps.append(f"{event.step_key}: {_first_line(event.event_specific_data.error)}")
        elif event.event_type_value == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            written = materialization.metadata.get("rows_written")
            if written is not None:
                outcome.rows_written[materialization.asset_key.path[-1]] = int(written.value)
            quarantined = materialization.metadata.get("rows_quarantined")
            if quarantined is not None:
                outcome.rows_quarantined += int(quarantined.value)
    return outcome


def _first_line(error) -> str:
    """The innermost cause's message: what went wrong, without Dagster's wrapping."""
    while error is not None and error.cause is not None:
        error = error.cause
    message = (error.message if error is not None else "") or "unknown error"
    return message.strip().splitlines()[0]


def layer_counts(settings: Settings) -> list[tuple[str, int | None, int, int]]:
    """(table, source rows, raw rows, rows held in quarantine) per raw table; Mollie's have no source count."""
    rows = []
    with psycopg.connect(settings.source_dsn) as src, psycopg.connect(settings.warehouse_dsn) as wh:
        for table in platform_extract.TABLES:
            source = src.execute(f'select count(*) from "{settings.source_schema}"."{table}"').fetchone()[0]
            raw = wh.execute(f"select count(*) from raw.{platform_extract.raw_table(table)}").fetchone()[0]
            rows.append((table, source, raw, quarantine.held(wh, table)))
        for table in mollie_extract.TABLES:
            rows.append((table, None, wh.execute(f"select count(*) from raw.{table}").fetchone()[0], 0))
    return rows


def summary(settings: Settings) -> dict:
    with psycopg.connect(settings.warehouse_dsn) as wh:
        gmv, orders, tickets = wh.execute(
            "select coalesce(sum(gmv), 0), coalesce(sum(paid_orders), 0), coalesce(sum(tickets_sold), 0) "
            "from marts.kpi_daily"
        ).fetchone()
        settlements, reconciled, paid_out = wh.execute(
            "select count(*), count(*) filter (where is_reconciled), coalesce(sum(reported_amount), 0) "
            "from marts.fct_settlement_reconciliation"
        ).fetchone()
        statuses = dict(
            wh.execute(
                "select match_status, count(*) from marts.fct_payment_reconciliation group by 1 order by 1"
            ).fetchall()
        )
    return {
        "gmv": Decimal(gmv),
        "paid_orders": int(orders),
        "tickets_sold": int(tickets),
        "settlements": settlements,
        "reconciled": reconciled,
        "discrepant": settlements - reconciled,
        "paid_out": Decimal(paid_out),
        "payment_match_status": statuses,
    }


def print_summary(settings: Settings, outcome: RunOutcome) -> None:
    print("\nRows per table (source -> raw, and held in quarantine):")
    for table, source, raw, held in layer_counts(settings):
        src = f"{source:>9,}" if source is not None else "      api"
        print(f"  {table:32} {src} {raw:>9,} {held:>9,}")
    print(f"\nThis run wrote {sum(outcome.rows_written.values()):,} new or changed rows to raw "
          f"({outcome.rows_quarantined:,} quarantined, see raw._quarantine)")  # fmt: skip
    s = summary(settings)
    print(f"\nGMV (paid orders):         EUR {s['gmv']:,.2f} over {s['paid_orders']:,} orders")
    print(f"Tickets sold:              {s['tickets_sold']:,}")
    print(f"Mollie paid out:           EUR {s['paid_out']:,.2f} in {s['settlements']} settlements")
    print(f"Settlements reconciled:    {s['reconciled']} of {s['settlements']} ({s['discrepant']} with discrepancies)")
    print("Payments by match status:  " + ", ".join(f"{k} {v:,}" for k, v in s["payment_match_status"].items()))
    if outcome.warned_checks:
        print("Checks with findings (warn): " + ", ".join(outcome.warned_checks))
    if outcome.failed_checks:
        print("BLOCKING CHECKS FAILED:    " + ", ".join(outcome.failed_checks))
    for check in outcome.errored_checks:
        print(f"CHECKS THAT COULD NOT RUN: {check}")
    if outcome.failed_steps:
        for step in outcome.failed_steps:
            print(f"FAILED STEP:               {step}")
    print(f"Full run log (dbt output): {outcome.log_path}")
