"""What a build has to do after a load: only the dbt models whose inputs changed since the last build.

A model is built again when
- a source it reads got rows since the last build (`source:<source>.<table>+`): a snapshot of each source's
  newest `loaded_at_field` (dbt's freshness field), taken after the load and before the build, moved since the
  last build's (a source table not loaded yet is left out of the snapshot);
- its code, config or a macro it uses changed (`state:modified+`);
- it errored, failed a test or was skipped last time (`result:error+ result:fail+ result:skipped+`);
- its relation is missing from the warehouse (dropped by hand);
- it reads the clock (the as-of macros) and was built on another reporting day or over AS_OF_MAX_AGE_MINUTES ago;
and everything is built when there is no earlier build to compare with, when --full-refresh asks for it, or when
a setting dbt reads (the warehouse, time zone, as-of instant, roles) or dbt_project.yml changed.

The comparison state is the last build's artifacts, kept in <home>/dbt_state: its manifest, the results of
every node as last built (merged over builds, so a partial build forgets nothing), the freshness snapshot the
build started from and the settings it was built with. The dbt step records it (`record_build`); the command
line's run makes the plan between its load and its build.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

from boxoffice.settings import DBT_PROJECT_DIR, Settings
from orchestration.resources import dbt_env, dbt_environment

CLOCK_MACROS = {"macro.boxoffice.as_of_ts"}  # a model that calls these (at any depth) reads the clock
STATE_FILES = ("manifest.json", "run_results.json", "settings.json")
# each source's newest loaded_at, as the last build started from it; not named sources.json, which `dbt ls --state`
# would read as dbt's own freshness artifact (builds before 2026-12-06 kept that one: it is read when this is missing)
LOADED_AT_FILE = "loaded_at.json"
DBT_FRESHNESS_FILE = "sources.json"
AFTER_FAILURE = ("result:error+", "result:fail+", "result:skipped+")
# what dbt reads from the environment that does not change a result: the password, the session's work_mem
NOT_A_BUILD_SETTING = {"BOXOFFICE_DBT_PASSWORD", "PGOPTIONS"}


def state_dir(settings: Settings) -> Path:
    return settings.home / "dbt_state"


def snapshot_dir(settings: Settings) -> Path:
    """Where the freshness snapshot of the coming build waits until that build has run."""
    return state_dir(settings) / "next"


@dataclass
class BuildPlan:
    everything: bool
    reason: str
    models: list[str] = field(default_factory=list)  # dbt unique ids of the models (and seeds) to build
    fresher_sources: list[str] = field(default_factory=list)  # "<source>.<table>" with rows since the last build
    tests: list[str] = field(default_factory=list)  # dbt tests to run again (changed, or failed last time)

    @property
    def nothing(self) -> bool:
        return not self.everything and not self.models and not self.tests


def build_settings_fingerprint(settings: Settings) -> dict[str, str]:
    """The settings a build's results depend on: what dbt reads from the environment, and dbt_project.yml."""
    env = {k: v for k, v in dbt_env(settings).items() if k not in NOT_A_BUILD_SETTING}
    env["dbt_project.yml"] = hashlib.sha256((DBT_PROJECT_DIR / "dbt_project.yml").read_bytes()).hexdigest()
    return env


def _dbt(settings: Settings, args: list[str], target: Path):
    """dbt in this process (its programmatic API): a listing, in about a second."""
    from dbt.cli.main import dbtRunner

    project = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    with dbt_environment(settings):
        result = dbtRunner().invoke(["--quiet", *args, *project, "--target-path", str(target)])
    if not result.success:
        raise RuntimeError(f"dbt {' '.join(args[:2])} failed: {result.exception or 'see the run log'}")
    return result.result


def take_freshness_snapshot(settings: Settings) -> Path:
    """Each source's newest loaded_at, now, in the snapshot folder with the fields `dbt source freshness` writes
    (results: unique_id and max_loaded_at, in UTC): read by one connection through the watermark indexes, where
    dbt's command took 2 to 3 s to start. A source table not in the warehouse yet is left out of the snapshot."""
    from boxoffice import dbt_project

    snapshot = snapshot_dir(settings) / LOADED_AT_FILE
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    snapshot.unlink(missing_ok=True)
    results = []
    with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
        for source in dbt_project.manifest()["sources"].values():
            if not source.get("loaded_at_field"):
                continue
            try:
                newest = dbt_project.newest_loaded_at(conn, source)
            except psycopg.errors.UndefinedTable:
                continue
            at = newest.astimezone(UTC).isoformat() if newest is not None else None
            results.append({"unique_id": source["unique_id"], "max_loaded_at": at})
    snapshot.write_text(json.dumps({"results": results}))
    return snapshot


def plan(settings: Settings, full_refresh: bool = False, now: datetime | None = None) -> BuildPlan:
    """Take the freshness snapshot, then decide what the build after this load has to do."""
    snapshot = take_freshness_snapshot(settings)
    state = state_dir(settings)
    if full_refresh:
        return BuildPlan(True, "a full refresh was asked for")
    recorded = next((state / f for f in (LOADED_AT_FILE, DBT_FRESHNESS_FILE) if (state / f).exists()), None)
    if recorded is None or any(not (state / f).exists() for f in STATE_FILES):
        return BuildPlan(True, f"no earlier build is recorded in {state}")
    before, current = json.loads((state / "settings.json").read_text()), build_settings_fingerprint(settings)
    changed = sorted(k for k in {*before, *current} if before.get(k) != current.get(k))
    if changed:
        return BuildPlan(True, "settings changed since the last build: " + ", ".join(changed))
    from boxoffice import dbt_project

    manifest = dbt_project.manifest()
    results = json.loads((state / "run_results.json").read_text())["results"]
    due = _clock_models_due(settings, manifest, results, now or datetime.now(UTC))
    gone = _missing_relations(settings, manifest)
    fresher = _fresher_sources(recorded, snapshot)
    selectors = ["state:modified+", *AFTER_FAILURE, *(f"source:{s}+" for s in fresher)]
    selectors += [f"{manifest['nodes'][uid]['name']}+" for uid in sorted({*due, *gone})]
    listing = ["ls", "--state", str(state), "--select", *selectors, "--output", "json", "--output-keys", "unique_id"]
    types = ["--resource-type", "model", "--resource-type", "seed", "--resource-type", "test"]
    listed = [json.loads(line)["unique_id"] for line in _dbt(settings, [*listing, *types], snapshot.parent) or []]
    feeding = [s for s in fresher if _feeds_models(manifest, s)]  # not the control totals: they feed checks only

    def names(ids: list[str]) -> str:
        return ", ".join(manifest["nodes"][u]["name"] for u in ids)

    reasons = [
        f"rows loaded into {', '.join(feeding)}" if feeding else "",
        f"as-of marts due: {names(due)}" if due else "",
        f"missing from the warehouse: {names(gone)}" if gone else "",
    ]
    ids = sorted(uid for uid in listed if not uid.startswith("test."))
    # tests of a model built run with it; these are the ones to run alone (changed, or failed last time)
    nodes = manifest["nodes"]
    tests = sorted(
        uid for uid in listed if uid.startswith("test.") and not set(nodes[uid]["depends_on"]["nodes"]) & set(ids)
    )
    changed = "code changed or failed last time" if ids or tests else "nothing changed"
    return BuildPlan(False, "; ".join(r for r in reasons if r) or changed, ids, fresher, tests)


def _fresher_sources(before: Path, now: Path) -> list[str]:
    """<source>.<table> of each source whose newest loaded_at moved since the snapshot `before`."""
    old = {r["unique_id"]: r.get("max_loaded_at") for r in json.loads(before.read_text())["results"]}
    new = {r["unique_id"]: r.get("max_loaded_at") for r in json.loads(now.read_text())["results"]}
    return sorted(uid.split(".", 2)[2] for uid, at in new.items() if at != old.get(uid))


def source_id(manifest: dict, source: str) -> str:
    """dbt's unique id of a source table named "<source>.<table>" (as BuildPlan.fresher_sources names them)."""
    return f"source.{manifest['metadata']['project_name']}.{source}"


def _feeds_models(manifest: dict, source: str) -> bool:
    return any(child.startswith("model.") for child in manifest["child_map"].get(source_id(manifest, source), []))


def reads_clock(manifest: dict) -> set[str]:
    """The models that call an as-of macro, directly or through other macros."""
    macros = manifest["macros"]
    calls_clock: dict[str, bool] = {}

    def clock(macro: str, seen: frozenset = frozenset()) -> bool:
        if macro not in calls_clock:
            deps = macros.get(macro, {}).get("depends_on", {}).get("macros", [])
            calls_clock[macro] = macro in CLOCK_MACROS or any(clock(d, seen | {macro}) for d in deps if d not in seen)
        return calls_clock[macro]

    return {
        uid
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and any(clock(m) for m in node["depends_on"]["macros"])
    }


def _built_at(result: dict) -> datetime | None:
    ends = [t["completed_at"] for t in result.get("timing", []) if t.get("completed_at")]
    return datetime.fromisoformat(max(ends).replace("Z", "+00:00")) if ends else None


def _clock_models_due(settings: Settings, manifest: dict, results: list[dict], now: datetime) -> list[str]:
    """Models reading the clock that were built on another reporting day or longer ago than the setting allows.
    A pinned as-of instant (BOXOFFICE_AS_OF) is a build setting instead: its models change when it does."""
    if settings.as_of is not None:
        return []
    built = {r["unique_id"]: _built_at(r) for r in results if r.get("status") == "success"}
    zone, max_age = ZoneInfo(settings.reporting_timezone), timedelta(minutes=settings.as_of_max_age_minutes)
    due = []
    for uid in sorted(reads_clock(manifest)):
        at = built.get(uid)
        if at is None or now - at >= max_age or at.astimezone(zone).date() != now.astimezone(zone).date():
            due.append(uid)
    return due


def _missing_relations(settings: Settings, manifest: dict) -> list[str]:
    """Models the warehouse has no relation for (dropped by hand, or a new warehouse behind the same settings)."""
    wanted = {
        (n["schema"], n["alias"]): uid
        for uid, n in manifest["nodes"].items()
        if n["resource_type"] in ("model", "seed") and n["config"].get("materialized") != "ephemeral"
    }
    with psycopg.connect(settings.warehouse_dsn) as conn:
        present = set(
            conn.execute(
                "select n.nspname, c.relname from pg_class as c join pg_namespace as n on n.oid = c.relnamespace "
                "where n.nspname = any(%s)",
                (sorted({schema for schema, _ in wanted}),),
            ).fetchall()
        )
    return sorted(uid for key, uid in wanted.items() if key not in present)


def record_build(settings: Settings, target: Path, snapshot: Path | None = None) -> bool:
    """After a dbt build that finished (its run_results.json is written): keep its manifest, merge its results
    into the results of every node as last built, keep the settings it ran with and, when the command line
    took one, the freshness snapshot it started from. A build that crashed leaves the state as it was."""
    if not (target / "run_results.json").exists():
        return False
    state = state_dir(settings)
    state.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((target / "manifest.json").read_text())
    run = json.loads((target / "run_results.json").read_text())
    merged = {}
    if (state / "run_results.json").exists():
        merged = {r["unique_id"]: r for r in json.loads((state / "run_results.json").read_text())["results"]}
    built = {r["unique_id"] for r in run["results"]}
    merged.update({r["unique_id"]: r for r in run["results"]})
    known = {*manifest["nodes"], *manifest.get("unit_tests", {})}
    run["results"] = [r for uid, r in merged.items() if uid in known]
    _write(state / "run_results.json", json.dumps(run))
    _write(state / "manifest.json", json.dumps(manifest))
    _record_settings(settings, manifest, built)
    if snapshot is not None:
        promote_snapshot(settings, snapshot)
    return True


def _record_settings(settings: Settings, manifest: dict, built: set[str]) -> None:
    """The settings the models were built with, once every model has been built with them: a build over other
    settings that left models out leaves the old ones (the next plan builds everything). The dbt steps of one
    build (the main one, the marts by day) each add what they built until every model is there."""
    state = state_dir(settings)
    fingerprint = build_settings_fingerprint(settings)
    before = json.loads((state / "settings.json").read_text()) if (state / "settings.json").exists() else None
    pending_path = state / "settings_pending.json"
    pending = json.loads(pending_path.read_text()) if pending_path.exists() else {}
    so_far = set(pending.get("built", [])) if pending.get("settings") == fingerprint else set()
    so_far |= built
    models = {uid for uid, n in manifest["nodes"].items() if n["resource_type"] in ("model", "seed")}
    if before == fingerprint or models <= so_far:
        _write(state / "settings.json", json.dumps(fingerprint, indent=1))
        pending_path.unlink(missing_ok=True)
    else:
        _write(pending_path, json.dumps({"settings": fingerprint, "built": sorted(so_far)}))


def promote_snapshot(settings: Settings, snapshot: Path) -> None:
    """The snapshot becomes what the next build compares with (its build ran, or there was nothing to build)."""
    if snapshot.exists():
        snapshot.replace(state_dir(settings) / LOADED_AT_FILE)


def _write(path: Path, text: str) -> None:
    path.with_suffix(".tmp").write_text(text)
    path.with_suffix(".tmp").replace(path)
