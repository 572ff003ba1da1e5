"""`boxoffice`: the command line of the warehouse.

boxoffice demo [--orders N] [--seed S]   generate the demo sources and run the whole pipeline
boxoffice run [--job NAME]               run everything once against the configured sources (or one job)
boxoffice db up|down|status|url          manage the embedded PostgreSQL
boxoffice sandbox up|down|status|serve   manage the demo's Mollie sandbox
boxoffice report reconciliation --month YYYY-MM
boxoffice export transactions --from YYYY-MM-DD --to YYYY-MM-DD [--organization ID] [--format csv|json|xlsx]
boxoffice export journal --month YYYY-MM [--format csv|xlsx]
boxoffice ui [--port P]                  the Dagster UI (dagster dev)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path

from boxoffice.settings import PROJECT_DIR, ArgumentError, Settings, SettingsError, home_dir, mask_dsn
from boxoffice.warehouse import WAREHOUSE_DB, EmbeddedServer


def _server(settings: Settings) -> EmbeddedServer:
    return EmbeddedServer(settings.home)


def cmd_db(args, settings: Settings) -> int:
    server = _server(settings)
    if args.action == "up":
        server.ensure_database(WAREHOUSE_DB)
        print(f"embedded PostgreSQL is up: {mask_dsn(server.url('warehouse'))} (password: boxoffice db url)")
    elif args.action == "down":
        print("stopped" if server.down() else "not running")
    elif args.action == "status":
        running = server.is_running()
        print(f"{'running' if running else 'stopped'}: data in {server.pgdata}, port {server.port}")
        return 0 if running else 1
    elif args.action == "url":
        print(server.url(WAREHOUSE_DB))
    return 0


def cmd_sandbox(args, settings: Settings) -> int:
    from boxoffice.demo import build, sandbox

    if args.action == "serve":
        dsn = os.environ.get("MOLLIE_SANDBOX_DSN")
        if not dsn:
            raise SettingsError("MOLLIE_SANDBOX_DSN is not set: run `boxoffice demo` first")
        server = sandbox.SandboxServer(dsn, settings.mollie_api_token, port=args.port)
        print(f"Mollie sandbox on {server.url}", flush=True)
        server.httpd.serve_forever()
    elif args.action == "up":
        state = build.ensure_sandbox(_server(settings))
        if state is None:
            raise SettingsError("the Mollie sandbox has no data yet: run `boxoffice demo` first")
        print(f"Mollie sandbox on {state['url']}")
    elif args.action == "down":
        print("stopped" if sandbox.daemon_down(settings.home) else "not running")
    elif args.action == "status":
        state = sandbox.daemon_status(settings.home)
        print(f"running on {state['url']}" if state else "not running")
        return 0 if state else 1
    return 0


def _run_pipeline(settings: Settings, full_refresh: bool = False, job: str | None = None, days=None) -> int:
    from boxoffice import preflight
    from orchestration import pipeline

    settings.require_sources()
    if (settings.home / "demo.env").exists() and settings.embedded:
        from boxoffice.demo import build

        build.ensure_sandbox(_server(settings))
    preflight.check(settings)
    if job:
        print(f"Running the job {job} ...", flush=True)
        outcome = pipeline.run_job(settings, job, progress=True, days=days)
    else:
        print("Running the pipeline: extract -> dbt build -> Great Expectations -> reports ...", flush=True)
        outcome = pipeline.run_everything(settings, full_refresh=full_refresh, progress=True)
    if outcome.not_started:
        print(f"boxoffice: the run did not start: {outcome.not_started}", file=sys.stderr)
        return 1
    pipeline.print_summary(settings, outcome)
    if not outcome.ok:
        print("\nThe run failed; the marts stay as built for investigation (see `make ui`).")
        return 1
    return 0


def cmd_run(args, settings: Settings) -> int:
    if args.job and args.full_refresh:
        raise ArgumentError("--full-refresh is for the whole run, not for --job")
    return _run_pipeline(settings, full_refresh=args.full_refresh, job=args.job)


def cmd_backfill(args, settings: Settings) -> int:
    from boxoffice.exports import parse_day

    first, last = parse_day(args.from_, "--from"), parse_day(args.to, "--to")
    print(f"Backfilling the marts by day from {first} to {last} in one run ...", flush=True)
    return _run_pipeline(settings, job="daily_marts", days=(first, last))


def cmd_metabase(args, settings: Settings) -> int:
    if args.action == "preview":
        from dashboards import catalog, preview

        roles = {"analytics": settings.analytics_role, "support": settings.support_role}
        pages = preview.write(settings.warehouse_dsn, catalog.dashboards(), roles, settings.reports_dir / "dashboards")
        print(f"{len(pages)} dashboards previewed in {pages[0].parent} (index.html)")
        return 0
    if args.action == "exposures":
        from dashboards import catalog
        from dashboards.exposures import EXPOSURES_FILE, exposures_yaml

        EXPOSURES_FILE.write_text(exposures_yaml(catalog.dashboards()))
        print(f"dbt exposures written to {EXPOSURES_FILE}")
        return 0
    from dashboards.client import MetabaseError
    from dashboards.publish import publish

    try:
        summary, mb = publish(settings)
    except MetabaseError as err:
        print(f"boxoffice: {err}", file=sys.stderr)
        return 1
    print(f"Metabase {mb.url}: {len(mb.calls)} calls, {mb.writes()} of them writes")
    for line in summary.lines():
        print(f"  {line}")
    return 0


# Metabase for the demo (dashboards/compose.yml does the same): on the host's network, so it reaches the embedded
# warehouse on 127.0.0.1; on port 3001, beside the Dagster UI's 3000
METABASE_DOCKER = "docker run -d --name boxoffice-metabase --network host -e MB_JETTY_PORT=3001 metabase/metabase"
METABASE_SYNC = (
    "METABASE_URL=http://127.0.0.1:3001 METABASE_USER=admin@example.com METABASE_PASSWORD=Boxoffice-demo-1 "
    "METABASE_ANALYTICS_DB_PASSWORD=analytics-demo METABASE_SUPPORT_DB_PASSWORD=support-demo "
    ".venv/bin/boxoffice metabase sync"
)


def cmd_demo(args, settings: Settings) -> int:
    from boxoffice.console import StepLines
    from boxoffice.demo import build, sandbox

    server = _server(settings)
    if settings.embedded:  # its raw rows came from the sources about to be replaced: it starts over
        server.drop_database(WAREHOUSE_DB)
    else:
        print(
            "note: WAREHOUSE_DSN is set; the demo sources still live in the embedded server, and rows that "
            "warehouse extracted from earlier demo sources stay in it (drop its schemas to start over)"
        )
    as_of = datetime.fromisoformat(args.as_of).replace(tzinfo=UTC) if args.as_of else None
    print(f"Generating the demo platform database ({args.orders:,} orders, seed {args.seed}) ...", flush=True)
    sources = build.generate(server, args.orders, args.seed, as_of, args.discrepancy_rate, lines=StepLines())
    for table, n in sources.platform_counts.items():
        print(f"  platform.{table:20} {n:>9,}")
    print(f"Mollie sandbox data: {sources.mollie_counts} ({sources.planted} planted discrepancies)")
    sandbox.daemon_down(server.home)
    state = sandbox.daemon_up(server.home, sources.sandbox_dsn, sources.token)
    build.write_env(server, sources, state["url"])
    print(f"Mollie sandbox listening on {state['url']}")
    if args.no_run:
        return 0
    code = _run_pipeline(Settings.load())
    s = Settings.load()
    from boxoffice import alerts
    from dashboards import catalog, preview

    roles = {"analytics": s.analytics_role, "support": s.support_role}
    preview.write(s.warehouse_dsn, catalog.dashboards(), roles, s.reports_dir / "dashboards")

    print(
        f"""
Where to look next:
  finance reports   {s.reports_dir / "reconciliation"}/<YYYY-MM>/reconciliation.html (+ .xlsx, CSV, journal)
  revenue           {s.reports_dir / "revenue"}/revenue_by_organization.xlsx (+ CSV)
  exports           .venv/bin/boxoffice export transactions --from YYYY-MM-DD --to YYYY-MM-DD [--format xlsx]
  alerts            {alerts.config_of(s).log_path}   (ALERT_WEBHOOK_URL / ALERT_SMTP_* send them on)
  GX data docs      {s.reports_dir / "data_docs"}/index.html
  dashboards        {s.reports_dir / "dashboards"}/index.html   (what analysts see in Metabase; to publish there:)
                      {METABASE_DOCKER}
                      {METABASE_SYNC}
  Dagster UI        make ui   (runs, asset lineage, check results)
  the warehouse     psql "$(.venv/bin/boxoffice db url)"   (schemas raw, staging, intermediate, marts, support)
  rerun             make run  (a rerun rewrites no unchanged row)"""
    )
    return code


def cmd_report(args, settings: Settings) -> int:
    from boxoffice import reports
    from boxoffice.exports import parse_month

    parse_month(args.month)  # one line naming a month that is not one
    report = reports.write_one_month(
        settings.warehouse_dsn, args.month, settings.reports_dir, settings.reporting_timezone
    )
    print(
        f"{report.month}: {report.settlements} settlements ({report.reconciled} reconciled), "
        f"{report.discrepancies} discrepancies"
    )
    for path in report.files:
        print(f"  {path}")
    return 0


def cmd_export(args, settings: Settings) -> int:
    from boxoffice import exports
    from boxoffice.console import StepLines

    if args.kind == "journal":
        if not args.month:
            raise ArgumentError("export journal needs --month YYYY-MM")
        month = exports.parse_month(args.month)
        fmt = exports.check_format(args.format or "csv", exports.JOURNAL_FORMATS)
        output = Path(args.output or settings.reports_dir / "exports" / f"journal_{args.month}.{fmt}")
        done = exports.journal(settings.warehouse_dsn, month, fmt, output)
        print(f"{done.rows:,} journal lines of {args.month} -> {done.path}")
        return 0
    if not args.from_ or not args.to:
        raise ArgumentError("export transactions needs --from YYYY-MM-DD and --to YYYY-MM-DD")
    start, end = exports.parse_day(args.from_, "--from"), exports.parse_day(args.to, "--to")
    fmt = exports.check_format(args.format or "csv", exports.TRANSACTION_FORMATS)
    scope = f"_org{args.organization}" if args.organization is not None else ""
    output = Path(args.output or settings.reports_dir / "exports" / f"transactions_{start}_{end}{scope}.{fmt}")
    lines = StepLines(sys.stderr)
    lines.start("export", "transactions")
    done = exports.transactions(
        settings.warehouse_dsn,
        start,
        end,
        args.organization,
        fmt,
        output,
        settings.reporting_timezone,
        progress=lambda n: lines.show("export", f"{n:,} rows written", label="transactions"),
    )
    lines.show("export", f"{done.rows:,} rows written", final=True, label="transactions")
    print(f"{done.rows:,} money movements from {start} to {end} -> {done.path}")
    return 0


def cmd_bench(args, settings: Settings) -> int:
    if args.kind == "pipeline":
        from bench import pipeline as bench_pipeline

        bench_pipeline.main(args.orders, args.reuse_sources)
        return 0
    if args.kind == "dashboards":
        from bench import dashboards

        dashboards.main()
        return 0
    if args.kind == "executors":
        from bench import executors

        executors.main()
        return 0
    from bench import extractor as bench

    bench.main(args.orders, args.skip_dlt, args.rounds)
    return 0


def cmd_ui(args, settings: Settings) -> int:
    from orchestration import pipeline

    pipeline.prepare_dagster_home(settings)
    if settings.embedded:
        from boxoffice.demo import build

        _server(settings).ensure_database(WAREHOUSE_DB)
        build.ensure_sandbox(_server(settings))
    print(f"Dagster UI on http://127.0.0.1:{args.port}", flush=True)
    command = [dagster_command(), "dev", "-m", "orchestration.definitions", "-h", "127.0.0.1", "-p", str(args.port)]
    return subprocess.call(command, cwd=PROJECT_DIR, env=dagster_env())


def dagster_command() -> str:
    return os.path.join(os.path.dirname(sys.executable), "dagster")


def dagster_env() -> dict[str, str]:
    """dagster dev re-parses the dbt project with the `dbt` it finds on PATH: put the venv's first."""
    bin_dir = os.path.dirname(sys.executable)
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="boxoffice", description="The Boxoffice payments warehouse.")
    sub = p.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="manage the embedded PostgreSQL")
    db.add_argument("action", choices=["up", "down", "status", "url"])
    db.set_defaults(func=cmd_db)

    sb = sub.add_parser("sandbox", help="manage the demo's Mollie sandbox")
    sb.add_argument("action", choices=["up", "down", "status", "serve"])
    sb.add_argument("--port", type=int, default=0)
    sb.set_defaults(func=cmd_sandbox)

    demo = sub.add_parser("demo", help="generate the demo sources and run the whole pipeline")
    demo.add_argument("--orders", type=int, default=20_000)
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--as-of", help="generate as if today were this UTC date (YYYY-MM-DD); default now")
    demo.add_argument(
        "--discrepancy-rate",
        type=float,
        default=0.0002,
        help="planted discrepancies of each kind per order (at least one of each)",
    )
    demo.add_argument("--no-run", action="store_true", help="only generate the sources")
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="run everything once against the configured sources")
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="re-read every source ignoring cursors, and rebuild incremental models from scratch",
    )
    run.add_argument(
        "--job",
        choices=["micro_batch", "mollie_reconciliation", "finance_reports"],
        help="run one scheduled job alone, as the Dagster daemon would (see orchestration/jobs.py)",
    )
    run.set_defaults(func=cmd_run)

    backfill = sub.add_parser(
        "backfill", help="rebuild the marts keyed by day for a range of days, in one run (the daily partitions)"
    )
    backfill.add_argument("--from", dest="from_", required=True, help="first local day, YYYY-MM-DD")
    backfill.add_argument("--to", required=True, help="last local day (included), YYYY-MM-DD")
    backfill.set_defaults(func=cmd_backfill)

    metabase = sub.add_parser(
        "metabase", help="publish the dashboards to Metabase, preview them as HTML, or write their dbt exposures"
    )
    metabase.add_argument("action", choices=["sync", "preview", "exposures"])
    metabase.set_defaults(func=cmd_metabase)

    report = sub.add_parser("report", help="write a finance report on demand")
    report.add_argument("kind", choices=["reconciliation"])
    report.add_argument("--month", required=True, help="YYYY-MM")
    report.set_defaults(func=cmd_report)

    export = sub.add_parser("export", help="export money movements or the accounting journal for finance")
    export.add_argument("kind", choices=["transactions", "journal"])
    export.add_argument("--from", dest="from_", help="transactions: first local day, YYYY-MM-DD")
    export.add_argument("--to", help="transactions: last local day (included), YYYY-MM-DD")
    export.add_argument("--organization", type=int, help="transactions: only this organization's")
    export.add_argument("--month", help="journal: YYYY-MM")
    export.add_argument("--format", help="csv (default), json (transactions) or xlsx")
    export.add_argument("--output", help="the file to write (default: REPORTS_DIR/exports/...)")
    export.set_defaults(func=cmd_export)

    bench = sub.add_parser("bench", help="benchmark the extractor (against a raw COPY stream and dlt) or the pipeline")
    bench.add_argument("kind", nargs="?", choices=["extract", "pipeline", "executors", "dashboards"], default="extract")
    bench.add_argument("--orders", type=int, default=1_000_000)
    bench.add_argument("--skip-dlt", action="store_true")
    bench.add_argument("--rounds", type=int, default=3, help="interleaved rounds of raw COPY and extractor (median)")
    bench.add_argument(
        "--reuse-sources", action="store_true", help="pipeline: keep the last bench's sources, rebuild the warehouse"
    )
    bench.set_defaults(func=cmd_bench)

    ui = sub.add_parser("ui", help="start the Dagster UI")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)
    return p


def _log_error(error: BaseException) -> Path:
    """The full traceback, for whoever digs deeper: in the home's logs, with DSN passwords masked."""
    path = home_dir() / "logs" / "error.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(traceback.format_exception(error))
    with open(path, "a") as f:
        f.write(f"--- {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC: boxoffice {' '.join(sys.argv[1:])}\n")
        f.write(mask_dsn(text) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    from boxoffice.preflight import Unreachable

    args = parser().parse_args(argv)
    try:
        settings = Settings.load()
        return args.func(args, settings)
    except (SettingsError, ArgumentError) as err:
        print(f"boxoffice: {mask_dsn(str(err))}", file=sys.stderr)
        return 2
    except Unreachable as err:
        print(f"boxoffice: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # anything else: one line here, the traceback in the log
        lines = [line for line in str(err).strip().splitlines() if line.strip()] or [type(err).__name__]
        print(f"boxoffice: {mask_dsn(lines[0])}\n  (details in {_log_error(err)})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
